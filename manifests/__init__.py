"""Stage specs (stageN.yaml), installed as `medmo_data.manifests` so `mix --stage N` works from a wheel."""
