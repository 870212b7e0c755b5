"""Hugging Face `datasets` helpers: load several built sources at once without losing images, and a
`map` function that turns a loaded row into trainable chat text.

`load_dataset("webdataset", data_files=[a/*.tar, b/*.tar])` types its columns from the first tar only:
when `a` stores `0.png` and `b` stores `0.jpg`, every `b` row comes back with its image silently `None`.
`load_sources` declares the union of the sources' members instead (and the record as one `Json`
column), then checks that every image the manifests count came back; anything else raises.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from medmo_data.build.manifest import load as load_manifest
from medmo_data.render import render_messages

from .card import CardError, series_name


class LoadError(ValueError):
    """Sources that cannot be loaded together without losing data."""


def render_row(row: dict[str, Any], box_format: str = "qwen3") -> dict[str, Any]:
    """`datasets.map` helper: the row's `medmo/v1` record rendered to chat messages.

    Boxes (`objects` parts) become text in `box_format` and the `{box_format_hint}` placeholder the
    matching instruction (`medmo_data.render.render_messages`). Every part keeps both keys so the column
    has one Arrow type: `{"type": "image", "text": None}` marks where an image goes.
    """
    msgs = render_messages(row["json"], box_format=box_format)
    return {"messages": [{"role": m["role"], "content": [{"type": p["type"], "text": p.get("text")}
                                                         for p in m["content"]]} for m in msgs]}


def _plan(folders: list[Path], split: str, series: str) -> tuple[list[str], dict[str, int], str]:
    """Tar paths, expected non-null count per image member, and the schema version."""
    files: list[str] = []
    expected: Counter[str] = Counter()
    schemas = set()
    for folder in folders:
        man = load_manifest(folder)
        schemas.add(man["schema"])
        info = man["info"]
        for sh in man["shards"]:
            try:
                name, sh_split, members = series_name(sh["group"], info["images_per_sample"], info["image_format"])
            except CardError as exc:
                raise LoadError(f"{folder}/manifest.json: {exc}") from exc
            if name != series or sh_split != split or not sh["samples"]:
                continue
            files.append(str(Path(folder) / sh["path"]))
            for m in members:
                expected[m] += sh["samples"]
    if len(schemas) > 1:
        raise LoadError(f"sources with different record schemas {sorted(schemas)}: rebuild them with one version")
    if not files:
        raise LoadError(f"no {split!r} shards of series {series!r} in {', '.join(map(str, folders))}")
    return files, dict(expected), schemas.pop()


def load_sources(folders: list[str | Path], split: str = "train", series: str = "default",
                 streaming: bool = False, **kwargs: Any):
    """One `datasets.Dataset` (or IterableDataset) over several built sources' `series` shards.

    Columns: `json` (the record), one `Image` column per member any source stores (`0.png`, `0.jpg`,
    ...; `None` where a source has no such member), `__key__`, `__url__`. Non-streaming loads are checked:
    each image column holds exactly as many images as the manifests say, else `LoadError`.
    """
    from datasets import Features, Image, Json, Value, load_dataset

    files, expected, _ = _plan([Path(f) for f in folders], split, series)
    cols: dict[str, Any] = {"json": Json()}
    cols.update({m: Image() for m in sorted(expected)})
    cols.update({"__key__": Value("string"), "__url__": Value("string")})
    ds = load_dataset("webdataset", data_files={split: files}, split=split, features=Features(cols),
                      streaming=streaming, **kwargs)
    if not streaming:
        table = ds.data
        for member, n in expected.items():
            got = len(table) - table.column(member).null_count
            if got != n:
                raise LoadError(f"member {member}: {got} images loaded but the manifests count {n}")
    return ds
