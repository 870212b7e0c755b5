"""Formats: bounded, streaming readers of the metadata files releases ship. Public:
`tables.iter_csv` / `iter_jsonl` / `iter_parquet` / `hf_image`, `json_stream.iter_json_items` (huge JSON
arrays item by item), `safe_pickle.load_path` (pickles read by an opcode whitelist, never unpickled),
`archive.ReleaseTree` (a release's zips read in place).
"""
