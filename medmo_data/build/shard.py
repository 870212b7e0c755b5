"""One task = one chunk of raw records -> normalized samples -> a shard's tar part(s), index and stats.

Every file goes through `medmo_data.shards.writer` (temporary name, fsync, rename; stats last), so a
killed build never leaves a partial file under a final name and a rerun redoes exactly the unfinished
shards.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

from medmo_data.mix.fingerprint import FINGERPRINT_VERSION, INDEX_VERSION_KEY, normalize_text, text_sha1
from medmo_data.recipe import RawSample, SourceInfo
from medmo_data.shards.writer import (
    INDEX_SUFFIX,
    ShardTask,
    TarBuilder,
    atomic_write,
    index_parquet_bytes,
    stats_path,
)

from .image_memo import ImageMemo
from .normalize import NormalizeOptions, SampleRejected, compact_encoder, dump_json, normalize
from .rejects import Scrubber, utf8_safe


def _role_texts(rec: dict[str, Any]) -> tuple[str, str, str]:
    """(system, user, assistant): each role's text parts joined by newlines, in one pass over the turns."""
    parts: dict[str, list[str]] = {"system": [], "user": [], "assistant": []}
    for m in rec["messages"]:
        add = parts[m["role"]].append
        for p in m["content"]:
            if p["type"] == "text":
                add(p["text"])
    return "\n".join(parts["system"]), "\n".join(parts["user"]), "\n".join(parts["assistant"])


def _index_row(key: str, shard: str, rec: dict[str, Any], fps: list[dict[str, Any]]) -> dict[str, Any]:
    system, prompt, answer = _role_texts(rec)
    prompt_norm = normalize_text(prompt)  # once: hashed and counted (NFKC + regexes dominate text sources)
    images, objs, meta = rec["images"], rec["objects"], rec.get("meta")
    return {
        "key": key, "shard": shard, "id": rec["id"], "split": rec["split"], "task": rec["task"],
        "modality": rec["modality"], "license": rec["license"], "access": rec["access"],
        "n_images": len(images),
        # (`if images`: text records skip five empty comprehensions, ~1 us of their ~65)
        "widths": [im["width"] for im in images] if images else [],
        "heights": [im["height"] for im in images] if images else [],
        "image_hash": [f["hash"] for f in fps] if fps else [],  # fingerprint version FINGERPRINT_VERSION
        "image_dhash": [f["dhash"] for f in fps] if fps else [],
        "image_thumb": [f["thumb"] for f in fps] if fps else [],
        "prompt": prompt[:4000],
        "prompt_norm_sha1": hashlib.sha1(prompt_norm.encode("utf-8")).hexdigest() if prompt else "",
        "answer_norm_sha1": text_sha1(answer) if answer else "",
        "prompt_chars": len(prompt), "answer_chars": len(answer),
        # normalize_text leaves single spaces between words, none at the ends: counted, not split
        "prompt_words": prompt_norm.count(" ") + 1 if prompt_norm else 0,
        "n_objects": len(objs),
        "box_areas": [float((o["bbox"][2] - o["bbox"][0]) * (o["bbox"][3] - o["bbox"][1])) for o in objs]
        if objs else [],
        # Added for `mix`: the system turn (token budgets) and scalar meta fields (contamination rules
        # that depend on a sub-source, e.g. MedReason's dataset_name).
        "system": system[:4000],
        "meta": _scalar_meta(meta) if meta else "{}",
    }


def _scalar_meta(meta: dict[str, Any]) -> str:
    """Scalar meta values as sorted JSON (strings cut to 200 chars); lists and dicts are left out."""
    keep = {k: (v[:200] if isinstance(v, str) else v) for k, v in meta.items()
            if isinstance(v, (str, int, float, bool)) and not (isinstance(v, float) and v != v)}
    return _META_JSON(keep)


_META_JSON = compact_encoder(sort_keys=True, allow_nan=True)


def reject_row(raw: RawSample, exc: Exception, scrub: Scrubber | None = None) -> dict[str, str]:
    """The rejects.jsonl row of a record whose normalization raised `exc`. A SampleRejected carries its own
    reason; anything else (a decoder bug, a pathological record) is still one reject, never a dead build.
    The image's path goes in `file` only (relative to the input with `scrub`), never in `detail`, so that
    `--redact-paths` can hash it."""
    if isinstance(exc, SampleRejected):
        row = {"id": raw.id, "reason": exc.reason, "detail": exc.detail[:500]}
        if exc.file:
            row["file"] = exc.file
            row["detail"] = row["detail"].replace(exc.file, "<file>")
        return utf8_safe(scrub.row(row) if scrub else row)
    if isinstance(exc, RecursionError):
        reason, detail = "too_deep", "a value is nested too deeply to process"
    elif isinstance(exc, MemoryError):
        reason, detail = "too_large", "the record does not fit in memory"
    else:
        reason, detail = "unexpected_error", f"{type(exc).__name__}: {exc}"
    row = {"id": raw.id if isinstance(raw.id, str) else repr(raw.id), "reason": reason, "detail": detail[:500]}
    return utf8_safe(scrub.row(row) if scrub else row)


def write_shard(task: ShardTask, chunk: list[RawSample], info: SourceInfo, out_dir: Path,
                opts: NormalizeOptions, max_shard_bytes: int, input_root: str = "",
                redact_key: bytes | None = None) -> dict[str, Any]:
    """Normalize a chunk and write its tar part(s), index and stats. Returns the stats.

    Reject rows name files relative to `input_root`, or by keyed hash with `redact_key` (the stats file
    holds no absolute input path, and no file name at all under --redact-paths)."""
    t0 = time.perf_counter()
    if slow := float(os.environ.get("MEDMO_FAULT_SLOW_SHARD_S", "0") or 0):
        time.sleep(slow)  # fault injection for the kill/resume tests; never set in real builds
    tars: list[dict[str, Any]] = []
    tar = TarBuilder(out_dir / f"{task.name}.tar")
    rows: list[dict[str, Any]] = []
    rejects: list[dict[str, str]] = []
    tasks: Counter[str] = Counter()
    modalities: Counter[str] = Counter()
    n_objects = 0
    scrub = Scrubber(Path(input_root), redact_key) if input_root else None
    memo = ImageMemo()  # a file several records name is normalized once per task (VQA sources)
    try:
        for raw in chunk:
            key = raw.key  # set by the driver
            assert key is not None
            try:
                rec, members, fps = normalize(raw, info, opts, memo)
            except Exception as exc:  # noqa: BLE001 - one record can only be written or rejected
                rejects.append(reject_row(raw, exc, scrub))
                continue
            if tar.count and tar.size() + sum(map(len, members.values())) > max_shard_bytes:
                tars.append(tar.finish())
                tar = TarBuilder(out_dir / f"{task.name}-p{len(tars)}.tar")
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
    index_bytes = index_parquet_bytes(rows, {INDEX_VERSION_KEY: str(FINGERPRINT_VERSION)})
    atomic_write(out_dir / f"{task.name}{INDEX_SUFFIX}", index_bytes)
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
    atomic_write(stats_path(out_dir, task.name), dump_json(stats))
    return stats
