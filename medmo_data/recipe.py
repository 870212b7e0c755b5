"""What a recipe is: a `SourceInfo`, and a `records(root, options)` generator of RawSample / Reject.

A recipe module in `recipes/` (installed as `medmo_data.recipes`) reads one source's raw release and
yields light records: text, box coordinates in SOURCE pixels, and `ImageSource` descriptors that say how
to decode each image. Decoding, resizing, box moving, validation and writing happen in the library.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np


class SourceError(Exception):
    """The whole source is missing or unreadable: the build stops with exit code 2."""


@dataclass(frozen=True)
class SourceInfo:
    name: str
    title: str
    stages: tuple[int, ...]
    tasks: tuple[str, ...]
    modality: str
    access: str  # open | registered | credentialed
    license: str
    homepage: str = ""
    citation: str = ""
    image_format: str = "png"  # member extension: png, or jpg for JPEG sources (passed through when possible)
    images_per_sample: int = 1  # samples with another count go to their own shard series
    status: str = "ready"  # ready | planned
    version: str = "1"  # bump when the recipe's output changes
    notes: str = ""


@dataclass
class ImageSource:
    """How to get one image's pixels. Exactly one of path / data / array is set."""

    path: str | None = None
    data: bytes | None = None
    array: np.ndarray | None = None
    kind: str = "auto"  # auto (by content) | dicom | nifti | png16 (16-bit PNG) | raster
    window: str | tuple[float, float] | None = None
    value_offset: float = 0.0  # added to stored values before windowing (DeepLesion: -32768)
    rescale: tuple[float, float] | None = None  # NIfTI (slope, intercept) override
    slice_index: int | None = None
    axis: str = "axial"
    frame: int | None = None
    mode: str | None = None  # force "L" or "RGB"
    normalize: str | None = None  # minmax | percentile, for arrays and 16-bit microscopy
    member_format: str | None = None  # "jpg" / "png": this image's member extension (default the source's)

    def describe(self) -> str:
        if self.path is not None:
            return self.path
        return "<bytes>" if self.data is not None else "<array>"


@dataclass
class RawSample:
    id: str
    split: str
    task: str
    messages: list[dict[str, Any]]
    images: list[ImageSource] = field(default_factory=list)
    objects: list[dict[str, Any]] = field(default_factory=list)  # {image, label, bbox} XYXY, source pixels
    target: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    modality: str | None = None  # defaults to SourceInfo.modality
    key: str | None = None  # defaults to a slug of id


@dataclass
class Reject:
    """A record the recipe read but cannot turn into a sample; counted in the manifest by reason."""

    id: str
    reason: str
    detail: str = ""


@dataclass
class Recipe:
    info: SourceInfo
    records: Callable[[Path, dict[str, Any]], Iterator[RawSample | Reject]]
    module: ModuleType

    def info_for(self, options: dict[str, Any]) -> SourceInfo:
        """INFO, or what the module's optional `info_for(options)` makes of it (e.g. a user-declared licence)."""
        fn = getattr(self.module, "info_for", None)
        return fn(options) if fn is not None else self.info

    def hub_patterns(self, options: dict[str, Any]) -> list[str] | None:
        """The hub files a build with `options` reads: the module's optional `hub_patterns(options)` (a recipe
        whose options choose files, e.g. one release of two), else its `HUB_PATTERNS`; None: every file."""
        fn = getattr(self.module, "hub_patterns", None)
        return fn(options) if fn is not None else getattr(self.module, "HUB_PATTERNS", None)


def _load(mod: ModuleType) -> Recipe | None:
    info = getattr(mod, "INFO", None)
    fn = getattr(mod, "records", None)
    if not isinstance(info, SourceInfo) or fn is None:
        return None
    return Recipe(info=info, records=fn, module=mod)


def all_recipes() -> dict[str, Recipe]:
    """Every recipe module in medmo_data.recipes, by source name."""
    from . import recipes as pkg

    found: dict[str, Recipe] = {}
    for m in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if m.name.startswith("_"):
            continue
        r = _load(importlib.import_module(f"{pkg.__name__}.{m.name}"))
        if r is not None:
            found[r.info.name] = r
    return found


def get_recipe(name: str) -> Recipe:
    recipes = all_recipes()
    if name not in recipes:
        raise SourceError(f"unknown recipe {name!r}; `medmo-data list` shows the {len(recipes)} recipes")
    return recipes[name]


def require(path: Path, what: str) -> Path:
    """Fail the whole build (exit 2) when a file the source cannot do without is missing."""
    if not path.exists():
        raise SourceError(f"{path}: missing {what}")
    return path
