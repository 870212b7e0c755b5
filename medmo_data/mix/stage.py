"""The stage manifest (`manifests/stageN.json`): written by `medmo-data mix`, read by `medmo-train`.

One JSON file that fully determines a stage's data and settings (docs/stage-manifest.md):

    {
      "schema": "medmo-stage/v1",
      "stage": 2, "kind": "sft" | "grpo", "seed": 42, "box_format": "qwen3",
      "image": {"max_pixels": 1638400, "min_pixels": 3136} | null,     # processor bounds; null = text-only
      "weight_meaning": "probability",      # share of drawn samples taken from each source
      "sources": [
        {"name": "vqa_rad", "manifest": "../data/vqa_rad/manifest.json", "weight": 0.25,
         "samples": 1790,                   # after exclusions
         "shards": [{"path": "../data/vqa_rad/train-000000.tar", "sha256": "...", "samples": 1000}],
         "excluded_keys": "stage2.excluded.jsonl" | null}
      ],
      "filters": {...},                     # what was removed and why, with counts
      "training": {...}                     # TRL config fields of the stage (the design table)
    }

Paths resolve relative to the manifest file unless absolute.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STAGE_SCHEMA = "medmo-stage/v1"
KINDS = ("sft", "grpo")


class StageManifestError(ValueError):
    pass


@dataclass
class ShardRef:
    path: Path
    sha256: str
    samples: int


@dataclass
class StageSource:
    name: str
    weight: float
    samples: int
    shards: list[ShardRef]
    excluded_keys: set[str] = field(default_factory=set)


@dataclass
class StageManifest:
    path: Path
    stage: int
    kind: str
    seed: int
    box_format: str
    image: dict[str, Any] | None
    sources: list[StageSource]
    training: dict[str, Any]
    raw: dict[str, Any]

    @property
    def total_samples(self) -> int:
        return sum(s.samples for s in self.sources)


def _resolve(base: Path, p: str) -> Path:
    q = Path(p)
    return q if q.is_absolute() else (base / q)


def _need(d: dict[str, Any], key: str, path: Path, where: str = "") -> Any:
    if key not in d:
        raise StageManifestError(f"{path}: missing field {where}{key}")
    return d[key]


def _excluded(base: Path, ref: str | None, source: str) -> set[str]:
    """Keys of one source listed in the exclusions file (JSON lines with `source` and `key`)."""
    if not ref:
        return set()
    keys = set()
    with open(_resolve(base, ref), encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                if row.get("source") == source:
                    keys.add(row["key"])
    return keys


def load_stage_manifest(path: str | Path) -> StageManifest:
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise StageManifestError(f"{path}: not found (write it with `medmo-data mix --stage N`)") from exc
    except json.JSONDecodeError as exc:
        raise StageManifestError(f"{path}: invalid JSON at line {exc.lineno}") from exc
    if raw.get("schema") != STAGE_SCHEMA:
        raise StageManifestError(f"{path}: field schema must be {STAGE_SCHEMA!r}, got {raw.get('schema')!r}")
    kind = _need(raw, "kind", path)
    if kind not in KINDS:
        raise StageManifestError(f"{path}: field kind must be one of {KINDS}, got {kind!r}")
    base = path.parent
    sources = []
    for i, s in enumerate(_need(raw, "sources", path)):
        where = f"sources[{i}]."
        shards = [ShardRef(_resolve(base, sh["path"]), sh.get("sha256", ""), int(sh.get("samples", 0)))
                  for sh in _need(s, "shards", path, where)]
        sources.append(StageSource(
            name=_need(s, "name", path, where), weight=float(_need(s, "weight", path, where)),
            samples=int(s.get("samples", sum(x.samples for x in shards))), shards=shards,
            excluded_keys=_excluded(base, s.get("excluded_keys"), s["name"]),
        ))
    return StageManifest(
        path=path, stage=int(_need(raw, "stage", path)), kind=kind, seed=int(raw.get("seed", 42)),
        box_format=raw.get("box_format", "qwen3"), image=raw.get("image"), sources=sources,
        training=dict(_need(raw, "training", path)), raw=raw,
    )
