"""What a build is asked to do: output folder, workers, limits, chunking, pixel and recipe options."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from medmo_data.recipe import Recipe

from .normalize import NormalizeOptions, dump_json

# Bumped whenever the library changes the bytes it writes for unchanged input and options (2: 8-bit PNGs
# pass through with their metadata chunks dropped; JPEGs of the folder recipe pass through).
PIPELINE_VERSION = 3


@dataclass
class BuildOptions:
    output: Path = Path("data")
    workers: int = 1
    limit: int | None = None
    split: str | None = None
    shard_samples: int = 1000
    max_shard_bytes: int = 512 * 1024 * 1024
    max_chunk_array_bytes: int = 256 * 1024 * 1024  # in-memory pixel arrays per chunk (npz sources)
    normalize: NormalizeOptions = field(default_factory=NormalizeOptions)
    recipe_options: dict[str, Any] = field(default_factory=dict)
    # Outcome and privacy: none changes a shard; only redact_paths (it changes stats files) is in `digest`.
    redact_paths: bool = False  # rejects.jsonl names files by keyed hash (rejects.redaction_key)
    allow_empty: bool = False  # a build that writes nothing succeeds
    max_reject_rate: float = 0.5  # one reject reason over this share of the records read fails the build

    def digest(self, recipe: Recipe) -> str:
        """What changes shard contents: pipeline and recipe versions, pixel options, recipe options, chunk
        size. A resumed build reuses a shard only when this matches, so old and new bytes never mix."""
        payload = {"pipeline": PIPELINE_VERSION, "recipe": recipe.info.name, "version": recipe.info.version,
                   "normalize": asdict(self.normalize), "recipe_options": self.recipe_options,
                   "shard_samples": self.shard_samples, "max_shard_bytes": self.max_shard_bytes}
        if self.redact_paths:  # stats files then name rejected files by hash: not reusable without it
            payload["redact_paths"] = True
        return hashlib.sha256(dump_json(payload)).hexdigest()[:16]
