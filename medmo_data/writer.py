"""Shard writer: one task = one chunk of raw records -> `<shard>.tar` (+ overflow parts), its index
and its stats, in that order. Every file is written under a temporary name and renamed; the stats file
comes last and marks the shard complete (img2dataset's convention), so a killed build never leaves a
partial file under a final name and a rerun redoes exactly the unfinished shards.

Tars are byte-reproducible: members in key order, sorted fields, mtime 0, uid/gid 0, no user names,
GNU format, JSON with sorted keys.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from .fingerprint import normalize_text, text_sha1
from .normalize import NormalizeOptions, SampleRejected, dump_json, normalize
from .recipe import RawSample, SourceInfo

STATS_SUFFIX = ".stats.json"
INDEX_SUFFIX = ".index.parquet"


@dataclass(frozen=True)
class ShardTask:
    name: str  # e.g. "train-000003"
    split: str
    group: str
    chunk_digest: str  # hash of the chunk's keys and ids: resume only trusts a stats file that matches
    options_digest: str


def _atomic_write(path: Path, data: bytes) -> None:
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


class _TarBuilder:
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


def _user_text(rec: dict[str, Any], role: str) -> str:
    return "\n".join(p["text"] for m in rec["messages"] if m["role"] == role
                     for p in m["content"] if p["type"] == "text")


def _index_row(key: str, shard: str, rec: dict[str, Any], fps: list[dict[str, Any]]) -> dict[str, Any]:
    prompt = _user_text(rec, "user")
    answer = _user_text(rec, "assistant")
    prompt_norm = normalize_text(prompt)  # once: hashed and counted (NFKC + regexes dominate text sources)
    return {
        "key": key, "shard": shard, "id": rec["id"], "split": rec["split"], "task": rec["task"],
        "modality": rec["modality"], "license": rec["license"], "access": rec["access"],
        "n_images": len(rec["images"]),
        "widths": [im["width"] for im in rec["images"]],
        "heights": [im["height"] for im in rec["images"]],
        "image_sha256": [f["sha256"] for f in fps],
        "image_dhash": [f["dhash"] for f in fps],
        "prompt": prompt[:4000],
        "prompt_norm_sha1": hashlib.sha1(prompt_norm.encode("utf-8")).hexdigest() if prompt else "",
        "answer_norm_sha1": text_sha1(answer) if answer else "",
        "prompt_chars": len(prompt), "answer_chars": len(answer),
        "prompt_words": len(prompt_norm.split()),
        "n_objects": len(rec["objects"]),
        "box_areas": [float((o["bbox"][2] - o["bbox"][0]) * (o["bbox"][3] - o["bbox"][1])) for o in rec["objects"]],
        # Added for `mix`: the system turn (token budgets) and scalar meta fields (contamination rules
        # that depend on a sub-source, e.g. MedReason's dataset_name).
        "system": _user_text(rec, "system")[:4000],
        "meta": _scalar_meta(rec.get("meta") or {}),
    }


def _scalar_meta(meta: dict[str, Any]) -> str:
    """Scalar meta values as sorted JSON (strings cut to 200 chars); lists and dicts are left out."""
    keep = {k: (v[:200] if isinstance(v, str) else v) for k, v in meta.items()
            if isinstance(v, (str, int, float, bool)) and not (isinstance(v, float) and v != v)}
    return json.dumps(keep, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


INDEX_SCHEMA = pa.schema([
    ("key", pa.string()), ("shard", pa.string()), ("id", pa.string()), ("split", pa.string()),
    ("task", pa.string()), ("modality", pa.string()), ("license", pa.string()), ("access", pa.string()),
    ("n_images", pa.int32()), ("widths", pa.list_(pa.int32())), ("heights", pa.list_(pa.int32())),
    ("image_sha256", pa.list_(pa.string())), ("image_dhash", pa.list_(pa.int64())),
    ("prompt", pa.string()), ("prompt_norm_sha1", pa.string()), ("answer_norm_sha1", pa.string()),
    ("prompt_chars", pa.int64()), ("answer_chars", pa.int64()), ("prompt_words", pa.int64()),
    ("n_objects", pa.int32()), ("box_areas", pa.list_(pa.float64())),
    ("system", pa.string()), ("meta", pa.string()),
])


def _parquet_bytes(rows: list[dict[str, Any]]) -> bytes:
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


def write_shard(task: ShardTask, chunk: list[RawSample], info: SourceInfo, out_dir: Path,
                opts: NormalizeOptions, max_shard_bytes: int) -> dict[str, Any]:
    """Normalize a chunk and write its tar part(s), index and stats. Returns the stats."""
    t0 = time.perf_counter()
    if slow := float(os.environ.get("MEDMO_FAULT_SLOW_SHARD_S", "0") or 0):
        time.sleep(slow)  # fault injection for the kill/resume tests; never set in real builds
    tars: list[dict[str, Any]] = []
    tar = _TarBuilder(out_dir / f"{task.name}.tar")
    rows: list[dict[str, Any]] = []
    rejects: list[dict[str, str]] = []
    tasks: Counter[str] = Counter()
    modalities: Counter[str] = Counter()
    n_objects = 0
    try:
        for raw in chunk:
            key = raw.key  # set by the driver
            assert key is not None
            try:
                rec, members, fps = normalize(raw, info, opts)
            except SampleRejected as exc:
                rejects.append({"id": raw.id, "reason": exc.reason, "detail": exc.detail[:500]})
                continue
            if tar.count and tar.size() + sum(len(v) for v in members.values()) > max_shard_bytes:
                tars.append(tar.finish())
                tar = _TarBuilder(out_dir / f"{task.name}-p{len(tars)}.tar")
            tar.add(key, members)
            rows.append(_index_row(key, tar.final.name, rec, fps))
            tasks[rec["task"]] += 1
            modalities[rec["modality"]] += 1
            n_objects += len(rec["objects"])
        tars.append(tar.finish())
    except BaseException:
        tar.abort()
        raise
    for t in tars:
        t["samples"] = sum(1 for r in rows if r["shard"] == t["path"])
    index_bytes = _parquet_bytes(rows)
    _atomic_write(out_dir / f"{task.name}{INDEX_SUFFIX}", index_bytes)
    stats = {
        "name": task.name, "split": task.split, "group": task.group,
        "chunk_digest": task.chunk_digest, "options_digest": task.options_digest,
        "read": len(chunk), "written": len(rows), "rejected": len(rejects),
        "rejects_by_reason": dict(sorted(Counter(r["reason"] for r in rejects).items())),
        "rejects": rejects,
        "tars": tars,
        "index": {"path": f"{task.name}{INDEX_SUFFIX}", "sha256": hashlib.sha256(index_bytes).hexdigest()},
        "tasks": dict(sorted(tasks.items())), "modalities": dict(sorted(modalities.items())),
        "objects": n_objects,
        "elapsed_s": round(time.perf_counter() - t0, 3),
    }
    _atomic_write(stats_path(out_dir, task.name), dump_json(stats))
    return stats
