"""Shard files: the tar builder, the per-shard index schema, atomic writes and the completion check.

A shard is `<name>.tar` (+ overflow parts), `<name>.index.parquet` and `<name>.stats.json`, written in
that order under temporary names and renamed; the stats file comes last and marks the shard complete
(img2dataset's convention). `medmo_data.build.shard` fills them from a chunk of records.

Tars are byte-reproducible: members in key order, sorted fields, mtime 0, uid/gid 0, no user names,
GNU format, JSON with sorted keys.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

STATS_SUFFIX = ".stats.json"
INDEX_SUFFIX = ".index.parquet"


@dataclass(frozen=True)
class ShardTask:
    name: str  # e.g. "train-000003"
    split: str
    group: str
    chunk_digest: str  # hash of the chunk's keys and ids: resume only trusts a stats file that matches
    options_digest: str


def atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class TarBuilder:
    """Streams one tar to a temporary file; member headers are fixed so bytes depend on content only."""

    def __init__(self, final: Path) -> None:
        self.final = final
        self.tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
        self.file = open(self.tmp, "wb")  # noqa: SIM115 - closed in finish()/abort()
        self.hash = hashlib.sha256()
        self.tar = tarfile.open(fileobj=_HashingWriter(self.file, self.hash), mode="w",
                                format=tarfile.GNU_FORMAT)
        self.count = 0

    def add(self, key: str, members: dict[str, bytes]) -> None:
        for field in sorted(members):
            data = members[field]
            ti = tarfile.TarInfo(f"{key}.{field}")
            ti.size = len(data)
            ti.mtime = 0
            ti.mode = 0o444
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = ""
            self.tar.addfile(ti, io.BytesIO(data))
        self.count += 1

    def size(self) -> int:
        return self.file.tell()

    def finish(self) -> dict[str, Any]:
        """Close, fsync and rename into place; the tar's path, size and sha256."""
        self.tar.close()
        self.file.flush()
        os.fsync(self.file.fileno())
        size = self.file.tell()
        self.file.close()
        os.replace(self.tmp, self.final)
        return {"path": self.final.name, "bytes": size, "sha256": self.hash.hexdigest()}

    def abort(self) -> None:
        self.file.close()
        self.tmp.unlink(missing_ok=True)


class _HashingWriter:
    """File wrapper that hashes what tarfile writes (no second read of the shard)."""

    def __init__(self, f, h) -> None:
        self.f, self.h = f, h

    def write(self, data: bytes) -> int:
        self.h.update(data)
        return self.f.write(data)

    def tell(self) -> int:
        return self.f.tell()


INDEX_SCHEMA = pa.schema([
    ("key", pa.string()), ("shard", pa.string()), ("id", pa.string()), ("split", pa.string()),
    ("task", pa.string()), ("modality", pa.string()), ("license", pa.string()), ("access", pa.string()),
    ("n_images", pa.int32()), ("widths", pa.list_(pa.int32())), ("heights", pa.list_(pa.int32())),
    ("image_sha256", pa.list_(pa.string())), ("image_dhash", pa.list_(pa.int64())),
    ("image_thumb", pa.list_(pa.binary())),  # 16x16 grey per image: confirms near matches in `mix`
    ("prompt", pa.string()), ("prompt_norm_sha1", pa.string()), ("answer_norm_sha1", pa.string()),
    ("prompt_chars", pa.int64()), ("answer_chars", pa.int64()), ("prompt_words", pa.int64()),
    ("n_objects", pa.int32()), ("box_areas", pa.list_(pa.float64())),
    ("system", pa.string()), ("meta", pa.string()),
])


def index_parquet_bytes(rows: list[dict[str, Any]]) -> bytes:
    table = pa.Table.from_pylist(rows, schema=INDEX_SCHEMA)
    buf = pa.BufferOutputStream()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue().to_pybytes()


def stats_path(out_dir: Path, name: str) -> Path:
    return out_dir / f"{name}{STATS_SUFFIX}"


def finished(out_dir: Path, task: ShardTask) -> dict[str, Any] | None:
    """The stats of a shard completed by an earlier run with the same chunk and options, else None."""
    p = stats_path(out_dir, task.name)
    if not p.exists():
        return None
    try:
        stats = json.loads(p.read_bytes())
    except (OSError, json.JSONDecodeError):
        return None
    if stats.get("chunk_digest") != task.chunk_digest or stats.get("options_digest") != task.options_digest:
        return None
    if not all((out_dir / t["path"]).exists() for t in stats.get("tars", [])):
        return None
    return stats


