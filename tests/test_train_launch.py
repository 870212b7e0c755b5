"""Launches that used to surprise a user: a bad --model, a rerun of a finished run, a stage's own settings
on a CPU (`--smoke`), long steps without progress, deprecation warnings from our defaults, None metrics in
the loggers, and GRPO rows that no reward can score (issue #14 items 2 and 4)."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest
from medmo_train import launch
from medmo_train.cli import main

from tests.test_train_support import (  # noqa: F401 - pytest fixtures
    TINY_GRPO,
    TINY_IMAGE,
    built,
    source_entry,
    stage_manifest,
    tiny_model,
    write_stage,
)

FAST = ["--gradient_checkpointing", "false"]


def _one_line_exit_2(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("medmo-train: ") and "\n" not in err and "Traceback" not in err, err
    return err


def test_bad_model_is_one_line_exit_2(built, tiny_model, tmp_path, capsys, monkeypatch):  # noqa: F811
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    m = stage_manifest(built, tmp_path, 1)
    base = ["--manifest", str(m), "--output-dir", str(tmp_path / "r")]
    monkeypatch.chdir(tmp_path)
    assert _one_line_exit_2(capsys, [*base, "--model", "./no-such-dir"]) == "medmo-train: --model ./no-such-dir: no such folder"
    err = _one_line_exit_2(capsys, [*base, "--model", "no-such-org/no-such-model"])
    assert err == ("medmo-train: --model no-such-org/no-such-model: no such folder, and not in the local hub cache "
                   "(HF_HUB_OFFLINE is set, so nothing is downloaded)")
    bare = tmp_path / "weights-only"
    bare.mkdir()
    shutil.copy(tiny_model / "config.json", bare / "config.json")
    shutil.copy(tiny_model / "model.safetensors", bare / "model.safetensors")
    err = _one_line_exit_2(capsys, [*base, "--model", str(bare)])
    assert err == (f"medmo-train: --model {bare}: the folder has no processor (processor_config.json or "
                   "preprocessor_config.json); save one next to the weights with processor.save_pretrained")
    (tmp_path / "empty").mkdir()
    assert "no config.json in the folder" in _one_line_exit_2(capsys, [*base, "--model", str(tmp_path / "empty")])


def test_rerun_of_finished_run_trains_nothing_and_says_so(built, tiny_model, tmp_path, capsys):  # noqa: F811
    m = stage_manifest(built, tmp_path, 1, save_steps=2, report_to=[])
    out = tmp_path / "run"
    argv = ["--manifest", str(m), "--model", str(tiny_model), "--output-dir", str(out), *FAST]
    assert main([*argv, "--max-steps", "2"]) == 0
    capsys.readouterr()
    assert main([*argv, "--max-steps", "2"]) == 0  # transformers used to run step 3 here
    err = capsys.readouterr().err
    assert (f"medmo-train: {out / 'checkpoint-2'} already reached step 2 of --max-steps 2: nothing to train" in err)
    assert json.loads((out / "trainer_state.json").read_text())["global_step"] == 2
    assert not (out / "checkpoint-3").exists()
    assert main([*argv, "--max-steps", "3"]) == 0
    assert f"medmo-train: resuming from {out / 'checkpoint-2'} (step 2 of 3)" in capsys.readouterr().err
    assert json.loads((out / "trainer_state.json").read_text())["global_step"] == 3


def test_cpu_notice_smoke_and_no_deprecation_warnings(built, tiny_model, tmp_path, capsys):  # noqa: F811
    m = stage_manifest(built, tmp_path, 2, per_device_train_batch_size=14, gradient_accumulation_steps=2,
                       report_to=[])
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert main(["--manifest", str(m), "--model", str(tiny_model), "--output-dir", str(tmp_path / "s"),
                     "--smoke", "--save_steps", "5"]) == 0
    err = capsys.readouterr().err
    assert "no GPU found" not in err
    deprecations = [str(w.message) for w in seen if issubclass(w.category, (FutureWarning, DeprecationWarning))
                    and "checkpointing" in str(w.message)]
    assert deprecations == []
    settings = json.loads((tmp_path / "s" / "medmo_train_settings.json").read_text())
    cfg = settings["trl_config"]
    assert (cfg["per_device_train_batch_size"], cfg["gradient_accumulation_steps"], cfg["max_steps"]) == (2, 1, 2)
    assert cfg["activation_checkpointing"] is False and settings["processor_size"]["longest_edge"] == 128 * 128
    # without --smoke the same manifest says what will be slow and how to run quickly (then trains as asked)
    assert main(["--manifest", str(m), "--model", str(tiny_model), "--output-dir", str(tmp_path / "f"),
                 "--max-steps", "1", "--save_steps", "5"]) == 0
    err = capsys.readouterr().err
    assert ("medmo-train: no GPU found: stage 2's own settings (batch 14 x accumulation 2, activation checkpointing "
            "on, bf16, images up to 64x64) take minutes per optimizer step on a CPU; for a quick run add --smoke") in err


def test_grpo_refuses_rows_no_reward_can_score(built, tiny_model, tmp_path, capsys):  # noqa: F811
    m = write_stage(tmp_path / "stage4.json", 4, "grpo",
                    [source_entry(built["deeplesion"], 0.5), source_entry(built["vqa_rad"], 0.5)], TINY_GRPO,
                    TINY_IMAGE)
    err = _one_line_exit_2(capsys, ["--manifest", str(m), "--model", str(tiny_model), "--output-dir",
                                    str(tmp_path / "r"), "--max-steps", "1"])
    assert err.startswith(f"medmo-train: {m}: source vqa_rad: task 'vqa' (sample ")
    assert err.endswith("has no target labels, so no stage-4 reward scores it beyond format; leave the task out of "
                        "GRPO stages (stage spec `tasks:`)")


def test_grpo_box_row_without_boxes_is_unscorable(tmp_path):
    from medmo_train.data import UnscorableError, check_scorable

    rec = {"task": "grounding"}
    check_scorable(tmp_path, "s", "k", rec, {"objects": [{"bbox": [0, 0, 1, 1]}], "labels": None})
    check_scorable(tmp_path, "s", "k", {"task": "classification"}, {"objects": None, "labels": []})
    with pytest.raises(UnscorableError, match="task 'grounding' .* has no boxes in its objects"):
        check_scorable(tmp_path, "s", "k", rec, {"objects": [], "labels": None})


def test_micro_batch_progress_lines(capsys):
    cb = launch.MicroBatchProgress(threshold_s=0.0)
    args, state = SimpleNamespace(gradient_accumulation_steps=3), SimpleNamespace(global_step=4, max_steps=10)
    cb.on_step_begin(args, state, None)
    cb.on_substep_end(args, state, None)
    cb.on_substep_end(args, state, None)
    cb.on_pre_optimizer_step(args, state, None)
    lines = capsys.readouterr().err.splitlines()
    assert [ln.split(" done")[0] for ln in lines] == [f"medmo-train: step 5/10: micro-batch {k}/3" for k in (1, 2, 3)]
    quiet = launch.MicroBatchProgress(threshold_s=3600.0)
    quiet.on_step_begin(args, state, None)
    quiet.on_substep_end(args, state, None)
    assert capsys.readouterr().err == ""


def test_none_metrics_never_reach_the_loggers(caplog):
    from transformers import TrainerControl, TrainerState, TrainingArguments
    from transformers.trainer_callback import CallbackHandler

    class Recorder:
        seen: dict = {}

        def on_log(self, args, state, control, logs=None, **kwargs):
            Recorder.seen = dict(logs)

    handler = CallbackHandler([], None, None, None, None)
    handler.callbacks.append(Recorder())
    launch.DropNoneMetrics.install(SimpleNamespace(callback_handler=handler))
    assert isinstance(handler.callbacks[0], launch.DropNoneMetrics)
    logs = {"reward": 0.5, "rewards/label_accuracy_reward/mean": None}
    handler.on_log(TrainingArguments(output_dir="unused", report_to=[]), TrainerState(), TrainerControl(), logs)
    assert Recorder.seen == {"reward": 0.5}


def test_no_model_check_for_a_path_that_exists(tiny_model):  # noqa: F811
    launch.check_model(str(tiny_model))
    launch.check_model(str(Path(tiny_model)) + "/")
