"""The source manifest `<out>/<name>/manifest.json`: shards with sha256 and counts, what was read,
written and rejected (by reason), versions, input fingerprint, licence and access, histograms.

Everything in it is a function of the input and the options except the `created` timestamp. It holds no
input path and no input folder name (hospital exports put MRNs and names in them): the input is known by a
fingerprint of its relative paths and sizes only. Every reject (recipe-level and sample-level) is listed by
id in `rejects.jsonl` beside it, with paths relative to the input (or keyed hashes: `--redact-paths`).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

from medmo_data import __version__
from medmo_data.recipe import SourceInfo
from medmo_data.schema import SCHEMA_VERSION
from medmo_data.shards.writer import atomic_write

from .normalize import dump_json
from .options import BuildOptions
from .rejects import Scrubber

MANIFEST = "manifest.json"
REJECTS = "rejects.jsonl"
MANIFEST_VERSION = 1


def info_json(info: SourceInfo) -> dict[str, Any]:
    d = asdict(info)
    d["stages"] = list(info.stages)
    d["tasks"] = list(info.tasks)
    return d


def make_source_manifest(info: SourceInfo, opts: BuildOptions, root: Path, fingerprint: str,
                         stats: list[dict[str, Any]], recipe_rejects: list[dict[str, str]],
                         read: int) -> dict[str, Any]:
    stats = sorted(stats, key=lambda s: s["name"])
    reasons: Counter[str] = Counter(getattr(recipe_rejects, "reasons", None)
                                    or Counter(r["reason"] for r in recipe_rejects))
    tasks: Counter[str] = Counter()
    modalities: Counter[str] = Counter()
    splits: Counter[str] = Counter()
    shards = []
    objects = 0
    for s in stats:
        reasons.update(s["rejects_by_reason"])
        tasks.update(s["tasks"])
        modalities.update(s["modalities"])
        splits[s["split"]] += s["written"]
        objects += s["objects"]
        for t in s["tars"]:
            shards.append({"path": t["path"], "split": s["split"], "group": s["group"], "samples": t["samples"],
                           "bytes": t["bytes"], "sha256": t["sha256"], "index": s["index"]["path"],
                           "stats": f"{s['name']}.stats.json"})
    written = sum(s["written"] for s in stats)
    rejected = sum(reasons.values())
    if read != written + rejected:
        raise AssertionError(f"accounting broke: read {read} != written {written} + rejected {rejected}")
    return {
        "manifest_version": MANIFEST_VERSION,
        "schema": SCHEMA_VERSION,
        "medmo_data_version": __version__,
        "source": info.name,
        "recipe_version": info.version,
        "info": info_json(info),
        "license": info.license,
        "access": info.access,
        "input": {"fingerprint": fingerprint},
        "options": {
            "split": opts.split, "limit": opts.limit, "shard_samples": opts.shard_samples,
            "max_shard_bytes": opts.max_shard_bytes, "normalize": asdict(opts.normalize),
            "recipe_options": opts.recipe_options, "redact_paths": opts.redact_paths,
            "allow_empty": opts.allow_empty, "max_reject_rate": opts.max_reject_rate,
        },
        "counts": {"read": read, "written": written, "rejected": rejected},
        "rejects_by_reason": dict(sorted(reasons.items())),
        "rejects_file": REJECTS,
        "splits": dict(sorted(splits.items())),
        "tasks": dict(sorted(tasks.items())),
        "modalities": dict(sorted(modalities.items())),
        "objects": objects,
        "shards": shards,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write(out_dir: Path, man: dict[str, Any], stats: list[dict[str, Any]],
          recipe_rejects: list[dict[str, str]], scrub: Scrubber) -> Path:
    """rejects.jsonl (every row through `scrub`: relative or hashed paths, valid UTF-8), then manifest.json."""
    tmp = out_dir / f".{REJECTS}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:  # streamed: recipe rejects may be millions of rows
        for r in recipe_rejects:
            f.write(dump_json(scrub.row({"stage": "recipe", **r})) + b"\n")
        for s in sorted(stats, key=lambda s: s["name"]):
            for r in s["rejects"]:
                f.write(dump_json(scrub.row({"stage": s["name"], **r})) + b"\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, out_dir / REJECTS)
    path = out_dir / MANIFEST
    atomic_write(path, json.dumps(man, ensure_ascii=False, sort_keys=True, indent=1).encode() + b"\n")
    return path


def load(path: Path) -> dict[str, Any]:
    """A source manifest from its folder or file path."""
    p = path / MANIFEST if path.is_dir() else path
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{p}: no manifest (build the source first)") from exc
