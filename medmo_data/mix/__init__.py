"""Mix: a stage spec + built sources -> a stage manifest, from the per-shard indexes only. Public:
`spec.load_spec`, `mixer.mix`, `decontam` (benchmark test items), `dedup.dedup`, `budget.image_tokens`,
`stage.load_stage_manifest`, `fingerprint` (hashes computed at build time), `stats_report.report`.
"""
