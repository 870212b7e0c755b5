"""Demo hook: train the tiny Qwen3-VL a few steps on every stage manifest found, on the CPU.

    python -m medmo_train.demo MANIFEST_DIR OUT_DIR [STEPS]

`make demo` builds the fixtures, runs `medmo-data mix` per stage into MANIFEST_DIR, then calls this.
The demo trains with `--smoke` (the stage settings cut to what the tiny model and a CPU need: small batches,
a tiny pixel budget, short GRPO completions: 4 generations of 32 tokens).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from .cli import main as train_main
from .config import SMOKE_IMAGE as DEMO_IMAGE
from .tiny import build_tiny


def demo_manifest(src: Path, dest: Path) -> Path:
    """A copy of a stage manifest with the demo's pixel budget (shard paths made absolute)."""
    raw = json.loads(src.read_text(encoding="utf-8"))
    if raw.get("image") is not None:
        raw["image"] = DEMO_IMAGE
    for s in raw["sources"]:
        for sh in s["shards"]:
            p = Path(sh["path"])
            sh["path"] = str(p if p.is_absolute() else (src.parent / p).resolve())
        if s.get("excluded_keys"):
            e = Path(s["excluded_keys"])
            s["excluded_keys"] = str(e if e.is_absolute() else (src.parent / e).resolve())
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(raw, indent=1), encoding="utf-8")
    return dest


def run_demo(manifest_dir: Path, out: Path, steps: int = 2) -> dict[int, float]:
    """Train every stageN.json of manifest_dir; returns {stage: seconds}."""
    model = build_tiny(out / "tiny-qwen3-vl")
    times = {}
    for src in sorted(manifest_dir.glob("stage*.json")):
        raw = json.loads(src.read_text(encoding="utf-8"))
        m = demo_manifest(src, out / "manifests" / src.name)
        t0 = time.time()
        rc = train_main(["--manifest", str(m), "--model", str(model), "--output-dir",
                         str(out / f"stage{raw['stage']}"), "--max-steps", str(steps),
                         "--smoke", "--save_steps", "2"])
        if rc != 0:
            raise SystemExit(rc)
        times[raw["stage"]] = time.time() - t0
        print(f"demo: stage {raw['stage']} trained {steps} steps in {times[raw['stage']]:.1f} s", file=sys.stderr)
    return times


if __name__ == "__main__":
    if len(sys.argv) < 3:
        print("usage: python -m medmo_train.demo MANIFEST_DIR OUT_DIR [STEPS]", file=sys.stderr)
        sys.exit(2)
    run_demo(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 2)
