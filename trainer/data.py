"""Shard -> dataset adapter: a stage manifest becomes a streaming HF `IterableDataset` of TRL rows.

- Reading: `medmo_data.shards.reader.iter_samples` (tar members grouped; JSON parsed; nothing unpickled;
  member sizes capped before reading). Excluded keys (decontamination, dedup, prompt budget) are skipped.
  Each kept sample's record is checked against the schema and its image headers against the pixel cap
  and the record's sizes (no bomb reaches the processor): a bad sample is skipped with a logged reason.
  `--strict` stops on a bad shard or sample instead, and hashes each shard once per process before
  reading it, stopping on one whose bytes differ from the stage manifest's sha256: one extra
  sequential read + SHA-256 per shard, about a third of the reader's own pass over it.
- Ranks: the stream is cut into `world_size x workers` slots. Each source's tar shards are dealt to the
  slots round-robin, so ranks read disjoint shards; accelerate gives rank r its slot through
  `IterableDataset.shard` (n_shards == world size). A source with fewer shards than slots cannot be
  split by shard: every slot reads it and keeps every n-th sample (disjoint samples, n x the I/O) —
  write at least as many shards as GPUs.
- Mixing: within a slot, each draw picks a source with probability proportional to its weight
  (`weight_meaning: probability`), from a `random.Random` seeded by (seed, slot); a source that runs out
  starts over. A pass ends after the slot's share of the stage's samples, so one pass = one epoch.
- Rows: images are opened lazily (PIL reads pixels only when the processor asks); `objects` parts and
  the format hint are rendered in the manifest's `box_format` by `medmo_data.render.render_messages`
  with the processor-fed sizes (`smart_resize` of the stage's pixel bounds), so `pixel`-frame text is
  in pixels of the image the model actually sees.
  SFT: {"messages", "images"} (no "images" key in the text-only stage: TRL then uses its text collator).
  GRPO: {"prompt", "images", "objects", "labels", "image_sizes", "fed_sizes", "box_format", "key"};
  the reward functions read the extra columns.
- Modality: a stage is all-image or all-text (ZeRO-3 / sharded FSDP deadlock on mixed batches, see
  docs/training.md); a sample of the other kind stops the run with a message naming it.
"""

from __future__ import annotations

import io
import logging
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from medmo_data.mix.stage import StageManifest
from medmo_data.render import render_messages
from medmo_data.shards.reader import ShardError, check_sample, check_sha256, iter_samples

log = logging.getLogger(__name__)

GRPO_SYSTEM = ("You are a medical imaging expert. First think inside <think> </think> tags, then give the "
               "final answer inside <answer> </answer> tags.")
BOX_TASKS = ("grounding", "detection")


class ModalityError(ValueError):
    """A stage mixes text-only and image samples."""


class UnscorableError(ValueError):
    """A GRPO row that no reward can score beyond its format (exit 2)."""


def check_scorable(manifest_path: Path, source: str, key: str, record: dict[str, Any], row: dict[str, Any]) -> None:
    """A GRPO row must give `bbox_reward` ground-truth boxes or `label_accuracy_reward` target labels: the
    format rewards alone (tags, length) would train formatting on it and nothing else. Stage specs keep such
    tasks out with `tasks:` (stage 4: grounding, detection)."""
    if row["objects"] or row["labels"] is not None:
        return
    task = record.get("task")
    why = "no boxes in its objects" if task in BOX_TASKS else "no target labels"
    raise UnscorableError(f"{manifest_path}: source {source}: task {task!r} (sample {key}) has {why}, so no stage-4 "
                          "reward scores it beyond format; leave the task out of GRPO stages (stage spec `tasks:`)")


