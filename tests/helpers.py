"""Shared test helpers: build a recipe from its fixture, read the samples back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medmo_data.build.distributor import BuildOptions, BuildResult, build
from medmo_data.build.normalize import NormalizeOptions
from medmo_data.recipe import get_recipe
from medmo_data.shards.reader import iter_samples
from tests.fixtures import make


def build_fixture(name: str, tmp_path: Path, **kw: Any) -> BuildResult:
    """Write recipe `name`'s fixture under tmp_path/raw and build it into tmp_path/out."""
    raw = make(name, tmp_path / "raw")
    norm = kw.pop("normalize", NormalizeOptions())
    opts = BuildOptions(output=tmp_path / "out", normalize=norm, **kw)
    return build(get_recipe(name), raw, opts)


def read_samples(folder: Path) -> list[dict[str, Any]]:
    """Every sample of a built source, in manifest order: {"__key__", "json", "0.png", ...}."""
    from medmo_data.build.manifest import load

    man = load(folder)
    out = []
    for sh in man["shards"]:
        out.extend(iter_samples(folder / sh["path"]))
    return out


def by_id(samples: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {s["json"]["id"]: s for s in samples}


def texts(rec: dict[str, Any], role: str) -> str:
    return "".join(p.get("text", "") for m in rec["messages"] if m["role"] == role for p in m["content"]
                   if p["type"] == "text")
