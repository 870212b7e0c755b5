"""The dataset card `OUT/NAME/README.md`: makes a built source folder load as its samples.

Without a card, `datasets.load_dataset(folder)` counts file suffixes, picks the per-shard index Parquet
files and returns index rows without images. The card's YAML `configs` name the tars instead, one
config per shard series (`default`, `2img`, `noboxes`, ...; splits inside), and `dataset_info` declares
each series' features so nothing is inferred from the first five samples: the record is a `Json()`
column (every key kept, whatever the sample) and each image member an `Image()` column.

The card also carries what the hub shows: licence, access, citation, counts, and how to load and render.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

from medmo_data.schema import SPLITS
from medmo_data.shards.writer import atomic_write

CARD = "README.md"
MANIFEST = "manifest.json"  # medmo_data.build.manifest.MANIFEST; not imported: the build calls this module
DEFAULT_SERIES = "default"
# Shard names are `<group>-<6 digits>[-pK].tar`; the digit class keeps `train-2img-...` out of `train`.
_DIGITS = "[0-9]" * 6
# `<split>[-<n>img][-noboxes][-<fmt>_<fmt>...]`: the last part names each image's member format when it
# differs from the source's (a JPEG passed through in a PNG source).
_GROUP = re.compile(r"^(?P<split>train|val|test)(?:-(?P<n>\d+)img)?(?P<noboxes>-noboxes)?(?:-(?P<fmts>[a-z0-9]+(?:_[a-z0-9]+)*))?$")
# Hub licence ids (https://huggingface.co/docs/hub/repositories-licenses) our recipes use verbatim.
HUB_LICENSES = {"apache-2.0", "mit", "cc0-1.0", "cc-by-4.0", "cc-by-nc-4.0", "cc-by-nc-sa-4.0",
                "cc-by-nc-nd-4.0", "cc-by-nc-nd-3.0", "openrail"}
SIZE_CATEGORIES = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                   (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M")]
TASK_CATEGORIES = {"vqa": "visual-question-answering", "mcq": "question-answering", "text_qa": "question-answering",
                   "grounding": "object-detection", "detection": "object-detection", "caption": "image-to-text",
                   "report": "image-to-text", "classification": "image-classification",
                   "summarization": "summarization", "instruction": "text-generation",
                   "reasoning": "text-generation"}


class CardError(ValueError):
    """A folder that is not a built source, or shard names the card cannot describe."""


def series_name(group: str, images_per_sample: int, image_format: str = "png") -> tuple[str, str, list[str]]:
    """(series, split, image members) of a shard group: `train` -> default, `val-2img-noboxes` -> 2img-noboxes."""
    m = _GROUP.match(group)
    if m is None:
        raise CardError(f"shard group {group!r}: not <split>[-<n>img][-noboxes][-<formats>]")
    n = int(m["n"]) if m["n"] is not None else images_per_sample
    fmts = m["fmts"].split("_") if m["fmts"] else [image_format] * n
    if len(fmts) != n:
        raise CardError(f"shard group {group!r}: {len(fmts)} image formats for {n} images")
    parts = [f"{m['n']}img"] if m["n"] is not None else []
    parts += (["noboxes"] if m["noboxes"] else []) + ([m["fmts"]] if m["fmts"] else [])
    return "-".join(parts) or DEFAULT_SERIES, m["split"], [f"{i}.{f}" for i, f in enumerate(fmts)]


def shard_series(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{series: {"members": [0.png, ...], "splits": {split: {"groups": {group}, "samples": k, "shards": m}}}}."""
    info = manifest["info"]
    out: dict[str, dict[str, Any]] = {}
    for sh in manifest["shards"]:
        name, split, members = series_name(sh["group"], info["images_per_sample"], info["image_format"])
        s = out.setdefault(name, {"members": members, "splits": defaultdict(lambda: {"groups": set(), "samples": 0,
                                                                               "shards": 0})})
        sp = s["splits"][split]
        sp["groups"].add(sh["group"])
        sp["samples"] += sh["samples"]
        sp["shards"] += 1
    return out


def features_yaml(members: list[str]) -> list[dict[str, str]]:
    """The declared features of one series, as `datasets.Features({...})._to_yaml_list()` writes them:
    `json` as Json, each image member as Image, `__key__` / `__url__` as strings; nothing is left to
    inference. Written out rather than built through `datasets`, whose import (~0.7 s) was a third of a
    small build's wall time; tests/test_publish_card.py checks it against `datasets` itself."""
    return ([{"name": "json", "dtype": "json"}] + [{"name": m, "dtype": "image"} for m in members]
            + [{"name": "__key__", "dtype": "string"}, {"name": "__url__", "dtype": "string"}])


def _license_fields(info: dict[str, Any]) -> dict[str, str]:
    lic = info["license"].strip().lower()
    if lic in HUB_LICENSES:
        return {"license": lic}
    slug = re.sub(r"[^a-z0-9.]+", "-", lic).strip("-")[:64] or "unknown"
    out = {"license": "other", "license_name": slug}
    if info.get("homepage"):
        out["license_link"] = info["homepage"]
    return out


