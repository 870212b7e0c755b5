"""`medmo-train --manifest manifests/stageN.json [--model PATH_OR_ID] [--output-dir DIR] [--max-steps K]`

Any TRL config field (or one of our own keys, see `medmo_train.config.OWN_KEYS`) can be overridden:
`--learning_rate 2e-6 --per_device_train_batch_size 1 --report_to '["wandb"]'`. Values parse as JSON
when they can. The settings actually used go to `<output-dir>/medmo_train_settings.json`.
Launched under `accelerate launch` the same command runs on every rank (docs/training.md).
A run restarted into the same output dir resumes from its last checkpoint (`--resume never` to refuse) and
says so; one that already reached `--max-steps` trains nothing. `--smoke` turns any stage into a quick run
(small batches, 128x128 images, 2 steps) for a machine without a GPU.
Exit codes: 0 ok, 1 the run failed, 2 bad usage or bad input (one line naming the file and the field).
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import sys
from pathlib import Path
from typing import Any

DEFAULT_MODEL = "Qwen/Qwen3-VL-8B-Instruct"
log = logging.getLogger("medmo_train")


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, dict[str, Any]]:
    from .config import parse_value

    p = argparse.ArgumentParser(prog="medmo-train", description=__doc__.split("\n\n")[0],
                                epilog="Any other --FIELD VALUE overrides that TRL config field.")
    from medmo_data import __version__  # same --version / -h as medmo-data

    p.add_argument("--version", action="version", version=f"medmo-train {__version__}")
    p.add_argument("--manifest", required=True, type=Path)
    p.add_argument("--model", default=DEFAULT_MODEL, help="checkpoint path or hub id (Qwen3-VL)")
    p.add_argument("--output-dir", type=Path, default=None, help="default: runs/stage<N>")
    p.add_argument("--max-steps", type=int, default=None, help="default: epochs over the stage's samples")
    p.add_argument("--resume", default="auto", help="auto (last checkpoint in the output dir), never, or a path")
    p.add_argument("--smoke", action="store_true",
                   help="a quick run: small batch, no activation checkpointing, 128x128 images, 2 steps by default")
    p.add_argument("--strict", action="store_true",
                   help="stop on a corrupt shard or sample, or a shard whose sha256 differs from the stage "
                        "manifest (each shard is hashed once per process before it is read); default: skip "
                        "a corrupt shard or sample with a logged reason, and trust the bytes")
    args, rest = p.parse_known_args(argv)
    if args.manifest.suffix in (".yaml", ".yml"):  # a stage spec, not the manifest `mix` makes from it
        p.error(f"{args.manifest}: a stage spec; run `medmo-data mix --spec {args.manifest}` (or --stage N) "
                "first and pass the stage manifest it writes (manifests/stageN.json)")
    overrides: dict[str, Any] = {}
    i = 0
    while i < len(rest):
        tok = rest[i]
        if not tok.startswith("--"):
            p.error(f"unexpected argument {tok!r}")
        if "=" in tok:
            key, val = tok[2:].split("=", 1)
            i += 1
        elif i + 1 < len(rest):
            key, val = tok[2:], rest[i + 1]
            i += 2
        else:
            p.error(f"{tok} needs a value")
        overrides[key.replace("-", "_")] = parse_value(val)
    return args, overrides


def _world() -> tuple[int, int]:
    return int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0"))


def _resume_point(choice: str, out: Path) -> str | None:
    """The newest COMPLETE checkpoint (trainer_state.json is written last): a kill during a save leaves a
    partial folder that must not be resumed from."""
    if choice == "never":
        return None
    if choice != "auto":
        return choice
    done = [p for p in out.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()
            and (p / "trainer_state.json").exists()]
    return str(max(done, key=lambda p: int(p.name.split("-")[-1]))) if done else None


def run(argv: list[str]) -> int:
    from medmo_data.mix.stage import load_stage_manifest

    from . import config, data, launch
    from .rewards import reward_functions

    args, overrides = parse_args(argv)
    manifest = load_stage_manifest(args.manifest)
    out = args.output_dir or Path("runs") / f"stage{manifest.stage}"
    world, rank = _world()
    if args.smoke:
        overrides = {**config.SMOKE[manifest.kind], **overrides}
        args.max_steps = args.max_steps or config.SMOKE_STEPS
        if manifest.image is not None:
            manifest.image = dict(config.SMOKE_IMAGE)
    kwargs, own = config.split_settings(manifest, overrides)
    launch.check_model(args.model)
    processor = launch.load_processor(args.model)
    resolution = data.stage_resolution(manifest, processor)
    drop: dict[str, set[str]] = {}
    prompt_filter = None
    if manifest.kind == "grpo":
        out.mkdir(parents=True, exist_ok=True)
        drop, kept, dropped = data.filter_prompts(manifest, processor, resolution, int(own["max_prompt_tokens"]),
                                                  out / "prompt_filter.dropped.jsonl" if rank == 0 else None)
        prompt_filter = {"max_prompt_tokens": own["max_prompt_tokens"], "kept": kept, "dropped": dropped}
        print(f"medmo-train: prompt filter kept {kept}, dropped {dropped} prompts over "
              f"{own['max_prompt_tokens']} tokens (image tokens included)", file=sys.stderr)
    samples = data.epoch_samples(manifest, drop)
    if samples == 0:
        raise config.ConfigError(f"{manifest.path}: no samples left to train on")
    per_step = config.samples_per_step(kwargs, manifest.kind, world)
    steps = args.max_steps or data.steps_for(samples, float(kwargs.get("num_train_epochs", 1)), per_step)
    if args.max_steps:
        overrides["max_steps"] = args.max_steps
    trl_args, own = config.build_config(manifest, overrides, out, steps)
    resume = _resume_point(args.resume, out)
    reached, finished = launch.resume_state(resume, trl_args.max_steps)
    if finished:
        print(f"medmo-train: {resume} already reached step {reached} of --max-steps {trl_args.max_steps}: nothing "
              "to train (raise --max-steps to go on, or use another --output-dir)", file=sys.stderr)
        return 0
    if resume:
        print(f"medmo-train: resuming from {resume} (step {reached} of {trl_args.max_steps})", file=sys.stderr)
    dataset = data.build_dataset(manifest, resolution, world, trl_args.dataloader_num_workers, drop,
                                 strict=args.strict)

    if rank == 0:
        config.write_settings(out / "medmo_train_settings.json", {
            "manifest": str(manifest.path.resolve()),
            "manifest_sha256": hashlib.sha256(manifest.path.read_bytes()).hexdigest(),
            "stage": manifest.stage, "kind": manifest.kind, "box_format": manifest.box_format,
            "model": args.model, "world_size": world, "epoch_samples": samples, "samples_per_step": per_step,
            "image": manifest.image, "processor_size": dict(processor.image_processor.size or {})
            if resolution else None,
            "prompt_filter": prompt_filter, "own": own, "trl_config": trl_args.to_dict(),
            "trl_config_class": type(trl_args).__name__,
        })

    if manifest.kind == "grpo":
        from trl import GRPOTrainer

        rewards = reward_functions(trl_args.max_completion_length, int(own["soft_punish_cache"]))
        trainer = GRPOTrainer(model=args.model, reward_funcs=rewards, args=trl_args, train_dataset=dataset,
                              processing_class=processor)
    else:
        from trl import SFTTrainer

        trainer = SFTTrainer(model=args.model, args=trl_args, train_dataset=dataset, processing_class=processor)
    launch.DropNoneMetrics.install(trainer)
    trainer.add_callback(launch.MicroBatchProgress())
    if trl_args.use_cpu and not args.smoke:
        print(launch.cpu_notice(manifest.stage, kwargs, manifest.image), file=sys.stderr)
    trainer.train(resume_from_checkpoint=resume)
    trainer.save_model(str(out))
    trainer.save_state()  # <out>/trainer_state.json: the whole log history, next to the weights
    if rank == 0:
        processor.save_pretrained(str(out))
    return 0


def main(argv: list[str] | None = None) -> int:
    from medmo_data.mix.stage import StageManifestError
    from medmo_data.shards.reader import ShardError

    from .config import ConfigError
    from .data import ModalityError, UnscorableError
    from .launch import quiet_upstream_warnings

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    quiet_upstream_warnings()
    try:
        return run(sys.argv[1:] if argv is None else argv)
    except (StageManifestError, ConfigError, ModalityError, UnscorableError, ShardError, FileNotFoundError) as exc:
        print(f"medmo-train: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 1


if __name__ == "__main__":
    sys.exit(main())