@dataclass(frozen=True)
class Resolution:
    """The processor's pixel budget and grid: fed size = smart_resize(h, w, factor, min, max)."""

    min_pixels: int
    max_pixels: int
    factor: int = 32  # patch 16 x merge 2 for Qwen3-VL

    def fed_size(self, width: int, height: int) -> tuple[int, int]:
        from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

        h, w = smart_resize(height, width, factor=self.factor, min_pixels=self.min_pixels,
                            max_pixels=self.max_pixels)
        return w, h

    def image_tokens(self, width: int, height: int) -> int:
        w, h = self.fed_size(width, height)
        return (w // self.factor) * (h // self.factor)


def stage_resolution(manifest: StageManifest, processor: Any) -> Resolution | None:
    """Set the stage's pixel bounds on the processor (before the trainer is built) and return them."""
    if manifest.image is None:
        return None
    ip = processor.image_processor
    factor = int(ip.patch_size) * int(ip.merge_size)
    lo = int(manifest.image.get("min_pixels", factor * factor))
    hi = int(manifest.image["max_pixels"])
    ip.size = {"shortest_edge": lo, "longest_edge": hi}
    return Resolution(min_pixels=lo, max_pixels=hi, factor=factor)


def make_slots(manifest: StageManifest, n_slots: int, drop: dict[str, set[str]] | None = None,
               strict: bool = False) -> list[dict[str, Any]]:
    """Deal every source's shards to n_slots disjoint slots; each slot knows its share of the epoch."""
    slots: list[dict[str, Any]] = [{"index": i, "n_slots": n_slots, "sources": [], "draws": 0.0}
                                   for i in range(n_slots)]
    for src in manifest.sources:
        excluded = sorted(src.excluded_keys | (drop or {}).get(src.name, set()))
        paths = [str(s.path) for s in src.shards]
        stored = sum(s.samples for s in src.shards) or 1
        for slot in slots:
            k = slot["index"]
            if len(paths) >= n_slots:
                mine, stride = paths[k::n_slots], None
                share = sum(s.samples for s in src.shards[k::n_slots]) / stored
            else:
                mine, stride = paths, [k, n_slots]
                share = len(range(k, stored, n_slots)) / stored
            if not mine:
                continue
            slot["sources"].append({"name": src.name, "weight": src.weight, "shards": mine,
                                    "stride": stride, "excluded": excluded, "strict": strict,
                                    "sha256": {str(s.path): s.sha256 for s in src.shards}})
            # the slot's share of the source's samples (after exclusions, spread evenly)
            slot["draws"] += src.samples * share
    for slot in slots:
        slot["draws"] = int(round(slot["draws"]))
    return slots


SKIPPED_SHARDS: list[str] = []  # corrupt shards skipped by this process (logged with their reason)
HASHED_SHARDS: set[str] = set()  # shards whose sha256 this process checked (--strict: once per process)


def iter_source(spec: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """One pass over a source's shards in a slot, skipping excluded keys (and other slots' samples).

    A corrupt, truncated or unsafe shard is skipped with a logged reason and counted (the samples read
    before the damage are kept), unless the run is `--strict`, which stops on it, and on a shard whose
    bytes differ from the stage manifest's sha256.
    """
    excluded = set(spec["excluded"])
    i = 0
    for path in spec["shards"]:
        try:
            if spec.get("strict") and path not in HASHED_SHARDS:
                check_sha256(path, spec.get("sha256", {}).get(path, ""))
                HASHED_SHARDS.add(path)
            for sample in iter_samples(path):
                take = spec["stride"] is None or i % spec["stride"][1] == spec["stride"][0]
                i += 1
                if take and sample["__key__"] not in excluded:
                    try:  # schema and image headers (pixel cap, record's size): no bomb reaches the processor
                        check_sample(sample, f"{path}:{sample['__key__']}")
                    except ShardError as exc:
                        if spec.get("strict"):
                            raise
                        log.warning("skipping a sample of %s: %s", spec["name"], exc)
                        continue
                    yield sample
        except ShardError as exc:
            if spec.get("strict"):
                raise
            if path not in SKIPPED_SHARDS:
                SKIPPED_SHARDS.append(path)
            log.warning("skipping corrupt shard %s of %s (%d skipped so far): %s", path, spec["name"],
                        len(SKIPPED_SHARDS), exc)


def mixed_samples(slot: dict[str, Any], seed: int) -> Iterator[tuple[str, dict[str, Any]]]:
    """(source name, sample) draws of one slot, by weight, reproducible from (seed, slot index)."""
    rng = random.Random(f"{seed}/{slot['index']}/{slot['n_slots']}")
    specs = [s for s in slot["sources"] if s["weight"] > 0]
    iters = {s["name"]: iter_source(s) for s in specs}
    drawn = 0
    while drawn < slot["draws"] and specs:
        spec = rng.choices(specs, weights=[s["weight"] for s in specs])[0]
        try:
            sample = next(iters[spec["name"]])
        except StopIteration:
            iters[spec["name"]] = iter_source(spec)  # the source starts over
            sample = next(iters[spec["name"]], None)
            if sample is None:  # nothing usable in this source: stop drawing from it
                specs.remove(spec)
                continue
        drawn += 1
        yield spec["name"], sample


def open_images(sample: dict[str, Any], record: dict[str, Any]) -> list[Image.Image]:
    """The sample's images, opened lazily from their members (PIL decodes on first pixel access)."""
    out = []
    for im in record.get("images", []):
        data = sample.get(im["member"])
        if data is None:
            raise ValueError(f"sample {sample['__key__']}: member {im['member']} is missing")
        out.append(Image.open(io.BytesIO(data)))
    return out


def check_modality(key: str, source: str, has_images: bool, resolution: Resolution | None) -> None:
    if has_images and resolution is None:
        raise ModalityError(f"sample {key} of {source} has images but the stage is text-only (image: null); "
                            "mixed batches deadlock under ZeRO-3/FSDP: put image sources in an image stage")
    if not has_images and resolution is not None:
        raise ModalityError(f"sample {key} of {source} is text-only in an image stage; mixed batches "
                            "deadlock under ZeRO-3/FSDP: put text-only sources in their own stage (stage 3)")


def fed_sizes(record: dict[str, Any], resolution: Resolution | None) -> list[tuple[int, int]]:
    if resolution is None:
        return []
    return [resolution.fed_size(im["width"], im["height"]) for im in record.get("images", [])]


def sft_row(key: str, source: str, sample: dict[str, Any], box_format: str,
            resolution: Resolution | None) -> dict[str, Any]:
    record = sample["json"]
    images = open_images(sample, record)
    check_modality(key, source, bool(images), resolution)
    messages = render_messages(record, box_format, fed_sizes(record, resolution) or None)
    return {"messages": messages, "images": images} if images else {"messages": messages}


def grpo_row(key: str, source: str, sample: dict[str, Any], box_format: str,
             resolution: Resolution | None) -> dict[str, Any]:
    """Prompt = every turn before the last assistant turn; ground truth goes to the reward columns."""
    record = sample["json"]
    images = open_images(sample, record)
    check_modality(key, source, bool(images), resolution)
    feds = fed_sizes(record, resolution)
    messages = render_messages(record, box_format, feds or None)
    last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=len(messages))
    prompt = messages[:last]
    if not prompt or prompt[0]["role"] != "system":
        prompt = [{"role": "system", "content": [{"type": "text", "text": GRPO_SYSTEM}]}] + prompt
    is_box = record.get("task") in BOX_TASKS
    labels = (record.get("target") or {}).get("labels")
    return {
        "prompt": prompt, "images": images, "key": f"{source}/{key}", "box_format": box_format,
        "objects": [dict(o) for o in record.get("objects", [])] if is_box else None,
        "labels": list(labels) if labels is not None else None,
        "image_sizes": [[im["width"], im["height"]] for im in record.get("images", [])],
        "fed_sizes": [list(f) for f in feds],
    }


def generate_rows(slots: list[dict[str, Any]], kind: str, box_format: str, seed: int,
                  resolution: Resolution | None) -> Iterator[dict[str, Any]]:
    """The HF generator: HF hands each dataset shard (one slot per rank) its sublist of slots."""
    make = grpo_row if kind == "grpo" else sft_row
    for slot in slots:
        for source, sample in mixed_samples(slot, seed):
            yield make(sample["__key__"], source, sample, box_format, resolution)


def build_dataset(manifest: StageManifest, resolution: Resolution | None, world_size: int = 1,
                  workers: int = 1, drop: dict[str, set[str]] | None = None, strict: bool = False):
    """The stage as a streaming `datasets.IterableDataset` with one shard per (rank, worker)."""
    from datasets import IterableDataset

    slots = make_slots(manifest, max(1, world_size) * max(1, workers), drop, strict)
    return IterableDataset.from_generator(
        generate_rows, gen_kwargs={"slots": slots, "kind": manifest.kind, "box_format": manifest.box_format,
                                   "seed": manifest.seed, "resolution": resolution})


def epoch_samples(manifest: StageManifest, drop: dict[str, set[str]] | None = None) -> int:
    """Draws in one epoch: the stage's samples after exclusions and the prompt filter."""
    return max(0, manifest.total_samples - sum(len(v) for v in (drop or {}).values()))


def prompt_tokens(processor: Any, row: dict[str, Any], resolution: Resolution | None) -> int:
    """Tokens of a GRPO prompt as the model sees it: templated text + each image's (H/32)*(W/32) tokens."""
    text = processor.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True)
    n = len(processor.tokenizer(text, add_special_tokens=False)["input_ids"])
    if resolution is not None:
        for w, h in row["image_sizes"]:
            n += resolution.image_tokens(w, h) - 1  # the template holds one <|image_pad|> per image
    return n


