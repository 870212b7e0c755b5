"""Stage manifest `training` block + command-line overrides -> `SFTConfig` / `GRPOConfig`.

Keys are TRL config field names, checked against the dataclass so that a stale key (e.g. GRPO's
`max_prompt_length`, removed in TRL 0.28) fails with a message naming the manifest and the field.
A few keys are ours, not TRL's (`OWN_KEYS`): the GRPO prompt budget, the overlong cache, attention.
Defaults the design fixes for every stage (bf16, AdamW betas, weight decay 0.1, 10% warm-up, cosine,
seed 42) fill in what the manifest leaves out; the manifest wins, the command line wins over both.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from medmo_data.mix.stage import StageManifest

OWN_KEYS = {
    "max_prompt_tokens": 2048,  # GRPO prompt filter (image tokens included); not a GRPOConfig field
    "soft_punish_cache": 256,  # DAPO overlong ramp width before max_completion_length
    "attn_implementation": "sdpa",  # works on ROCm and CUDA without flash-attn
    "model_dtype": "bfloat16",
}
STAGE_DEFAULTS: dict[str, Any] = {
    "bf16": True, "adam_beta1": 0.9, "adam_beta2": 0.999, "weight_decay": 0.1, "warmup_steps": 0.1,
    "lr_scheduler_type": "cosine", "seed": 42, "num_train_epochs": 1,
    "logging_steps": 1, "save_strategy": "steps", "save_steps": 500, "save_total_limit": 3,
    "report_to": ["tensorboard"],
    # transformers 5 names: the gradient_checkpointing* aliases warn (FutureWarning) when they are what is set
    "activation_checkpointing": True, "activation_checkpointing_kwargs": {"use_reentrant": False},
}
SFT_DEFAULTS: dict[str, Any] = {"assistant_only_loss": True}
GRPO_DEFAULTS: dict[str, Any] = {
    "loss_type": "dapo", "epsilon": 0.15, "epsilon_high": 0.25, "num_generations": 8,
    "max_completion_length": 1024, "log_completions": False, "log_multimodal": False,
}
# transformers 5 folded warmup_ratio into warmup_steps (a float in [0, 1) is a ratio of the steps), and renamed
# gradient checkpointing to activation checkpointing (old names still fields, but deprecated).
ALIASES = {"warmup_ratio": "warmup_steps", "gradient_checkpointing": "activation_checkpointing",
           "gradient_checkpointing_kwargs": "activation_checkpointing_kwargs"}
# `--smoke`: a quick run on any machine (the settings `make demo` trains the tiny model with).
SMOKE_IMAGE = {"min_pixels": 32 * 32, "max_pixels": 128 * 128}
SMOKE_STEPS = 2
SMOKE: dict[str, dict[str, Any]] = {
    "sft": {"per_device_train_batch_size": 2, "gradient_accumulation_steps": 1, "activation_checkpointing": False},
    "grpo": {"per_device_train_batch_size": 4, "gradient_accumulation_steps": 1, "num_generations": 4,
             "max_completion_length": 32, "soft_punish_cache": 8, "activation_checkpointing": False},
}
HINTS = {"max_prompt_length": "GRPOConfig has no max_prompt_length since TRL 0.28; use max_prompt_tokens "
                              "(our prompt filter, image tokens included)",
         "max_seq_length": "SFTConfig.max_seq_length was removed in TRL 0.20; use max_length"}


class ConfigError(ValueError):
    """A bad training setting (exit 2)."""


def config_class(kind: str) -> type:
    from trl import GRPOConfig, SFTConfig

    return GRPOConfig if kind == "grpo" else SFTConfig


def parse_value(text: str) -> Any:
    """Command-line value: JSON when it parses (numbers, true/false, lists), else the string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return {"True": True, "False": False, "None": None}.get(text, text)


def split_settings(manifest: StageManifest, overrides: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(TRL kwargs, our own settings) after defaults, manifest and overrides; unknown keys raise."""
    cls = config_class(manifest.kind)
    fields = {f.name for f in dataclasses.fields(cls)}
    merged: dict[str, Any] = {**STAGE_DEFAULTS, **(GRPO_DEFAULTS if manifest.kind == "grpo" else SFT_DEFAULTS)}
    if manifest.kind == "sft" and manifest.image is not None:
        merged["max_length"] = None  # never truncate through image tokens (the pixel budget bounds length)
    own = dict(OWN_KEYS)
    for where, block in (("training.", manifest.training), ("--", overrides)):
        for key, value in block.items():
            if key in ALIASES and ALIASES[key] in fields:
                key = ALIASES[key]
            if key in OWN_KEYS:
                own[key] = value
            elif key in fields:
                merged[key] = value
            else:
                hint = HINTS.get(key, f"not a {cls.__name__} field")
                raise ConfigError(f"{manifest.path}: field {where}{key}: {hint}")
    return merged, own


def build_config(manifest: StageManifest, overrides: dict[str, Any], output_dir: Path, max_steps: int):
    """The TRL config object for the stage; `max_steps` unless the manifest or command line sets one."""
    kwargs, own = split_settings(manifest, overrides)
    kwargs["output_dir"] = str(output_dir)
    kwargs["max_steps"] = int(kwargs.get("max_steps") or max_steps)
    if "use_cpu" not in kwargs and not _has_gpu():
        kwargs["use_cpu"] = True  # CPU runs (tests, demo): bf16 then runs through CPU autocast
    kwargs["model_init_kwargs"] = {"dtype": own["model_dtype"], "attn_implementation": own["attn_implementation"],
                                   **(kwargs.get("model_init_kwargs") or {})}
    cls = config_class(manifest.kind)
    try:
        return cls(**kwargs), own
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{manifest.path}: {cls.__name__}: {exc}") from exc


def _has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()  # ROCm builds answer through the torch.cuda API too


def samples_per_step(kwargs: dict[str, Any], kind: str, world_size: int) -> int:
    """Dataset rows one optimizer step consumes (GRPO: prompts, each generated num_generations times)."""
    rows = (int(kwargs.get("per_device_train_batch_size", 8)) * int(kwargs.get("gradient_accumulation_steps", 1))
            * max(1, world_size))
    if kind == "grpo":
        rows = max(1, rows // int(kwargs.get("num_generations", 8)))
    return rows


def write_settings(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
