"""`scripts/gpu_check.py` (make gpu-check) on its CPU path: --dry-run trains stage 2 and stage 4 (8 generations)
through medmo-train with the tiny model and prints/writes the numbers the GPU run reports. The real-size
path needs a CUDA/ROCm GPU and has not run in CI (docs/training.md)."""

from __future__ import annotations

import json

import pytest

from scripts import gpu_check
from tests.test_train_support import built, stage_manifest  # noqa: F401 - pytest fixtures


def test_dry_run_trains_both_stages_and_reports(built, tmp_path, capsys):  # noqa: F811
    manifests = tmp_path / "manifests"
    for stage in (2, 4):
        stage_manifest(built, manifests, stage)
    out = tmp_path / "gc"
    assert gpu_check.main(["--dry-run", "--manifests", str(manifests), "--out", str(out), "--steps", "1",
                           "--completion-tokens", "8"]) == 0
    report = json.loads((out / "gpu_check.json").read_text())
    assert report["device"] == "cpu (dry run)" and report["size"] == "tiny"
    s2, s4 = report["stages"]["2"], report["stages"]["4"]
    assert s2["steps"] == s4["steps"] == 1
    assert s2["samples_per_s"] > 0 and s2["tokens_per_s"] > 0 and s4["tokens_per_s"] > 0
    assert s2["mean_rewards"] == {} and s2["peak_gpu_gib"] is None
    assert set(s4["mean_rewards"]) == {"bbox_reward", "label_accuracy_reward", "tag_count_reward",
                                       "soft_overlong_punishment_reward"}
    assert 0.0 <= s4["mean_rewards"]["bbox_reward"] <= 1.0 and 0.0 <= s4["frac_reward_zero_std"] <= 1.0
    settings = json.loads((out / "stage4" / "medmo_train_settings.json").read_text())
    assert settings["trl_config"]["num_generations"] == 8
    text = capsys.readouterr().out
    assert "gpu_check on cpu (dry run), Qwen3-VL tiny (random init)" in text
    assert "stage  steps  samples/s  tokens/s  peak GPU GiB  mean rewards" in text


def test_refuses_without_gpu_or_manifests(tmp_path):
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(SystemExit, match="no CUDA or ROCm GPU visible to torch; --dry-run"):
            gpu_check.main(["--manifests", str(tmp_path), "--out", str(tmp_path / "o")])
    with pytest.raises(SystemExit, match=r"stage2.json not found: run `make demo` first"):
        gpu_check.main(["--dry-run", "--manifests", str(tmp_path), "--out", str(tmp_path / "o")])


def test_real_size_configs_are_the_public_ones():
    # parameter counts of the text stacks follow from the published shapes (embeddings tied)
    t = gpu_check.TEXT["2b"]
    per_layer = (t["hidden_size"] * 128 * (16 + 8 + 8) + 16 * 128 * t["hidden_size"]
                 + 3 * t["hidden_size"] * t["intermediate_size"])
    assert round((per_layer * t["num_hidden_layers"] + gpu_check.VOCAB * t["hidden_size"]) / 1e9, 1) == 1.7