def filter_prompts(manifest: StageManifest, processor: Any, resolution: Resolution | None, limit: int,
                   report: Path | None = None) -> tuple[dict[str, set[str]], int, int]:
    """Pre-pass over the stage: keys whose prompt exceeds `limit` tokens (image tokens included); every row
    must be scorable (`check_scorable`).

    Returns ({source: keys to drop}, kept, dropped); the dropped keys go to `report` (JSON lines).
    """
    drop: dict[str, set[str]] = {}
    kept = dropped = 0
    lines = []
    for src in manifest.sources:
        spec = {"name": src.name, "weight": src.weight, "shards": [str(s.path) for s in src.shards],
                "stride": None, "excluded": sorted(src.excluded_keys)}
        for sample in iter_source(spec):
            row = grpo_row(sample["__key__"], src.name, sample, manifest.box_format, resolution)
            check_scorable(manifest.path, src.name, sample["__key__"], sample["json"], row)
            n = prompt_tokens(processor, row, resolution)
            if n > limit:
                drop.setdefault(src.name, set()).add(sample["__key__"])
                dropped += 1
                lines.append(f'{{"source": "{src.name}", "key": "{sample["__key__"]}", "tokens": {n}}}')
            else:
                kept += 1
    if report is not None:
        report.write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")
    log.info("prompt filter: kept %d, dropped %d over %d tokens", kept, dropped, limit)
    return drop, kept, dropped


def steps_for(samples: int, epochs: float, per_step: int) -> int:
    return max(1, math.ceil(samples * epochs / max(1, per_step)))
