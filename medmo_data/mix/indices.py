"""Reading the per-shard indexes `mix` works from: size caps before any read, the columns asked for (those
an older index lacks come back null), and the fingerprint version of each index (docs/mixing.md#fingerprints):
one mix compares indices of one version only."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from medmo_data.shards.reader import ShardError, check_index

from .fingerprint import FINGERPRINT_VERSION, HASH_COLUMN, INDEX_VERSION_KEY
from .spec import MixError

OPTIONAL = {"system": pl.String, "meta": pl.String, "image_thumb": pl.List(pl.Binary)}  # absent in older indexes


def _checked_schema(path: Path) -> pa.Schema:
    try:
        check_index(path)  # size caps before any read: index files may come from elsewhere
    except ShardError as exc:
        raise MixError(str(exc)) from exc
    return pq.read_schema(path)


def read_index(path: Path, cols: list[str]) -> pl.DataFrame:
    """`cols` of one index; a version 1 index's `image_sha256` is read as `image_hash` (`same_fingerprints`
    has made sure that all indices of a mix share one version)."""
    have = set(_checked_schema(path).names)
    old = HASH_COLUMN[1] if "image_hash" in cols and HASH_COLUMN[1] in have else None
    df = pl.read_parquet(path, columns=[old if c == "image_hash" and old else c for c in cols
                                        if c in have or (c == "image_hash" and old)])
    df = df.rename({old: "image_hash"}) if old else df
    return df.with_columns([pl.lit(None, dtype=t).alias(c) for c, t in OPTIONAL.items() if c in cols and c not in have])


def index_version(path: Path) -> int:
    """The fingerprint version an index was written with: its schema metadata, else 1 (indices written
    before the version was recorded hold `image_sha256`)."""
    schema = _checked_schema(path)
    meta = schema.metadata or {}
    raw = meta.get(INDEX_VERSION_KEY.encode())
    if raw is None:
        return 1 if HASH_COLUMN[1] in schema.names else FINGERPRINT_VERSION
    version = int(raw) if raw.isdigit() else None
    if version not in HASH_COLUMN:
        shown = raw[:20].decode(errors="replace")
        raise MixError(f"{path}: index metadata {INDEX_VERSION_KEY}={shown!r} is not a fingerprint version this "
                       f"medmo-data reads ({', '.join(map(str, HASH_COLUMN))}); an index of a newer medmo-data "
                       "needs that version")
    return version


def same_fingerprints(indices: dict[str, list[Path]]) -> int:
    """The one fingerprint version of every index the mix reads (train and test sources). Hashes of two
    versions never match, so a mix of versions would let test images through: refused, naming who to
    rebuild."""
    by: dict[int, set[str]] = {}
    for name, paths in indices.items():
        for p in paths:
            by.setdefault(index_version(p), set()).add(name)
    if len(by) > 1:
        newest = max(by)
        lines = [f"  version {v}: {', '.join(sorted(names))}" for v, names in sorted(by.items())]
        raise MixError("the sources' indices hold image fingerprints of different versions, which never match "
                       "each other (test images would pass decontamination):\n" + "\n".join(lines) +
                       f"\nrebuild the sources below version {newest} with this medmo-data "
                       "(`medmo-data build` rewrites a source built by an older pipeline; docs/mixing.md#fingerprints)")
    return next(iter(by), FINGERPRINT_VERSION)
