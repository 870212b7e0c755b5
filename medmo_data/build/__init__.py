"""Build: recipe records -> normalized samples -> shards -> the source manifest. Public:
`distributor.build` (chunking, local workers, resume), `ray_engine.build_ray`, `normalize.normalize`,
`shard.write_shard`, `manifest.load`, `verify.verify`; options in `options.BuildOptions`.
"""
