"""Mix: a stage spec + built sources -> a stage manifest, from the per-shard indexes only. Public:
`spec.load_spec`, `mixer.mix`, `indices` (reading an index; its fingerprint version), `test_items` (benchmark
test items), `decontam` (matching them), `dedup.dedup`, `budget.image_tokens`, `stage.load_stage_manifest`,
`fingerprint` (hashes computed at build time, versioned), `stats_report.report`.
"""
