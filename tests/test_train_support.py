"""Shared set-up for the trainer tests (no tests here): sources built by the project from its fixtures,
small stage manifests pointing at their shards, and the tiny Qwen3-VL. Import the fixtures by name."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from medmo_data.build.manifest import load
from tests.helpers import build_fixture

SOURCES = ("vqa_rad", "deeplesion", "nih_chestxray_bbox", "medqa")
# Tiny pixel budgets keep the CPU tests fast: a 512x512 CT slice is fed as 64x64 (4 merged tokens).
TINY_IMAGE = {"min_pixels": 32 * 32, "max_pixels": 64 * 64}
TINY_SFT = {"per_device_train_batch_size": 2, "gradient_accumulation_steps": 1, "learning_rate": 1e-3,
            "num_train_epochs": 1, "save_steps": 2, "logging_steps": 1, "report_to": ["tensorboard"]}
TINY_GRPO = {"per_device_train_batch_size": 4, "gradient_accumulation_steps": 1, "num_generations": 4,
             "learning_rate": 1e-4, "max_completion_length": 16, "soft_punish_cache": 4, "save_steps": 2,
             "logging_steps": 1, "max_prompt_tokens": 2048, "report_to": ["tensorboard"]}


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> dict[str, Path]:
    """{source: built output folder} for the four fixture sources."""
    root = tmp_path_factory.mktemp("built")
    return {n: build_fixture(n, root / n).path.parent for n in SOURCES}


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    from medmo_train.tiny import build_tiny

    return build_tiny(tmp_path_factory.mktemp("tiny") / "model")


def source_entry(folder: Path, weight: float, splits: tuple[str, ...] = ("train", "val", "test"),
                 excluded: str | None = None) -> dict[str, Any]:
    """A stage-manifest source block for a built source. The fixtures are tiny, so tests train on every
    split; `medmo-data mix` takes train shards only."""
    man = load(folder)
    shards = [{"path": str(folder / s["path"]), "sha256": s["sha256"], "samples": s["samples"]}
              for s in man["shards"] if s.get("split") in splits]
    return {"name": man["source"], "manifest": str(folder / "manifest.json"), "weight": weight,
            "samples": sum(s["samples"] for s in shards), "shards": shards, "excluded_keys": excluded}


def write_stage(path: Path, stage: int, kind: str, sources: list[dict[str, Any]], training: dict[str, Any],
                image: dict[str, int] | None = None, box_format: str = "qwen3", seed: int = 42) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "schema": "medmo-stage/v1", "stage": stage, "kind": kind, "seed": seed, "box_format": box_format,
        "image": image, "weight_meaning": "probability", "sources": sources, "filters": {},
        "training": training}, indent=1), encoding="utf-8")
    return path


def stage_manifest(built: dict[str, Path], tmp: Path, stage: int, **training: Any) -> Path:
    """The four stages in miniature: 1 captions-like VQA, 2 VQA + grounding, 3 text, 4 grounding RL."""
    if stage == 1:
        return write_stage(tmp / "stage1.json", 1, "sft", [source_entry(built["vqa_rad"], 1.0)],
                           {**TINY_SFT, **training}, TINY_IMAGE)
    if stage == 2:
        return write_stage(tmp / "stage2.json", 2, "sft",
                           [source_entry(built["vqa_rad"], 0.5), source_entry(built["deeplesion"], 0.25),
                            source_entry(built["nih_chestxray_bbox"], 0.25)], {**TINY_SFT, **training}, TINY_IMAGE)
    if stage == 3:
        return write_stage(tmp / "stage3.json", 3, "sft", [source_entry(built["medqa"], 1.0)],
                           {**TINY_SFT, **training}, None)
    return write_stage(tmp / "stage4.json", 4, "grpo",
                       [source_entry(built["deeplesion"], 0.5), source_entry(built["nih_chestxray_bbox"], 0.5)],
                       {**TINY_GRPO, **training}, TINY_IMAGE, box_format="pixel")
