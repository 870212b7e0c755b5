"""Second half of `make demo`: mix the four stages from the demo's built sources with the public CLI, train
the tiny Qwen3-VL a few steps on every stage on the CPU (`medmo_train.demo`: the stage settings with small
batches and a tiny pixel budget so a CPU finishes in seconds), and render stage 2's report."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

STEPS = 2


def _run(cmd: list[str], console: Console) -> None:
    console.print("[dim]$ " + " ".join(cmd) + "[/dim]", highlight=False, soft_wrap=True)
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        console.print(r.stdout[-3000:], r.stderr[-3000:], highlight=False)
        raise SystemExit(f"command failed ({r.returncode}): {' '.join(cmd)}")


def mix_and_train(out: Path, console: Console) -> int:
    from medmo_train.demo import run_demo
    from medmo_train.tiny import build_tiny

    bin_dir = Path(sys.executable).parent
    manifests = out / "manifests"
    manifests.mkdir(parents=True, exist_ok=True)
    tiny = build_tiny(out / "runs" / "tiny-qwen3-vl")
    mix_s = {}
    for stage in (1, 2, 3, 4):
        t0 = time.perf_counter()
        _run([str(bin_dir / "medmo-data"), "mix", "--stage", str(stage), "--data", str(out / "data"), "--out",
              str(manifests / f"stage{stage}.json"), "--tokenizer", str(tiny)], console)
        mix_s[stage] = time.perf_counter() - t0
    _run([str(bin_dir / "medmo-data"), "stats", str(manifests / "stage2.json"), "--out",
          str(out / "reports" / "stage2.html")], console)
    train_s = run_demo(manifests, out / "runs", STEPS)
    t = Table(title=f"stages mixed and trained ({STEPS} steps each, tiny Qwen3-VL, CPU)")
    for col in ("stage", "kind", "sources", "samples", "mix s", "train s"):
        t.add_column(col, justify="right")
    for stage in (1, 2, 3, 4):
        m = json.loads((manifests / f"stage{stage}.json").read_text())
        t.add_row(str(stage), m["kind"], str(len(m["sources"])), str(m["samples"]), f"{mix_s[stage]:.1f}",
                  f"{train_s[stage]:.1f}")
    console.print(t)
    console.print(f"stage manifests: {manifests}   runs: {out / 'runs'}   report: {out / 'reports' / 'stage2.html'}")
    return 0
