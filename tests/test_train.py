"""`medmo-train` end to end on the CPU with the tiny Qwen3-VL, from shards the project built from its
fixtures: every stage trains and saves, SFT memorizes 8 samples, GRPO logs the four rewards, bad
settings exit 2, and a killed run resumes from its last complete checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from medmo_train.cli import main

from tests.test_train_support import (  # noqa: F401 - pytest fixtures
    TINY_IMAGE,
    built,
    source_entry,
    stage_manifest,
    tiny_model,
    write_stage,
)

FAST = ["--gradient_checkpointing", "false"]  # tiny model: recomputation only costs time


def train(manifest: Path, model: Path, out: Path, steps: int, *extra: str) -> dict:
    rc = main(["--manifest", str(manifest), "--model", str(model), "--output-dir", str(out),
               "--max-steps", str(steps), *FAST, *extra])
    assert rc == 0
    return json.loads((out / "trainer_state.json").read_text())


def steps_per_second(state: dict) -> float:
    return next(h["train_steps_per_second"] for h in state["log_history"] if "train_steps_per_second" in h)


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_sft_stage_trains_and_saves(stage, built, tiny_model, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "run"
    state = train(stage_manifest(built, tmp_path, stage), tiny_model, out, 4)
    assert state["global_step"] == 4
    logs = [h for h in state["log_history"] if "loss" in h]
    assert len(logs) == 4 and all({"entropy", "mean_token_accuracy", "num_tokens"} <= set(h) for h in logs)
    assert (out / "model.safetensors").exists() and (out / "processor_config.json").exists()
    assert list((out / "runs").rglob("events.out.tfevents.*")), "TensorBoard is the default logger"
    settings = json.loads((out / "medmo_train_settings.json").read_text())
    cfg = settings["trl_config"]
    assert (cfg["weight_decay"], cfg["adam_beta1"], cfg["adam_beta2"], cfg["warmup_steps"], cfg["seed"]) == \
        (0.1, 0.9, 0.999, 0.1, 42)
    assert cfg["lr_scheduler_type"] == "cosine" and cfg["bf16"] is True and cfg["assistant_only_loss"] is True
    assert cfg["model_init_kwargs"] == {"dtype": "bfloat16", "attn_implementation": "sdpa"}
    assert cfg["learning_rate"] == 1e-3 and cfg["max_steps"] == 4
    # vision stages never truncate through image tokens; the processor got the stage's pixel budget
    if stage != 3:
        assert cfg["max_length"] is None
        assert settings["processor_size"]["longest_edge"] == TINY_IMAGE["max_pixels"]
    with capsys.disabled():
        print(f"\nstage {stage} SFT: {steps_per_second(state):.2f} steps/s (tiny model, CPU, incl. start-up)")


@pytest.mark.slow
def test_sft_memorizes_eight_samples(built, tiny_model, tmp_path):  # noqa: F811
    # DeepLesion's fixture has exactly 8 samples: one batch of 8, the same every step.
    m = write_stage(tmp_path / "mem.json", 2, "sft", [source_entry(built["deeplesion"], 1.0)],
                    {"per_device_train_batch_size": 8, "learning_rate": 1e-2, "lr_scheduler_type": "constant",
                     "warmup_ratio": 0.0, "weight_decay": 0.0, "save_steps": 100, "report_to": []}, TINY_IMAGE)
    assert json.loads(m.read_text())["sources"][0]["samples"] == 8
    out = tmp_path / "run"
    assert main(["--manifest", str(m), "--model", str(tiny_model), "--output-dir", str(out), "--max-steps", "12",
                 "--save_steps", "12", *FAST]) == 0
    losses = [h["loss"] for h in json.loads((out / "trainer_state.json").read_text())["log_history"] if "loss" in h]
    assert len(losses) == 12 and min(losses[-3:]) <= 0.5 * losses[0], losses


def test_grpo_stage4_logs_all_rewards(built, tiny_model, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "run"
    state = train(stage_manifest(built, tmp_path, 4), tiny_model, out, 2)
    logs = [h for h in state["log_history"] if "reward" in h]
    assert len(logs) == 2
    for name in ("bbox_reward", "label_accuracy_reward", "tag_count_reward", "soft_overlong_punishment_reward"):
        assert all(f"rewards/{name}/mean" in h and f"rewards/{name}/std" in h for h in logs), name
    assert all({"completions/clipped_ratio", "entropy", "clip_ratio/region_mean"} <= set(h) for h in logs)
    # DAPO's dynamic-sampling signal: the share of groups whose rewards are all equal, every step
    assert all(0.0 <= h["frac_reward_zero_std"] <= 1.0 for h in logs)
    settings = json.loads((out / "medmo_train_settings.json").read_text())
    cfg = settings["trl_config"]
    assert (cfg["loss_type"], cfg["epsilon"], cfg["epsilon_high"]) == ("dapo", 0.15, 0.25)
    assert settings["prompt_filter"] == {"max_prompt_tokens": 2048, "kept": 20, "dropped": 0}
    with capsys.disabled():
        print(f"\nstage 4 GRPO: {steps_per_second(state):.2f} steps/s (4 prompts x 4 generations of 16 tokens)")


def test_grpo_prompt_filter_counts_image_tokens(built, tiny_model, tmp_path, capsys):  # noqa: F811
    m = stage_manifest(built, tmp_path, 4, max_prompt_tokens=1)
    out = tmp_path / "run"
    assert main(["--manifest", str(m), "--model", str(tiny_model), "--output-dir", str(out), "--max-steps", "1"]) == 2
    err = capsys.readouterr().err
    assert "prompt filter kept 0, dropped 20 prompts over 1 tokens (image tokens included)" in err
    assert "no samples left to train on" in err
    dropped = [json.loads(x) for x in (out / "prompt_filter.dropped.jsonl").read_text().splitlines()]
    tokens = {src: {d["tokens"] for d in dropped if d["source"] == src} for src in ("deeplesion", "nih_chestxray_bbox")}
    assert all(len(v) == 1 for v in tokens.values())  # one prompt text and one image size per source
    tokens = {k: v.pop() for k, v in tokens.items()}
    # a 4x larger pixel budget (128x128 fed: 16 image tokens instead of 4) adds exactly 12 tokens
    from medmo_train.data import filter_prompts, stage_resolution
    from transformers import AutoProcessor

    from medmo_data.mix.stage import load_stage_manifest

    man = load_stage_manifest(m)
    man.image = {"min_pixels": 32 * 32, "max_pixels": 128 * 128}
    proc = AutoProcessor.from_pretrained(tiny_model)
    rep = tmp_path / "big.jsonl"
    filter_prompts(man, proc, stage_resolution(man, proc), 1, rep)
    big = {json.loads(x)["source"]: json.loads(x)["tokens"] for x in rep.read_text().splitlines()}
    assert {k: big[k] - v for k, v in tokens.items()} == {"deeplesion": 12, "nih_chestxray_bbox": 12}
    # a budget between the two sources' prompt lengths drops exactly the longer source
    (short, n_short), (long_, n_long) = sorted(tokens.items(), key=lambda kv: kv[1])
    assert n_long > n_short
    counts = {"deeplesion": 8, "nih_chestxray_bbox": 12}  # 12: the unlisted box image is split by patient
    state = train(stage_manifest(built, tmp_path, 4, max_prompt_tokens=n_short), tiny_model, tmp_path / "run2", 1)
    assert state["global_step"] == 1
    settings = json.loads((tmp_path / "run2" / "medmo_train_settings.json").read_text())
    assert settings["prompt_filter"] == {"max_prompt_tokens": n_short, "kept": counts[short],
                                         "dropped": counts[long_]}


def test_bad_settings_exit_2(built, tiny_model, tmp_path, capsys):  # noqa: F811
    m = stage_manifest(built, tmp_path, 4, max_prompt_length=2048)
    assert main(["--manifest", str(m), "--model", str(tiny_model), "--output-dir", str(tmp_path / "r")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"medmo-train: {m}: field training.max_prompt_length: GRPOConfig has no max_prompt_length since TRL "
        "0.28; use max_prompt_tokens (our prompt filter, image tokens included)")
    m = stage_manifest(built, tmp_path, 1)
    assert main(["--manifest", str(m), "--model", str(tiny_model), "--no_such_field", "3"]) == 2
    assert capsys.readouterr().err.strip() == f"medmo-train: {m}: field --no_such_field: not a SFTConfig field"
    assert main(["--manifest", str(tmp_path / "missing.json")]) == 2
    assert "not found (write it with `medmo-data mix --stage N`)" in capsys.readouterr().err


def test_text_sample_in_image_stage_is_refused(built, tiny_model, tmp_path, capsys):  # noqa: F811
    m = write_stage(tmp_path / "mixed.json", 2, "sft", [source_entry(built["medqa"], 1.0)],
                    {"per_device_train_batch_size": 2}, TINY_IMAGE)
    assert main(["--manifest", str(m), "--model", str(tiny_model), "--output-dir", str(tmp_path / "r"),
                 "--max-steps", "1", *FAST]) == 2
    assert "is text-only in an image stage; mixed batches deadlock under ZeRO-3/FSDP" in capsys.readouterr().err


@pytest.mark.slow
def test_killed_run_resumes_from_last_checkpoint(built, tiny_model, tmp_path):  # noqa: F811
    m = stage_manifest(built, tmp_path, 2, save_steps=2, report_to=[])
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "medmo_train.cli", "--manifest", str(m), "--model", str(tiny_model),
           "--output-dir", str(out), "--max-steps", "30", "--disable_tqdm", "true", *FAST]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    deadline = time.time() + 120
    while not (out / "checkpoint-2" / "trainer_state.json").exists():
        assert first.poll() is None and time.time() < deadline, first.stdout.read().decode()[-3000:]
        time.sleep(0.05)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    assert first.returncode == -signal.SIGKILL
    assert not (out / "checkpoint-30").exists()
    done = sorted(int(p.name.split("-")[1]) for p in out.glob("checkpoint-*")
                  if (p / "trainer_state.json").exists())
    resumed_from = done[-1]
    second = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    step_logs = [line for line in second.stdout.splitlines() if line.startswith("{'loss'")]
    assert len(step_logs) == 30 - resumed_from  # only the steps after the checkpoint ran again
    state = json.loads((out / "checkpoint-30" / "trainer_state.json").read_text())
    assert state["global_step"] == 30
