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


def tarfile_reference(samples: list[tuple[str, dict[str, bytes]]]) -> bytes:
    """What Python's tarfile writes (GNU format, mode 0444, owner and mtime 0) for (key, members) samples,
    members in name order: the bytes our TarBuilder must match."""
    import io
    import tarfile

    ref = io.BytesIO()
    with tarfile.open(fileobj=ref, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for key, members in samples:
            for field in sorted(members):
                ti = tarfile.TarInfo(f"{key}.{field}")
                ti.size, ti.mtime, ti.mode, ti.uid, ti.gid, ti.uname, ti.gname = (
                    len(members[field]), 0, 0o444, 0, 0, "", "")
                tar.addfile(ti, io.BytesIO(members[field]))
    return ref.getvalue()