def card_metadata(manifest: dict[str, Any]) -> dict[str, Any]:
    """The YAML header: hub metadata, `configs` (one per shard series) and their declared features."""
    info = manifest["info"]
    series = shard_series(manifest)
    if not series:
        raise CardError(f"{info['name']}: the manifest lists no shards")
    default = DEFAULT_SERIES if DEFAULT_SERIES in series else max(
        series, key=lambda k: sum(sp["samples"] for sp in series[k]["splits"].values()))
    configs, infos = [], []
    for name in sorted(series, key=lambda k: (k != default, k)):
        s = series[name]
        # One group per (series, split): the group name is the split plus the series suffix.
        files = [{"split": split, "path": f"{min(sp['groups'])}-{_DIGITS}*.tar"}
                 for split, sp in sorted(s["splits"].items(), key=lambda kv: SPLITS.index(kv[0]))]
        cfg: dict[str, Any] = {"config_name": name, "data_files": files}
        if name == default:
            cfg["default"] = True
        configs.append(cfg)
        infos.append({"config_name": name, "features": features_yaml(s["members"])})
    written = manifest["counts"]["written"]
    size = next((label for limit, label in SIZE_CATEGORIES if written < limit), "n>100M")
    tasks = sorted({TASK_CATEGORIES[t] for t in info["tasks"] if t in TASK_CATEGORIES})
    return {
        "pretty_name": info["title"],
        **_license_fields(info),
        "language": ["en"],
        "task_categories": tasks,
        "tags": ["medical", "webdataset", "medmo-data", info["modality"]],
        "size_categories": [size],
        "configs": configs,
        "dataset_info": infos,
    }


def _counts_table(manifest: dict[str, Any]) -> str:
    rows = ["| config | split | image members | samples | shards |", "|---|---|---|---|---|"]
    for name, s in sorted(shard_series(manifest).items()):
        for split, sp in sorted(s["splits"].items()):
            rows.append(f"| `{name}` | {split} | {' '.join(s['members']) or 'none'} | {sp['samples']:,} | {sp['shards']} |")
    return "\n".join(rows)


def card_text(manifest: dict[str, Any]) -> str:
    """The whole README.md: YAML header, then what a reader of the hub page needs."""
    info = manifest["info"]
    meta = card_metadata(manifest)
    c = manifest["counts"]
    access_note = {
        "open": "open: anyone may download the source.",
        "registered": "registered: the source requires a sign-up or agreement; redistribution may not be allowed.",
        "credentialed": "credentialed: the source requires credentialed access and a data use agreement; "
                        "do not share these shards beyond people who hold the same access.",
    }[info["access"]]
    other = [m["config_name"] for m in meta["configs"] if not m.get("default")]
    load_other = f'\nds = load_dataset("PATH", name="{other[0]}")  # another shard series' if other else ""
    body = f"""
# {info['title']} (medmo-data `{info['name']}`)

Built by medmo-data {manifest['medmo_data_version']} (schema `{manifest['schema']}`,
recipe version {manifest['recipe_version']}) from the upstream release at {info['homepage'] or 'its homepage'}.

- **Licence**: {info['license']}
- **Access**: {access_note}
- **Tasks**: {', '.join(info['tasks'])} · **modality**: {info['modality']} · **stages**: \
{', '.join(map(str, info['stages']))}
- **Counts**: {c['read']:,} records read, {c['written']:,} samples written, {c['rejected']:,} rejected \
(by reason in `manifest.json`, by id in `rejects.jsonl`).

{_counts_table(manifest)}

## Loading

```python
from datasets import load_dataset
ds = load_dataset("PATH")  # PATH: this folder or its hub repo id; the `default` config{load_other}
row = ds["train"][0]  # {{"json": record, "0.{info['image_format']}": PIL image, ..., "__key__", "__url__"}}
```

Each config is one shard series: every sample in it has the same image members. Its features are declared
above (`json` is the whole `medmo/v1` record as a `Json` column), so nothing is dropped or inferred.
Boxes live in `row["json"]["objects"]` (XYXY pixels of the stored image), not in the text; turn a row into
trainable chat text in a chosen box frame (`qwen3`, `pixel`, `json`):

```python
from medmo_data.publish.hf import render_row
ds = ds.map(render_row, fn_kwargs={{"box_format": "qwen3"}})  # adds `messages` with boxes as text
```

Files besides the tars (`*.index.parquet`, `*.stats.json`, `manifest.json`, `rejects.jsonl`) are the
per-shard index, statistics, the build manifest and the rejects; the configs above do not load them.

## Citation

{info['citation'] or 'See the upstream homepage.'}
"""
    return "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=1000) + "---\n" + body


def write_card_at(out: str | Path) -> None:
    """`write_card` for a local folder or an fsspec URL (a Ray build into an object store or `file://`)."""
    from medmo_data.shards.storage import RemoteDir, as_url

    url = as_url(out)
    if url is None:
        write_card(Path(out))
        return
    remote = RemoteDir(url)
    manifest = json.loads(remote.read_bytes(MANIFEST))
    if not manifest["shards"]:
        if remote.exists(CARD):
            remote.remove(CARD)
        return
    with tempfile.TemporaryDirectory(prefix="medmo-card-") as tmp:
        local = Path(tmp) / CARD
        local.write_text(card_text(manifest), encoding="utf-8")
        remote.commit(local)


def write_card(out_dir: Path) -> Path:
    """Write `out_dir/README.md` from `out_dir/manifest.json` (atomically); returns its path."""
    man_path = Path(out_dir) / MANIFEST
    try:
        manifest = json.loads(man_path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CardError(f"{man_path}: no manifest (build the source first)") from exc
    path = Path(out_dir) / CARD
    if not manifest["shards"]:
        path.unlink(missing_ok=True)  # a build that wrote nothing has nothing to load; no stale card
        return path
    atomic_write(path, card_text(manifest).encode("utf-8"))
    return path
