"""Second half of `make demo`: mix the four stages from the demo's built sources, write the tiny Qwen3-VL,
train it a few steps on every stage on the CPU, and render one stage's report. Uses the public CLIs only,
exactly as a user would."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

STEPS = 2


def _run(cmd: list[str], console: Console) -> subprocess.CompletedProcess:
    console.print("[dim]$ " + " ".join(cmd) + "[/dim]", highlight=False)
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        console.print(r.stdout[-3000:], r.stderr[-3000:], highlight=False)
        raise SystemExit(f"command failed ({r.returncode}): {' '.join(cmd)}")
    return r


def mix_and_train(out: Path, console: Console) -> int:
    bin_dir = Path(sys.executable).parent
    data, manifests, runs = out / "data", out / "manifests", out / "runs"
    manifests.mkdir(parents=True, exist_ok=True)
    tiny = out / "tiny-qwen3-vl"
    _run([sys.executable, "-m", "medmo_train.tiny", str(tiny)], console)
    rows = []
    for stage in (1, 2, 3, 4):
        man = manifests / f"stage{stage}.json"
        t0 = time.perf_counter()
        _run([str(bin_dir / "medmo-data"), "mix", "--stage", str(stage), "--data", str(data), "--out", str(man),
              "--tokenizer", str(tiny)], console)
        mix_s = time.perf_counter() - t0
        m = json.loads(man.read_text())
        t0 = time.perf_counter()
        _run([str(bin_dir / "medmo-train"), "--manifest", str(man), "--model", str(tiny), "--output-dir",
              str(runs / f"stage{stage}"), "--max-steps", str(STEPS), "--resume", "never"], console)
        train_s = time.perf_counter() - t0
        rows.append((stage, m["kind"], len(m["sources"]), m["samples"], mix_s, train_s))
    _run([str(bin_dir / "medmo-data"), "stats", str(manifests / "stage2.json"), "--out",
          str(out / "reports" / "stage2.html")], console)
    t = Table(title=f"stages mixed and trained ({STEPS} steps each, tiny model, CPU)")
    for col in ("stage", "kind", "sources", "samples", "mix s", "train s"):
        t.add_column(col, justify="right")
    for stage, kind, n, samples, mix_s, train_s in rows:
        t.add_row(str(stage), kind, str(n), str(samples), f"{mix_s:.1f}", f"{train_s:.1f}")
    console.print(t)
    console.print(f"stage manifests: {manifests}  runs: {runs}  report: {out / 'reports' / 'stage2.html'}")
    return 0
