"""The trainer's data adapter (`medmo_train.data`): samples/s from shards to collated batches at the
stage 1 (768^2 budget), stage 2 (1280^2) and stage 3 (text-only) settings, against plain tar reading +
JSON parse + image decode of the same shards. The processor is the offline tiny Qwen3-VL one
(`medmo_train.tiny`): same image processor code as the real model, a small tokenizer."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
import time
from pathlib import Path
from typing import Any

from PIL import Image

from . import gen
from .build_rows import _build

STAGES = {1: (65536, 589824), 2: (65536, 1638400), 3: None}
BATCH = {1: 10, 2: 2, 3: 14}  # per-device batch of the design table


def _manifest(stage: int, folder: Path, name: str, pixels: tuple[int, int] | None) -> Any:
    from medmo_data.mix.stage import ShardRef, StageManifest, StageSource

    man = json.loads((folder / "manifest.json").read_text())
    shards = [ShardRef(folder / s["path"], s["sha256"], s["samples"]) for s in man["shards"]]
    src = StageSource(name=name, weight=1.0, samples=sum(s.samples for s in shards), shards=shards)
    image = None if pixels is None else {"min_pixels": pixels[0], "max_pixels": pixels[1]}
    return StageManifest(path=folder / "stage.json", stage=stage, kind="sft", seed=42, box_format="qwen3",
                         image=image, sources=[src], training={}, raw={})


def plain_read(shards: list[Path]) -> int:
    """Baseline: tar members, JSON parse, every image decoded."""
    n = 0
    for path in shards:
        with tarfile.open(path, "r|") as tf:
            for m in tf:
                data = tf.extractfile(m).read()  # type: ignore[union-attr]
                if m.name.endswith(".json"):
                    json.loads(data)
                    n += 1
                elif m.name.endswith((".png", ".jpg")):
                    with Image.open(io.BytesIO(data)) as im:
                        im.load()
    return n


def adapter(manifest: Any, processor: Any, batch: int) -> int:
    """Rows from `medmo_train.data` through TRL's collator, `batch` rows at a time."""
    from medmo_train import data
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling, DataCollatorForVisionLanguageModeling

    resolution = data.stage_resolution(manifest, processor)
    slots = data.make_slots(manifest, 1)
    rows = data.generate_rows(slots, "sft", manifest.box_format, manifest.seed, resolution)
    if resolution is not None:
        collate = DataCollatorForVisionLanguageModeling(processor)
    else:
        tok = processor.tokenizer
        collate = DataCollatorForLanguageModeling(pad_token_id=tok.pad_token_id or 0)
    n, buf = 0, []
    for row in rows:
        if resolution is None:
            text = processor.apply_chat_template(row["messages"], tokenize=False)
            row = {"input_ids": processor.tokenizer(text)["input_ids"]}
        buf.append(row)
        if len(buf) == batch:
            collate(buf)
            n += len(buf)
            buf = []
    if buf:
        collate(buf)
        n += len(buf)
    return n


def rows_only(manifest: Any, processor: Any) -> int:
    """The adapter's own part: rows rendered and images decoded, no processor / collator."""
    from medmo_train import data

    resolution = data.stage_resolution(manifest, processor)
    n = 0
    for row in data.generate_rows(data.make_slots(manifest, 1), "sft", manifest.box_format, manifest.seed,
                                  resolution):
        for im in row.get("images", []):
            im.load()
        n += 1
    return n


def run(work: Path, n_images: int = 60, n_text: int = 600) -> list[dict[str, Any]]:
    from medmo_train.tiny import build_processor

    img_raw = gen.deeplesion(work / "raw_loader_img", n_images)
    txt_raw = gen.medqa(work / "raw_loader_txt", n_text)
    _build("deeplesion", img_raw, work / "loader" / "img", shard_samples=max(1, n_images // 2))
    _build("medqa", txt_raw, work / "loader" / "txt", shard_samples=max(1, n_text // 2))
    rows = []
    for stage, pixels in STAGES.items():
        name = "medqa" if pixels is None else "deeplesion"
        folder = work / "loader" / ("txt" if pixels is None else "img") / name
        man = _manifest(stage, folder, name, pixels)
        shards = [s.path for s in man.sources[0].shards]
        t = time.perf_counter()
        k = plain_read(shards)
        base_s = time.perf_counter() - t
        processor = build_processor()
        adapter(man, processor, BATCH[stage])  # warm-up: lazy imports, first-call caches
        t = time.perf_counter()
        m = adapter(man, processor, BATCH[stage])
        ad_s = time.perf_counter() - t
        t = time.perf_counter()
        r = rows_only(man, processor)
        rows_s = time.perf_counter() - t
        rows.append({"stage": stage, "samples": m, "batch": BATCH[stage],
                     "max_pixels": pixels[1] if pixels else None,
                     "adapter_sps": m / ad_s, "rows_sps": r / rows_s, "plain_read_sps": k / base_s, "ratio": (m / ad_s) / (k / base_s)})
    for p in ("raw_loader_img", "raw_loader_txt", "loader"):
        shutil.rmtree(work / p, ignore_errors=True)
    return rows
