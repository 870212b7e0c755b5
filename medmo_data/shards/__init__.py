"""Shards: the WebDataset tar files themselves. Public: `writer.TarBuilder` / `atomic_write` / `finished`
(byte-reproducible tars, index Parquet, stats last), `reader.iter_samples` (bounded, strict),
`storage.RemoteDir` (fsspec output).
"""
