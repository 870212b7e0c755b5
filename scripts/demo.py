"""`make demo`: generate the bundled miniature raw trees, build + verify + show every recipe, mix the four
stages and train the tiny Qwen3-VL a few steps on each, then print a summary table.

Everything runs offline on the CPU; outputs go to demo/ (raw/, data/, grids/, manifests/, runs/).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from medmo_data.build.distributor import BuildOptions, build  # noqa: E402
from medmo_data.build.verify import verify  # noqa: E402
from medmo_data.recipe import all_recipes  # noqa: E402
from medmo_data.show import show  # noqa: E402
from tests.fixtures import available, make  # noqa: E402

OUT = ROOT / "demo"
console = Console()


def build_all() -> list[tuple[str, dict, bool, float]]:
    recipes = all_recipes()
    rows = []
    for name in available():
        if name not in recipes:
            continue
        raw = make(name, OUT / "raw")
        t0 = time.perf_counter()
        res = build(recipes[name], raw, BuildOptions(output=OUT / "data", workers=2, shard_samples=64))
        seconds = time.perf_counter() - t0
        rep = verify(OUT / "data" / name)
        if res.manifest["counts"]["written"]:
            show(OUT / "data" / name, OUT / "grids" / f"{name}.png", n=8)
        rows.append((name, res.manifest, rep.ok, seconds))
        console.print(f"[{len(rows)}] {name}: {res.manifest['counts']['written']} samples, {seconds:.1f}s",
                      highlight=False)  # not silent for minutes
        if not rep.ok:
            console.print(f"[red]{name}: verify found {len(rep.problems)} problems[/red]: {rep.problems[:3]}")
    return rows


def main() -> int:
    rows = build_all()
    t = Table(title=f"medmo-data demo: {len(rows)} sources built from bundled miniature raw trees")
    for col in ("source", "stages", "read", "written", "rejected", "shards", "verify", "s"):
        t.add_column(col, justify="right" if col not in ("source", "stages") else "left")
    for name, m, ok, s in rows:
        c = m["counts"]
        t.add_row(name, ",".join(map(str, m["info"]["stages"])), str(c["read"]), str(c["written"]),
                  str(c["rejected"]), str(len(m["shards"])), "ok" if ok else "FAIL", f"{s:.1f}")
    console.print(t)
    console.print(f"preview grids: {OUT / 'grids'}")
    failed = [n for n, _, ok, _ in rows if not ok]
    if failed:
        console.print(f"[red]verify failed for: {', '.join(failed)}[/red]")
        return 1
    from scripts.demo_train import mix_and_train  # mix all four stages, train the tiny model on each

    rc = mix_and_train(OUT, console)
    return rc or evaluate(OUT / "runs" / "stage4")


def evaluate(model: Path) -> int:
    """Close the loop: score the last trained stage on the demo's test splits and print results.md."""
    import shutil
    import subprocess

    from medmo_train.demo import DEMO_IMAGE

    shutil.rmtree(OUT / "eval", ignore_errors=True)  # the demo retrains the model: never resume old predictions

    cmd = [sys.executable, "-m", "medmo_train.eval.cli", "--model", str(model), "--data", str(OUT / "data"),
           "--out", str(OUT / "eval"), "--limit", "4", "--max-new-tokens", "16", "--stage", "4",
           "--min-pixels", str(DEMO_IMAGE["min_pixels"]), "--max-pixels", str(DEMO_IMAGE["max_pixels"])]
    console.print("[dim]$ medmo-eval " + " ".join(cmd[3:]) + "[/dim]", highlight=False, soft_wrap=True)
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        console.print(r.stderr[-3000:], highlight=False)
        return r.returncode
    print((OUT / "eval" / "results.md").read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
