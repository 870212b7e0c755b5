"""`medmo-data export`: a built source or a stage manifest, in the layouts training frameworks read.

- `llamafactory`: LLaMA-Factory's multimodal sharegpt layout in OpenAI roles (`messages` with `role` /
  `content`, an `images` list, one `<image>` token per image in the text) plus `dataset_info.json`;
- `sharegpt`: the classic layout (`conversations` with `from` / `value`, `human` / `gpt`, a `system`
  column) plus its `dataset_info.json` entry;
- `swift`: ms-swift JSONL with `messages`, `images` (absolute paths) and, for box samples, grounding
  `objects` (`ref` labels, `bbox` XYXY in stored pixels, `image_id`) that the assistant text points at
  with `<ref-object><bbox>`: swift's template writes the boxes in the trained model's own frame;
- `parquet`: one Parquet dataset, the same schema for every source (`images` a list of HF `Image`s
  holding the stored bytes), loadable with `load_dataset("parquet", data_dir=OUT)` or from the hub.

Image bytes are copied from the shards as stored (never re-encoded). Boxes in text (llamafactory,
sharegpt, parquet `messages`) are rendered by `medmo_data.render` in `box_format`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medmo_data.build.manifest import load as load_source_manifest
from medmo_data.mix.stage import load_stage_manifest
from medmo_data.render import BOX_FORMATS, HINT, render_messages
from medmo_data.shards.reader import iter_samples
from medmo_data.shards.writer import atomic_write

FORMATS = ("llamafactory", "sharegpt", "swift", "parquet")
IMAGE_TOKEN = "<image>"  # LLaMA-Factory's IMAGE_PLACEHOLDER default and ms-swift's image tag
SWIFT_HINT = "Name each finding and give its bounding box."  # swift's template writes the box frame
PARQUET_ROWS_PER_GROUP = 256


class ExportError(ValueError):
    """An input that is neither a built source nor a stage manifest, or an unknown format."""


@dataclass
class ExportResult:
    files: list[Path]
    samples: dict[str, int] = field(default_factory=dict)  # by split
    images: int = 0


@dataclass
class _Input:
    name: str
    shards: list[tuple[Path, set[str]]]  # tar path, keys to skip (stage exclusions)
    total: int  # samples that will be exported (for progress)
    box_format: str = "qwen3"  # a stage manifest's own frame
    weights: dict[str, float] | None = None  # a stage's per-source draw probabilities

    def stem(self, rec: dict[str, Any]) -> str:
        """File stem of a record: `vqa_rad`, or `stage2_vqa_rad` (a stage keeps one file per source so its
        weights can be applied by the trainer)."""
        return self.name if self.weights is None else f"{self.name}_{rec['source']}"


def _open_input(path: Path) -> _Input:
    if path.is_dir():
        if not (path / "manifest.json").exists():
            raise ExportError(f"{path}/manifest.json: not found (build the source first, or pass a stage manifest)")
        man = load_source_manifest(path)
        return _Input(man["source"], [(path / sh["path"], set()) for sh in man["shards"]],
                      man["counts"]["written"])
    if path.suffix != ".json":
        raise ExportError(f"{path}: expected a built source folder or a stage manifest (manifests/stageN.json)")
    st = load_stage_manifest(path)
    shards = [(sh.path, src.excluded_keys) for src in st.sources for sh in src.shards]
    return _Input(f"stage{st.stage}", shards, st.total_samples, st.box_format,
                  {src.name: src.weight for src in st.sources})


def _samples(inp: _Input) -> Iterator[dict[str, Any]]:
    for tar, skip in inp.shards:
        for s in iter_samples(tar):
            if s["__key__"] not in skip:
                yield s


def _image_files(sample: dict[str, Any], images_dir: Path, out: Path) -> list[str]:
    """Write the sample's image members as files (bytes as stored); paths relative to `out`."""
    rec = sample["json"]
    paths = []
    folder = images_dir / rec["source"]
    folder.mkdir(parents=True, exist_ok=True)
    for im in rec["images"]:
        p = folder / f"{sample['__key__']}.{im['member']}"
        if not p.exists() or p.stat().st_size != len(sample[im["member"]]):
            atomic_write(p, sample[im["member"]])
        paths.append(os.path.relpath(p, out))
    return paths


