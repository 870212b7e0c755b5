"""Built sources as `mix` sees them (per-shard index Parquet + manifest.json, no tars) for the mix tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from medmo_data.shards.writer import INDEX_SCHEMA


def index_row(key: str, **kw: Any) -> dict[str, Any]:
    """One index row in INDEX_SCHEMA with defaults; kw overrides (sha/dhash as single images)."""
    sha, dh = kw.pop("sha", None), kw.pop("dhash", None)
    row = {"key": key, "shard": "train-000000.tar", "id": key, "split": "train", "task": "caption",
           "modality": "xray", "license": "CC-BY-4.0", "access": "open", "n_images": 1 if sha else 0,
           "widths": [512] if sha else [], "heights": [512] if sha else [], "image_hash": [sha] if sha else [],
           "image_dhash": [dh] if sha else [], "prompt": "Describe the image.", "prompt_norm_sha1": "",
           "answer_norm_sha1": "", "prompt_chars": 0, "answer_chars": 0, "prompt_words": 0, "n_objects": 0,
           "box_areas": [], "system": "", "meta": "{}"}
    row.update(kw)
    from medmo_data.mix.fingerprint import text_sha1
    if not row["prompt_norm_sha1"]:
        row["prompt_norm_sha1"] = text_sha1(row["prompt"])
    row["answer_norm_sha1"] = row["answer_norm_sha1"] or text_sha1(kw.get("answer", key))
    row.pop("answer", None)
    row["prompt_chars"] = len(row["prompt"])
    return row


def write_source(data: Path, name: str, rows: list[dict[str, Any]], license: str = "CC-BY-4.0",
                 access: str = "open", drop: tuple[str, ...] = (), per_file: int = 10**9) -> Path:
    """A built source as mix sees it: per-shard index Parquet + manifest.json (tars are never read).
    `drop`: index columns left out, as in indexes written before they existed; `per_file`: rows per shard."""
    d = data / name
    d.mkdir(parents=True, exist_ok=True)
    shards = []
    for split in sorted({r["split"] for r in rows}):
        rows_of = [r for r in rows if r["split"] == split]
        for i in range(0, len(rows_of), per_file):
            stem = f"{split}-{i // per_file:06d}"
            part = [dict(r, shard=f"{stem}.tar", license=license, access=access) for r in rows_of[i:i + per_file]]
            table = pa.Table.from_pylist(part, schema=INDEX_SCHEMA).drop_columns(list(drop))
            pq.write_table(table, d / f"{stem}.index.parquet")
            shards.append({"path": f"{stem}.tar", "split": split, "group": split, "samples": len(part),
                           "bytes": 1, "sha256": "ab" * 32, "index": f"{stem}.index.parquet"})
    (d / "manifest.json").write_text(json.dumps({"source": name, "license": license, "access": access,
                                                 "shards": shards}))
    return d


def spec_file(tmp: Path, sources: list[str], **extra: Any) -> Path:
    import yaml

    spec = {"stage": 2, "kind": "sft", "image": {"min_pixels": 65536, "max_pixels": 1638400},
            "sources": [{"name": s, "weight": 1.0} for s in sources], "training": {"seed": 42}, **extra}
    p = tmp / "spec.yaml"
    p.write_text(yaml.safe_dump(spec))
    return p
