"""The trainer's data adapter (`medmo_train.data`): samples/s from shards to collated batches at the
stage 1 (768^2 budget), stage 2 (1280^2) and stage 3 (text-only) settings, against plain tar reading +
JSON parse + image decode of the same shards. The processor is the offline tiny Qwen3-VL one
(`medmo_train.tiny`): same image processor code as the real model, a small tokenizer. Images are JPEGs
at each stage's largest resolution (768^2, 1280^2), passed through by the `folder` recipe.

Measured as training runs it: TRL calls the collator in DataLoader worker processes, where PyTorch sets
one intra-op thread. With torch's default (one thread per core) on a busy machine the image processor's
threads wait on each other: an earlier bench row ran so in the main process and reported 8.3 samples/s
where a standalone worker-like run gave 121/s (measured here: 2.1-2.6x the CPU per sample, 2.5-3x the
wall time at load 12-16). Rates are given per wall second and per CPU-second (one thread: the cost
of one dataloader worker); stage 1 is also run in a fresh child process and must agree."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from PIL import Image

from . import gen
from .build_rows import _build

STAGES = {1: (65536, 589824), 2: (65536, 1638400), 3: None, 4: (65536, 16777216)}
# Images at the stage's largest size (the processor's worst case); stage 4 allows up to 4096^2, measured
# at 2048^2 (a 4096^2 prompt is 16,384 visual tokens, beyond what GRPO generation is run with).
SIDE = {1: 768, 2: 1280, 4: 2048}
BATCH = {1: 10, 2: 2, 3: 14, 4: 2}  # per-device batch (manifests/stage*.yaml)


@contextmanager
def dataloader_worker_threads() -> Iterator[None]:
    """One torch intra-op thread, as in a DataLoader worker process (where TRL runs the collator)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _manifest(stage: int, folder: Path, name: str, pixels: tuple[int, int] | None) -> Any:
    from medmo_data.mix.stage import ShardRef, StageManifest, StageSource

    man = json.loads((folder / "manifest.json").read_text())
    shards = [ShardRef(folder / s["path"], s["sha256"], s["samples"]) for s in man["shards"]]
    src = StageSource(name=name, weight=1.0, samples=sum(s.samples for s in shards), shards=shards)
    image = None if pixels is None else {"min_pixels": pixels[0], "max_pixels": pixels[1]}
    kind = "grpo" if stage == 4 else "sft"
    return StageManifest(path=folder / "stage.json", stage=stage, kind=kind, seed=42, box_format="qwen3",
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


def adapter_grpo(manifest: Any, processor: Any, batch: int) -> int:
    """GRPO rows (prompt + images) through the processor as TRL's GRPOTrainer prepares a generation batch."""
    from medmo_train import data

    resolution = data.stage_resolution(manifest, processor)
    rows = data.generate_rows(data.make_slots(manifest, 1), "grpo", manifest.box_format, manifest.seed, resolution)
    n, buf = 0, []
    for row in rows:
        buf.append(row)
        if len(buf) == batch:
            texts = [processor.apply_chat_template(r["prompt"], tokenize=False, add_generation_prompt=True)
                     for r in buf]
            processor(text=texts, images=[r["images"] for r in buf], padding=True, return_tensors="pt")
            n, buf = n + len(buf), []
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


def _timed(fn: Any) -> tuple[int, float, float]:
    t, c = time.perf_counter(), time.process_time()
    n = fn()
    return n, time.perf_counter() - t, time.process_time() - c


def measure(stage: int, folder: Path, name: str) -> dict[str, Any]:
    """One stage: plain reading, then the adapter + collator (after a warm-up pass) and rows alone."""
    from medmo_train.tiny import build_processor

    pixels = STAGES[stage]
    man = _manifest(stage, folder, name, pixels)
    shards = [s.path for s in man.sources[0].shards]
    k, base_s, _ = _timed(lambda: plain_read(shards))
    processor = build_processor()
    run_batches = adapter_grpo if man.kind == "grpo" else adapter
    with dataloader_worker_threads():
        run_batches(man, processor, BATCH[stage])  # warm-up: lazy imports, first-call caches
        m, ad_s, ad_cpu = _timed(lambda: run_batches(man, processor, BATCH[stage]))
        r, rows_s, _ = _timed(lambda: rows_only(man, processor))
    return {"stage": stage, "samples": m, "batch": BATCH[stage], "max_pixels": pixels[1] if pixels else None,
            "image_side": SIDE.get(stage), "adapter_sps": m / ad_s, "adapter_cpu_s_per_sample": ad_cpu / m,
            "rows_sps": r / rows_s, "plain_read_sps": k / base_s, "ratio": (m / ad_s) / (k / base_s)}


_STANDALONE = """
import json, sys
from pathlib import Path
from bench.loader import measure
print(json.dumps(measure(int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])))
"""


def standalone(stage: int, folder: Path, name: str) -> dict[str, Any]:
    """`measure` in a fresh interpreter: what a standalone run of the adapter gives."""
    res = subprocess.run([sys.executable, "-c", _STANDALONE, str(stage), str(folder), name], check=True,
                         capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
    return json.loads(res.stdout.strip().splitlines()[-1])


def run(work: Path, n_images: int = 60, n_text: int = 600) -> list[dict[str, Any]]:
    txt_raw = gen.medqa(work / "raw_loader_txt", n_text)
    _build("medqa", txt_raw, work / "loader" / "txt", shard_samples=max(1, n_text // 2))
    folders = {3: work / "loader" / "txt" / "medqa"}
    for stage, side in SIDE.items():
        k = n_images if stage < 4 else max(4, n_images // 4)  # 2048^2: a quarter as many
        raw = gen.jpeg_folder(work / f"raw_loader_{stage}", k, size=side)
        _build("folder", raw, work / "loader" / f"img{stage}", shard_samples=max(1, k // 2),
               max_side=max(side, 1280))
        folders[stage] = work / "loader" / f"img{stage}" / "folder"
    rows = [measure(stage, folders[stage], "medqa" if stage == 3 else "folder") for stage in STAGES]
    alone = standalone(1, folders[1], "folder")
    rows[0]["standalone_cpu_s_per_sample"] = alone["adapter_cpu_s_per_sample"]
    rows[0]["standalone_sps"] = alone["adapter_sps"]
    shutil.rmtree(work / "loader", ignore_errors=True)
    for p in work.glob("raw_loader_*"):
        shutil.rmtree(p, ignore_errors=True)
    return rows
