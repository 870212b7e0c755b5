"""Shard files: the tar builder, the per-shard index schema, atomic writes and the completion check.

A shard is `<name>.tar` (+ overflow parts), `<name>.index.parquet` and `<name>.stats.json`, written in
that order under temporary names and renamed; the stats file comes last and marks the shard complete
(img2dataset's convention). `medmo_data.build.shard` fills them from a chunk of records.

Tars are byte-reproducible: members in key order, sorted fields, mtime 0, uid/gid 0, no user names,
GNU format, JSON with sorted keys.
"""

from __future__ import annotations

import hashlib
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


_BLOCK = tarfile.BLOCKSIZE
_RECORD = tarfile.RECORDSIZE
_NUL_BLOCK = bytes(_BLOCK)
# Members up to this size (JSON) are joined with their header and padding and buffered (the default 8 KiB
# buffer flushed every few text samples); larger ones (images) go to the file as they are, uncopied.
_SMALL = 32 << 10
# The fixed fields of every member header (mode 0444, uid/gid 0, mtime 0, no user names, GNU magic): bytes
# 100-511 of what tarfile.TarInfo.tobuf(GNU_FORMAT) writes, with the size field and checksum spaces marked.
_TAIL_BEFORE_SIZE = b"0000444\0" + b"0000000\0" * 2
_TAIL_AFTER_SIZE = (b"00000000000\0" + b" " * 8 + tarfile.REGTYPE + bytes(100) + tarfile.GNU_MAGIC
                    + bytes(32 + 32 + 8 + 8 + 155 + 12))
_MAX_OCTAL_SIZE = 8 ** 11  # sizes from here on take GNU base-256: left to tarfile
# The header checksum is the unsigned byte sum of the block with its own field as spaces: the fixed fields'
# share is summed once here, so a member's header sums only its name and size digits.
_FIXED_SUM = sum(_TAIL_BEFORE_SIZE) + sum(_TAIL_AFTER_SIZE)
_MTIME, _AFTER_CHKSUM = _TAIL_AFTER_SIZE[:12], _TAIL_AFTER_SIZE[20:]  # the checksum field lies between
_NAME_PAD = [bytes(100 - n) for n in range(101)]  # NULs after a name of n bytes


def member_header(name: str, size: int) -> bytes:
    """The GNU tar header block(s) of a regular file `name` of `size` bytes with the writer's fixed fields,
    byte for byte what tarfile writes for that TarInfo. Built directly for an ASCII name of at most 100
    bytes (every member name in practice; tarfile's generic path costs ~30 us per member), through
    tarfile otherwise (a long name takes an extra GNU LongLink header)."""
    if len(name) <= 100 and size < _MAX_OCTAL_SIZE and name.isascii() and "\0" not in name:
        raw = name.encode("ascii")
        digits = b"%011o\0" % size
        # checksum: "%06o\0" and the last space of its field kept, as tarfile writes it; one join (~1 us)
        return b"".join((raw, _NAME_PAD[len(raw)], _TAIL_BEFORE_SIZE, digits, _MTIME,
                         b"%06o\0 " % (_FIXED_SUM + sum(raw) + sum(digits)), _AFTER_CHKSUM))
    ti = tarfile.TarInfo(name)
    ti.size, ti.mtime, ti.mode, ti.uid, ti.gid, ti.uname, ti.gname = size, 0, 0o444, 0, 0, "", ""
    return ti.tobuf(tarfile.GNU_FORMAT, tarfile.ENCODING, "surrogateescape")


class TarBuilder:
    """Streams one tar to a temporary file; member headers are fixed so bytes depend on content only.
    The bytes are those of `tarfile` in GNU format (headers from `member_header`, data padded to 512-byte
    blocks, two zero blocks and zero padding to a 10240-byte record at the end), written directly and
    hashed as they go (no second read of the shard)."""

    def __init__(self, final: Path) -> None:
        self.final = final
        self.tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
        self.file = open(self.tmp, "wb", buffering=_SMALL)  # noqa: SIM115 - closed in finish()/abort()
        self.hash = hashlib.sha256()
        self.offset = 0
        self.count = 0

    def _write(self, data: bytes) -> None:
        self.hash.update(data)
        self.file.write(data)
        self.offset += len(data)

    def add(self, key: str, members: dict[str, bytes]) -> None:
        for field in sorted(members):
            data = members[field]
            header = member_header(f"{key}.{field}", len(data))
            pad = _NUL_BLOCK[:-len(data) % _BLOCK]
            if len(data) <= _SMALL:  # one hash update and one write, not three
                self._write(b"".join((header, data, pad)))
            else:
                self._write(header)
                self._write(data)
                if pad:
                    self._write(pad)
        self.count += 1

    def size(self) -> int:
        return self.offset

    def finish(self) -> dict[str, Any]:
        """Close, fsync and rename into place; the tar's path, size and sha256."""
        self._write(_NUL_BLOCK * 2)
        if pad := -self.offset % _RECORD:
            self._write(bytes(pad))
        self.file.flush()
        os.fsync(self.file.fileno())
        size = self.file.tell()
        self.file.close()
        os.replace(self.tmp, self.final)
        return {"path": self.final.name, "bytes": size, "sha256": self.hash.hexdigest()}

    def abort(self) -> None:
        self.file.close()
        self.tmp.unlink(missing_ok=True)


INDEX_SCHEMA = pa.schema([
    ("key", pa.string()), ("shard", pa.string()), ("id", pa.string()), ("split", pa.string()),
    ("task", pa.string()), ("modality", pa.string()), ("license", pa.string()), ("access", pa.string()),
    ("n_images", pa.int32()), ("widths", pa.list_(pa.int32())), ("heights", pa.list_(pa.int32())),
    ("image_hash", pa.list_(pa.string())), ("image_dhash", pa.list_(pa.int64())),
    ("image_thumb", pa.list_(pa.binary())),  # 16x16 grey per image: confirms near matches in `mix`
    ("prompt", pa.string()), ("prompt_norm_sha1", pa.string()), ("answer_norm_sha1", pa.string()),
    ("prompt_chars", pa.int64()), ("answer_chars", pa.int64()), ("prompt_words", pa.int64()),
    ("n_objects", pa.int32()), ("box_areas", pa.list_(pa.float64())),
    ("system", pa.string()), ("meta", pa.string()),
])


def index_parquet_bytes(rows: list[dict[str, Any]], metadata: dict[str, str] | None = None) -> bytes:
    """The index Parquet of one shard; `metadata`: schema key-values (the fingerprint version, which
    `mix` checks before comparing indices)."""
    schema = INDEX_SCHEMA.with_metadata(metadata) if metadata else INDEX_SCHEMA
    table = pa.Table.from_pylist(rows, schema=schema)
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


