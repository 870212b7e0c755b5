"""`medmo-eval`: benchmarks, generation, judging and the results tables (docs/eval.md)."""
