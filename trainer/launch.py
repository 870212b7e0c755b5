"""Checks and messages around a launch, so that the usual surprises end in one clear line:

- `check_model`: a missing local folder, a folder without config or processor, or a hub id that cannot be
  loaded (offline, unknown) -> `ConfigError` (exit 2, one line) before anything heavy starts;
- `resume_state`: which checkpoint a rerun resumes from, and whether it already reached `--max-steps`
  (then nothing trains: transformers would otherwise run one step past it);
- `cpu_notice`: a stage's own settings on a machine without a GPU, with the flags of a quick run;
- callbacks: progress per micro-batch when one optimizer step is long, and no `None` metric values
  reaching the loggers (a reward that did not apply to any row of a logging window logs None).
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from .config import ConfigError

PROCESSOR_FILES = ("processor_config.json", "preprocessor_config.json")
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
LONG_STEP_S = 20.0  # a step slower than this reports each micro-batch


def check_model(model: str) -> None:
    """Refuse a `--model` that cannot work before the processor and weights are loaded."""
    path = Path(model).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ConfigError(f"--model {model}: not a folder (give a checkpoint folder or a hub id)")
        if not (path / "config.json").is_file():
            raise ConfigError(f"--model {model}: no config.json in the folder: not a model checkpoint")
        if not any((path / f).is_file() for f in PROCESSOR_FILES):
            raise ConfigError(f"--model {model}: the folder has no processor ({' or '.join(PROCESSOR_FILES)}); "
                              "save one next to the weights with processor.save_pretrained")
        return
    if model.startswith((".", "/", "~")) or model.endswith("/") or not HUB_ID.match(model):
        raise ConfigError(f"--model {model}: no such folder")


def load_processor(model: str) -> Any:
    """The model's processor; a hub id that cannot be resolved becomes one line (exit 2)."""
    from huggingface_hub import constants
    from transformers import AutoProcessor

    try:
        return AutoProcessor.from_pretrained(model)
    except (OSError, ValueError) as exc:
        if not Path(model).expanduser().exists() and constants.HF_HUB_OFFLINE:
            raise ConfigError(f"--model {model}: no such folder, and not in the local hub cache (HF_HUB_OFFLINE is "
                              "set, so nothing is downloaded)") from exc
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"--model {model}: cannot load its processor: {first}") from exc


def resume_state(checkpoint: str | None, max_steps: int) -> tuple[int, bool]:
    """(step the checkpoint reached, whether that already finishes `max_steps`); (0, False) with none."""
    if checkpoint is None:
        return 0, False
    state = Path(checkpoint) / "trainer_state.json"
    if not state.is_file():
        raise ConfigError(f"--resume {checkpoint}: no trainer_state.json: not a complete checkpoint")
    step = int(json.loads(state.read_text(encoding="utf-8")).get("global_step", 0))
    return step, step >= max_steps


def cpu_notice(stage: int, kwargs: dict[str, Any], image: dict[str, Any] | None) -> str:
    """The line printed when a stage's own settings are about to run on a CPU."""
    side = int((image or {}).get("max_pixels", 0) ** 0.5)
    ckpt = "on" if kwargs.get("activation_checkpointing", True) else "off"
    pixels = f", images up to {side}x{side}" if side else ""
    return (f"medmo-train: no GPU found: stage {stage}'s own settings (batch {kwargs.get('per_device_train_batch_size')}"
            f" x accumulation {kwargs.get('gradient_accumulation_steps', 1)}, activation checkpointing {ckpt}, "
            f"bf16{pixels}) take minutes per optimizer step on a CPU; for a quick run add --smoke (small batch, no "
            "checkpointing, 128x128 images, 2 steps)")


class MicroBatchProgress(TrainerCallback):
    """One stderr line per micro-batch once the current optimizer step has run longer than LONG_STEP_S:
    with large batches on slow hardware the step bar alone sits still for minutes."""

    def __init__(self, threshold_s: float = LONG_STEP_S) -> None:
        self.threshold_s = threshold_s
        self.t0 = time.monotonic()
        self.done = 0

    def on_step_begin(self, args, state, control, **kwargs):
        self.t0, self.done = time.monotonic(), 0

    def _report(self, args, state) -> None:
        self.done += 1
        took = time.monotonic() - self.t0
        if took >= self.threshold_s:
            print(f"medmo-train: step {state.global_step + 1}/{state.max_steps}: micro-batch {self.done}/"
                  f"{args.gradient_accumulation_steps} done after {took:.0f} s", file=sys.stderr, flush=True)

    def on_substep_end(self, args, state, control, **kwargs):
        self._report(args, state)

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        self._report(args, state)


class DropNoneMetrics(TrainerCallback):
    """Removes None values from the logs before the logging integrations see them (TRL logs None for a
    reward that applied to no row since the last log; TensorBoard then warns once per value). The run's
    `trainer_state.json` keeps them. Must run first: `install` puts it at the head of the callbacks."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        for key in [k for k, v in (logs or {}).items() if v is None]:
            del logs[key]

    @classmethod
    def install(cls, trainer: Any) -> None:
        trainer.callback_handler.callbacks.insert(0, cls())


UPSTREAM_DEPRECATIONS = r"`(is_gradient_checkpointing|gradient_checkpointing_enable|gradient_checkpointing_disable)` is deprecated"


def quiet_upstream_warnings() -> None:
    """TRL 1.16's generation path calls `model.is_gradient_checkpointing` and
    `gradient_checkpointing_disable/enable`, which transformers 5 deprecated in favour of `activation_*`;
    nothing a user sets avoids those calls, so exactly these three messages are filtered. Our own settings
    use the new names (`config.STAGE_DEFAULTS`), so no other deprecation is hidden."""
    import warnings

    warnings.filterwarnings("ignore", message=UPSTREAM_DEPRECATIONS, category=FutureWarning)