def _flat_turns(rec: dict[str, Any], box_format: str) -> list[dict[str, str]]:
    """Messages as plain strings: image parts become `<image>`, boxes text in `box_format`."""
    return [{"role": m["role"], "content": "".join(IMAGE_TOKEN if p["type"] == "image" else p["text"]
                                                   for p in m["content"])}
            for m in render_messages(rec, box_format)]


def _swift_row(rec: dict[str, Any], images: list[str]) -> dict[str, Any]:
    """ms-swift's grounding layout: one `<ref-object><bbox>` per object, the boxes in `objects`."""
    msgs = []
    for m in rec["messages"]:
        text = []
        for p in m["content"]:
            if p["type"] == "image":
                text.append(IMAGE_TOKEN)
            elif p["type"] == "objects":
                text.append("\n".join("<ref-object><bbox>" for _ in rec["objects"]))
            else:
                text.append(p["text"].replace(HINT, SWIFT_HINT))
        msgs.append({"role": m["role"], "content": "".join(text)})
    row: dict[str, Any] = {"messages": msgs, "images": images}
    if any(p["type"] == "objects" for m in rec["messages"] for p in m["content"]):
        row["objects"] = {"ref": [o["label"] for o in rec["objects"]],
                          "bbox": [[round(float(v), 3) for v in o["bbox"]] for o in rec["objects"]],
                          "bbox_type": "real", "image_id": [o["image"] for o in rec["objects"]]}
    return row


def _sharegpt_row(rec: dict[str, Any], images: list[str], box_format: str) -> dict[str, Any]:
    turns = _flat_turns(rec, box_format)
    system = "\n".join(t["content"] for t in turns if t["role"] == "system")
    conv = [{"from": {"user": "human", "assistant": "gpt"}[t["role"]], "value": t["content"]}
            for t in turns if t["role"] != "system"]
    return {"conversations": conv, "system": system, "images": images}


