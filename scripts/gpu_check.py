"""`make gpu-check`: a few real training steps on one CUDA or ROCm GPU, with nothing downloaded.

    python scripts/gpu_check.py [--manifests demo/manifests] [--size 2b|4b] [--steps 3] [--out runs/gpu-check]
    python scripts/gpu_check.py --dry-run --manifests DIR   # the same path on a CPU with the tiny model

Builds a random-initialized Qwen3-VL at a real size (the public 2B or 4B configuration: Qwen3-1.7B / 4B text
stack, 24-block vision tower, DeepStack at blocks 5/11/17), with Qwen3-VL's real processor settings (patch
16, merge 2, temporal patch 2, mean/std 0.5, 65,536 to 16,777,216 pixels) and the offline tokenizer of
`medmo_train.tiny` (the real one cannot be built without a download, so text is tokenized more finely
than Qwen's; vocabulary and embedding sizes are the real 151,936). Then trains, through `medmo-train`:
stage 2 (SFT) at its own resolution from the stage manifest, and stage 4 (GRPO/DAPO) with 8 generations,
from the demo shards (`make demo` writes demo/manifests/stage{2,4}.json). Prints samples/s, tokens/s, peak
GPU memory and the mean rewards per stage, and writes them to OUT/gpu_check.json. Budget: under 8 minutes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

# Public Qwen3-VL configurations (config.json of Qwen/Qwen3-VL-2B-Instruct and -4B-Instruct).
TEXT = {
    "2b": {"hidden_size": 2048, "intermediate_size": 6144, "num_hidden_layers": 28, "num_attention_heads": 16},
    "4b": {"hidden_size": 2560, "intermediate_size": 9728, "num_hidden_layers": 36, "num_attention_heads": 32},
}
VISION = {"depth": 24, "hidden_size": 1024, "intermediate_size": 4096, "num_heads": 16, "patch_size": 16,
          "spatial_merge_size": 2, "temporal_patch_size": 2, "num_position_embeddings": 2304,
          "deepstack_visual_indexes": [5, 11, 17], "hidden_act": "gelu_pytorch_tanh"}
VOCAB = 151936
PIXELS = {"shortest_edge": 65536, "longest_edge": 16777216}
BUDGET_S = 8 * 60


def build_processor(real: bool):
    """The tiny module's offline processor; with `real`, Qwen3-VL's shipped pixel bounds."""
    from medmo_train.tiny import build_processor as tiny_processor

    proc = tiny_processor()
    if real:
        proc.image_processor.size = dict(PIXELS)
    return proc


def build_model(size: str, out: Path, on_gpu: bool) -> Path:
    """Write a random-initialized Qwen3-VL of `size` (2b, 4b; tiny: medmo_train.tiny) with its processor."""
    import torch
    from medmo_train.tiny import SPECIALS, build_tiny
    from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration

    if size == "tiny":
        return build_tiny(out)
    if (out / "config.json").exists() and (out / "processor_config.json").exists():
        return out
    proc = build_processor(real=True)
    ids = {t: proc.tokenizer.convert_tokens_to_ids(t) for t in SPECIALS}
    text = {**TEXT[size], "vocab_size": VOCAB, "num_key_value_heads": 8, "head_dim": 128,
            "max_position_embeddings": 262144, "tie_word_embeddings": True,
            "rope_parameters": {"rope_type": "default", "rope_theta": 5e6, "mrope_section": [24, 20, 20],
                                "mrope_interleaved": True},
            "pad_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|im_end|>"]}
    cfg = Qwen3VLConfig(text_config=text, vision_config={**VISION, "out_hidden_size": TEXT[size]["hidden_size"]},
                        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
                        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
                        tie_word_embeddings=True)
    torch.manual_seed(0)
    with torch.device("cuda" if on_gpu else "cpu"):
        model = Qwen3VLForConditionalGeneration(cfg).to(torch.bfloat16)
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    proc.save_pretrained(out)
    del model
    return out


def stage_args(stage: int, steps: int, completion: int, dry_run: bool) -> list[str]:
    """Overrides for a short run: the stage's own resolution and model settings, few steps, no saving."""
    common = ["--max-steps", str(steps), "--save_strategy", "no", "--report_to", "[]", "--logging_steps", "1"]
    if dry_run:
        common.append("--smoke")
    if stage == 2:
        return [*common, "--per_device_train_batch_size", "2", "--gradient_accumulation_steps", "1"]
    return [*common, "--per_device_train_batch_size", "8", "--gradient_accumulation_steps", "1",
            "--num_generations", "8", "--max_completion_length", str(completion),
            "--soft_punish_cache", str(max(1, completion // 4))]


def summarize(out: Path, peak_bytes: int | None, seconds: float) -> dict[str, Any]:
    """samples/s, tokens/s and mean rewards from the run's trainer_state.json."""
    logs = json.loads((out / "trainer_state.json").read_text(encoding="utf-8"))["log_history"]
    final = next(h for h in reversed(logs) if "train_runtime" in h)
    tokens = max((h["num_tokens"] for h in logs if "num_tokens" in h), default=0)
    rewards: dict[str, list[float]] = {}
    for h in logs:
        for k, v in h.items():
            if k.startswith("rewards/") and k.endswith("/mean") and v is not None:
                rewards.setdefault(k.split("/")[1], []).append(float(v))
    zero_std = [h["frac_reward_zero_std"] for h in logs if h.get("frac_reward_zero_std") is not None]
    return {"steps": final.get("step"), "seconds": round(seconds, 1),
            "samples_per_s": final["train_samples_per_second"], "tokens_per_s": tokens / final["train_runtime"],
            "peak_gpu_gib": None if peak_bytes is None else peak_bytes / 2**30,
            "mean_rewards": {k: sum(v) / len(v) for k, v in rewards.items()},
            "frac_reward_zero_std": sum(zero_std) / len(zero_std) if zero_std else None}


def run(manifests: Path, out: Path, size: str, steps: int, completion: int, dry_run: bool) -> dict[int, dict]:
    import torch
    from medmo_train.cli import main as train_main
    from medmo_train.demo import demo_manifest

    on_gpu = torch.cuda.is_available()
    if not on_gpu and not dry_run:
        raise SystemExit("gpu_check: no CUDA or ROCm GPU visible to torch; --dry-run runs the same path on the CPU")
    t_all = time.perf_counter()
    model = build_model("tiny" if dry_run else size, out / f"qwen3-vl-{'tiny' if dry_run else size}-random", on_gpu)
    print(f"gpu_check: model {model} ready after {time.perf_counter() - t_all:.0f} s", file=sys.stderr)
    results = {}
    for stage in (2, 4):
        src = manifests / f"stage{stage}.json"
        if not src.is_file():
            raise SystemExit(f"gpu_check: {src} not found: run `make demo` first (it builds the demo shards and "
                             "mixes the stage manifests)")
        m = demo_manifest(src, out / "manifests" / src.name)
        raw = json.loads(src.read_text(encoding="utf-8"))
        patched = json.loads(m.read_text(encoding="utf-8"))
        patched["image"] = raw.get("image")  # demo_manifest shrinks images: keep the stage's own resolution
        m.write_text(json.dumps(patched, indent=1), encoding="utf-8")
        run_dir = out / f"stage{stage}"
        if on_gpu:
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        rc = train_main(["--manifest", str(m), "--model", str(model), "--output-dir", str(run_dir), "--resume",
                         "never", *stage_args(stage, steps, completion, dry_run)])
        if rc != 0:
            raise SystemExit(f"gpu_check: stage {stage} failed (exit {rc})")
        peak = torch.cuda.max_memory_allocated() if on_gpu else None
        results[stage] = summarize(run_dir, peak, time.perf_counter() - t0)
    total = time.perf_counter() - t_all
    device = torch.cuda.get_device_name(0) if on_gpu else "cpu (dry run)"
    report = {"device": device, "size": "tiny" if dry_run else size, "total_s": round(total, 1),
              "within_budget": total <= BUDGET_S, "stages": results}
    (out / "gpu_check.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(table(report))
    return results


def table(report: dict[str, Any]) -> str:
    lines = [f"gpu_check on {report['device']}, Qwen3-VL {report['size']} (random init), {report['total_s']} s "
             f"in all (budget {BUDGET_S} s: {'ok' if report['within_budget'] else 'OVER'})",
             "stage  steps  samples/s  tokens/s  peak GPU GiB  mean rewards"]
    for stage, r in report["stages"].items():
        peak = "-" if r["peak_gpu_gib"] is None else f"{r['peak_gpu_gib']:.1f}"
        rewards = ", ".join(f"{k.replace('_reward', '')} {v:.3f}" for k, v in r["mean_rewards"].items()) or "-"
        lines.append(f"{stage:<5}  {r['steps']:<5}  {r['samples_per_s']:<9.3f}  {r['tokens_per_s']:<8.0f}  "
                     f"{peak:<12}  {rewards}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="gpu_check", description=__doc__.splitlines()[0])
    ap.add_argument("--manifests", type=Path, default=ROOT / "demo" / "manifests")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "gpu-check")
    ap.add_argument("--size", choices=sorted(TEXT), default="2b")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--completion-tokens", type=int, default=256, help="stage 4 completion length")
    ap.add_argument("--dry-run", action="store_true", help="CPU, tiny model, smoke settings: checks the path only")
    args = ap.parse_args(argv)
    run(args.manifests, args.out, args.size, args.steps, args.completion_tokens, args.dry_run)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