def _info_entry(fmt: str, file_name: str) -> dict[str, Any]:
    """The `dataset_info.json` entry LLaMA-Factory's parser reads (data/README.md of LLaMA-Factory)."""
    if fmt == "sharegpt":
        return {"file_name": file_name, "formatting": "sharegpt",
                "columns": {"messages": "conversations", "system": "system", "images": "images"}}
    return {"file_name": file_name, "formatting": "sharegpt",
            "columns": {"messages": "messages", "images": "images"},
            "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                     "assistant_tag": "assistant", "system_tag": "system"}}


class _JsonlFiles:
    """One JSONL per stem and split (`vqa_rad_train`), written under a temporary name, renamed when complete."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.handles: dict[str, Any] = {}

    def path(self, split: str) -> Path:
        return self.out / f"{split}.jsonl"

    def write(self, split: str, row: dict[str, Any]) -> None:
        if split not in self.handles:
            self.handles[split] = open(self.out / f".{self.path(split).name}.tmp", "w", encoding="utf-8")  # noqa: SIM115
        self.handles[split].write(json.dumps(row, ensure_ascii=False) + "\n")

    def close(self, ok: bool) -> list[Path]:
        done = []
        for split, f in self.handles.items():
            f.close()
            tmp = self.out / f".{self.path(split).name}.tmp"
            if ok:
                os.replace(tmp, self.path(split))
                done.append(self.path(split))
            else:
                tmp.unlink(missing_ok=True)
        return done


def _export_jsonl(inp: _Input, out: Path, fmt: str, box_format: str, progress: Callable[[int], None] | None
                  ) -> ExportResult:
    res = ExportResult([])
    files = _JsonlFiles(out)
    ok = False
    try:
        for n, sample in enumerate(_samples(inp), 1):
            rec = sample["json"]
            images = _image_files(sample, out / "images", out)
            if fmt == "swift":
                images = [str((out / p).resolve()) for p in images]  # ms-swift: absolute paths preferred
                row = _swift_row(rec, images)
            elif fmt == "sharegpt":
                row = _sharegpt_row(rec, images, box_format)
            else:
                row = {"messages": _flat_turns(rec, box_format), "images": images}
            files.write(f"{inp.stem(rec)}_{rec['split']}", row)
            res.samples[rec["split"]] = res.samples.get(rec["split"], 0) + 1
            res.images += len(images)
            if progress:
                progress(n)
        ok = True
    finally:
        res.files = files.close(ok)
    if fmt in ("llamafactory", "sharegpt"):
        info_path = out / "dataset_info.json"
        info = json.loads(info_path.read_text()) if info_path.exists() else {}
        for p in res.files:
            info[f"medmo_{p.stem}"] = _info_entry(fmt, p.name)
        atomic_write(info_path, json.dumps(info, indent=1, sort_keys=True).encode() + b"\n")
        res.files.append(info_path)
    return res


def parquet_features():
    """The one schema every parquet export has, whatever the sources."""
    from datasets import Features, Image, List, Value

    return Features({
        "id": Value("string"), "source": Value("string"), "split": Value("string"), "task": Value("string"),
        "modality": Value("string"), "license": Value("string"), "access": Value("string"),
        "messages": List({"role": Value("string"), "content": Value("string")}),
        "images": List(Image()),
        "objects": List({"image": Value("int32"), "label": Value("string"), "bbox": List(Value("float64"))}),
        "record": Value("string"),  # the whole medmo/v1 record as JSON text (readable by any datasets)
    })


def _parquet_row(sample: dict[str, Any], box_format: str) -> dict[str, Any]:
    rec = sample["json"]
    return {
        **{k: rec[k] for k in ("id", "source", "split", "task", "modality", "license", "access")},
        "messages": _flat_turns(rec, box_format),
        "images": [{"bytes": sample[im["member"]], "path": f"{sample['__key__']}.{im['member']}"}
                   for im in rec["images"]],
        "objects": rec["objects"],
        "record": json.dumps(rec, ensure_ascii=False, sort_keys=True),
    }


def _export_parquet(inp: _Input, out: Path, box_format: str, progress: Callable[[int], None] | None
                    ) -> ExportResult:
    import pyarrow as pa
    import pyarrow.parquet as pq

    feats = parquet_features()
    schema = feats.arrow_schema  # carries the `huggingface` features metadata (Image, Json)
    (out / "data").mkdir(parents=True, exist_ok=True)
    writers: dict[str, Any] = {}
    buffers: dict[str, list[dict[str, Any]]] = {}
    res = ExportResult([])

    def flush(split: str) -> None:
        rows = buffers.pop(split, [])
        if rows:
            writers[split].write_table(pa.Table.from_pylist(rows, schema=schema))

    ok = False
    try:
        for n, sample in enumerate(_samples(inp), 1):
            row = _parquet_row(sample, box_format)
            split = f"{row['split']}-{inp.stem(sample['json'])}"  # data/<split>-<stem>.parquet
            if split not in writers:
                writers[split] = pq.ParquetWriter(out / "data" / f".{split}.tmp", schema, compression="zstd")
            buffers.setdefault(split, []).append(row)
            if len(buffers[split]) >= PARQUET_ROWS_PER_GROUP:
                flush(split)
            res.samples[row["split"]] = res.samples.get(row["split"], 0) + 1
            res.images += len(row["images"])
            if progress:
                progress(n)
        ok = True
    finally:
        for split, w in writers.items():
            if ok:
                flush(split)
            w.close()
            tmp = out / "data" / f".{split}.tmp"
            if ok:  # `data/<split>-<stem>.parquet`: `datasets` reads the split from the name; sources add up
                final = out / "data" / f"{split}.parquet"
                os.replace(tmp, final)
                res.files.append(final)
            else:
                tmp.unlink(missing_ok=True)
    return res


def export(source: Path, fmt: str, out: Path, box_format: str | None = None,
           progress: Callable[[int], None] | None = None) -> ExportResult:
    """Export a built source folder or a stage manifest to `out` in `fmt`.

    box_format: the frame of boxes written as text; default the stage manifest's, else qwen3.
    """
    if fmt not in FORMATS:
        raise ExportError(f"--format {fmt!r}: must be one of {', '.join(FORMATS)}")
    if box_format is not None and box_format not in BOX_FORMATS:
        raise ExportError(f"--box-format {box_format!r}: must be one of {', '.join(BOX_FORMATS)}")
    if not source.exists():
        raise ExportError(f"{source}: does not exist")
    inp = _open_input(source)
    box_format = box_format or inp.box_format
    out.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        res = _export_parquet(inp, out, box_format, progress)
    else:
        res = _export_jsonl(inp, out, fmt, box_format, progress)
    if inp.weights is not None:  # the stage's mixture: per-source probabilities for the trainer's sampler
        path = out / f"{inp.name}_weights.json"
        atomic_write(path, json.dumps({"weight_meaning": "probability", "weights": inp.weights},
                                      indent=1, sort_keys=True).encode() + b"\n")
        res.files.append(path)
    return res


def total_samples(source: Path) -> int:
    """How many samples `export` will write (the progress bar's total)."""
    return _open_input(source).total
