"""`python -m bench` (`make bench`): every row measured in this run against its side-by-side baseline.

    python -m bench [--quick] [--only build,fingerprints,img2dataset,scaling,ray,memory,png,mix,loader,reward]
                    [--mix-n N] [--mix-keep DIR]

Prints one table and writes bench/results/<UTC timestamp>.json (machine, load average, every number).
A row whose piece is missing (e.g. `medmo_data.mix.mixer` not installed) prints "not available" and the run
goes on. No network; inputs are generated under a temporary folder that is removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import build_rows

RESULTS = Path(__file__).resolve().parent / "results"
ROWS = ("build", "fingerprints", "img2dataset", "scaling", "ray", "memory", "png", "mix", "loader", "reward")


def _mix(n: int, timeout: int, keep: Path | None = None) -> dict[str, Any]:
    """bench/mix_26m.py's run(n) in a child (its own timeout), so a long run cannot hang the suite;
    `keep`: a folder where the generated index is kept and, when already there, reused."""
    where = f", keep=Path({str(keep.resolve())!r})" if keep else ""
    code = f"import json; from pathlib import Path; from bench.mix_26m import run; print(json.dumps(run({n}{where})))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                          cwd=Path(__file__).resolve().parent.parent, check=False)
    if proc.returncode:
        raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "mix failed")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _available(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def collect(rows: tuple[str, ...], quick: bool, mix_n: int, mix_timeout: int,
            log: Callable[[str], None] = print, mix_keep: Path | None = None) -> dict[str, Any]:
    """Run the selected rows; each result or {"error"/"skipped": why}."""
    work = build_rows.workdir()
    scale = 0.1 if quick else 1.0
    out: dict[str, Any] = {}

    def step(name: str, fn: Callable[[], Any], needs: str | None = None) -> None:
        if name not in rows:
            return
        if needs and not _available(needs):
            out[name] = {"skipped": f"not available: {needs} is not installed"}
            log(f"[bench] {name}: not available ({needs})")
            return
        t = time.perf_counter()
        log(f"[bench] {name} ...")
        try:
            out[name] = fn()
        except subprocess.TimeoutExpired as exc:
            out[name] = {"skipped": f"timed out after {exc.timeout:.0f} s"}
        except Exception as exc:  # noqa: BLE001 - one broken row must not hide the others
            out[name] = {"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()[-2000:]}
        log(f"[bench] {name} done in {time.perf_counter() - t:.0f} s")

    try:
        step("build", lambda: [build_rows.throughput(c, work, n=max(10, int(c.n * scale)),
                                                     repeats=1 if quick else 4)
                               for c in build_rows.CASES])
        step("fingerprints", lambda: __import__("bench.fingerprints", fromlist=["run"]).run(
            n=max(30, int(300 * scale))))
        step("img2dataset", lambda: __import__("bench.img2dataset_row", fromlist=["run"]).run(
            work, n=max(800, int(8000 * scale)), n_small=max(20, int(100 * scale))))
        step("scaling", lambda: build_rows.scaling(work, n=max(40, int(1000 * scale)),
                                                   shard_samples=max(5, int(50 * scale))))
        step("ray", lambda: build_rows.ray_scaling(work, n=max(40, int(2000 * scale)),
                                                   shard_samples=max(5, int(100 * scale))), needs="ray")
        step("memory", lambda: build_rows.memory(work, n=max(20, int(300 * scale))))
        step("png", lambda: build_rows.png_levels(work, n=max(8, int(100 * scale))))
        step("mix", lambda: _mix(int(mix_n * scale) if quick else mix_n, mix_timeout, mix_keep),
             needs="medmo_data.mix.mixer")
        step("loader", lambda: __import__("bench.loader", fromlist=["run"]).run(
            work, n_images=max(10, int(60 * scale)), n_text=max(50, int(600 * scale))), needs="medmo_train.data")
        step("reward", lambda: __import__("bench.reward", fromlist=["run"]).run(
            cases=max(30, int(300 * scale))), needs="medmo_train.rewards")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def _ok(value: float, target: float, higher: bool = True) -> str:
    return "yes" if (value >= target if higher else value <= target) else "NO"


def table(res: dict[str, Any]) -> str:
    """The printed table: what, measured, baseline, ratio, target, met."""
    lines: list[tuple[str, ...]] = [("row", "measured", "baseline", "ratio wall (cpu time)", "target", "met")]

    def bad(name: str) -> bool:
        r = res.get(name)
        if isinstance(r, dict) and ("skipped" in r or "error" in r):
            lines.append((name, r.get("skipped") or r.get("error", ""), "", "", "", ""))
            return True
        return r is None

    if not bad("build"):
        for r in res["build"]:
            goal = build_rows.TARGETS.get(r["case"])
            lines.append((f"build/core {r['what']}", f"{r['build_sps']:.1f} samples/s",
                          f"{r['baseline_sps']:.1f}", f"{r['ratio_wall']:.2f} (cpu {r['ratio_cpu']:.2f})",
                          f">= {goal:.2f} cpu" if goal else "(info)", _ok(r["ratio_cpu"], goal) if goal else ""))
            if "bytes_only_sps" in r:
                lines.append(("  jpeg: bytes-only copy, no validation", "", f"{r['bytes_only_sps']:.0f}",
                              f"{r['build_sps'] / r['bytes_only_sps']:.2f}", "(info)", ""))
            if sh := r.get("shared_images"):
                lines.append((f"  jpeg: {sh['per_image']} questions per image file (VQA-RAD's ratio)",
                              f"{sh['build_cpu_ms_per_sample']:.2f} ms cpu", f"{sh['baseline_cpu_ms_per_sample']:.2f}",
                              f"cpu {sh['ratio_cpu']:.2f}", "(info)", ""))
    if not bad("fingerprints"):
        r = res["fingerprints"]
        lines.append(("JPEG 512^2: fingerprints v2 (xxh3 + reduced dHash/thumb)",
                      f"{r['fingerprints_ms']:.2f} ms cpu", f"decode {r['decode_ms']:.2f} ms",
                      f"{r['fingerprints_vs_decode']:.2f} of a decode", "(info)", ""))
        lines.append(("  fingerprints v1 (pixel sha256 + full-size dHash/thumb)", f"{r['fingerprints_v1_ms']:.2f} ms",
                      f"v2 {r['fingerprints_ms']:.2f} ms", f"{r['fingerprints_v1_ms'] / r['fingerprints_ms']:.1f}x",
                      "(info)", ""))
        lines.append(("  strided print, not used (misses copies: near_dup_rate --print strided)",
                      f"{r['prints_strided_ms']:.2f} ms", f"v2 prints {r['prints_ms']:.2f} ms", "", "(info)", ""))
        lines.append(("  decoded pixels: view of Pillow's buffer", f"{r['pixels_view_ms']:.3f} ms",
                      f"np.asarray {r['pixels_asarray_ms']:.3f} ms", "", "(info)", ""))
        lines.append(("  index row + its Parquet share", f"{r['index_row_ms'] + r['index_parquet_ms_per_row']:.3f} ms",
                      "", "", "(info)", ""))
        lines.append(("CT 512^2 int16 window: lookup table", f"{r['window_table_ms']:.2f} ms cpu",
                      f"float64 formula {r['window_formula_ms']:.2f} ms",
                      f"{r['window_formula_ms'] / r['window_table_ms']:.1f}x faster, same bytes", "(info)", ""))
        lines.append(("  draft (1/8 DCT) decode, for a reduced dHash", f"{r['draft_decode_ms']:.2f} ms",
                      f"full {r['decode_ms']:.2f} ms", f"{r['draft_decode_ms'] / r['decode_ms']:.2f}", "(info)", ""))
    if not bad("img2dataset"):
        r = res["img2dataset"]
        if "not_measured" in r:
            lines.append(("folder JPEG vs img2dataset --skip_reencode", "not measured", "", r["not_measured"],
                          ">= 1.00", ""))
        else:
            lines.append((f"folder JPEG vs img2dataset --skip_reencode ({r['samples']})",
                          f"{r['folder_ms_per_image']:.2f} ms cpu/img", f"{r['img2dataset_ms_per_image']:.2f}",
                          f"{r['ratio']:.2f}", ">= 1.00", _ok(r["ratio"], 1.0)))
    for name, label, key1, key2, goal in (("scaling", "--workers 2 vs 1", "workers1_s", "workers2_s", 1.7),
                                          ("ray", "--engine ray, 2 vs 1 CPU", "cpus1_s", "cpus2_s", 1.6)):
        if bad(name):
            continue
        r = res[name]
        what = f"{label} ({r['samples']} DeepLesion)"
        if "not_measured" in r:
            lines.append((what, "not measured", "", r["not_measured"], f">= {goal}x", ""))
            continue
        same = r.get("same_bytes", r.get("same_bytes_as_local"))
        lines.append((what, f"{r[key2]:.1f} s", f"{r[key1]:.1f} s", f"{r['speedup']:.2f}x, same bytes {same}",
                      f">= {goal}x", _ok(r["speedup"], goal)))
        lines.append(("  cores free at the start", f"{r['cores_free']:.2f}", f"{r['cpus_usable']} usable",
                      f"idle {r.get('idle_cores')}, spin {r.get('spin_cores')}, load {r['loadavg_1m']:.1f}",
                      "(info)", ""))
        if name == "ray":
            lines.append(("  cluster start / worker warm-up (excluded)", f"{r['cluster_start_s']:.1f} s",
                          f"{r['worker_warmup_s']:.1f} s", "", "(info)", ""))
    if not bad("memory"):
        r = res["memory"]
        lines.append((f"peak RSS {r['samples_10x']} vs {r['samples_1x']} samples", f"{r['peak_mib_10x']:.0f} MiB",
                      f"{r['peak_mib_1x']:.0f} MiB", f"{r['ratio']:.2f}x", "<= 1.2x", _ok(r["ratio"], 1.2, False)))
    if not bad("png"):
        ref = next((x for x in res["png"] if x["png_level"] == 4), res["png"][0])
        for r in res["png"]:
            lines.append((f"PNG level {r['png_level']} (CT 512^2)", f"{r['samples_per_s']:.1f} samples/s",
                          f"{r['bytes_per_sample'] / 1024:.0f} KiB/sample",
                          f"size x{r['bytes_per_sample'] / ref['bytes_per_sample']:.2f} vs level 4", "(info)", ""))
    if not bad("mix"):
        r = res["mix"]
        rows = f"{r['n'] / 1e6:.0f}M index rows"
        lines.append((f"mix, {rows}, vs the same rules in plain polars", f"{r['mix_s']:.1f} s",
                      f"{r['baseline_s']:.1f} s", f"{r['ratio_vs_baseline']:.2f}, same rows {r['same_rows']}",
                      "<= 1.30", _ok(r["ratio_vs_baseline"], 1.3, False) if r["same_rows"] else "NO"))
        lines.append(("  mix peak RSS (floor's)", f"{r['peak_rss_mib']:.0f} MiB", f"{r['baseline_peak_rss_mib']:.0f} MiB",
                      "", "<= 4096 MiB", _ok(r["peak_rss_mib"], 4096, False)))
        lines.append(("  vs the exact-match rules only", "", f"{r['exact_floor_s']:.1f} s",
                      f"{r['ratio_vs_exact_floor']:.2f}", "(info)", ""))
    if not bad("loader"):
        for r in res["loader"]:
            side = f", {r['image_side']}^2" if r.get("image_side") else ""
            lines.append((f"adapter stage {r['stage']} (batch {r['batch']}{side}, 1 torch thread)",
                          f"{r['adapter_sps']:.1f} samples/s", f"{r['plain_read_sps']:.0f} (tar+decode)",
                          f"{1000 * r['adapter_cpu_s_per_sample']:.1f} ms cpu/sample; rows only {r['rows_sps']:.0f}/s",
                          "(info)", ""))
            if "standalone_cpu_s_per_sample" in r:
                agree = r["standalone_cpu_s_per_sample"] / r["adapter_cpu_s_per_sample"]
                lines.append(("  same adapter, standalone child process",
                              f"{1000 * r['standalone_cpu_s_per_sample']:.1f} ms cpu/sample",
                              f"{r['standalone_sps']:.1f} samples/s", f"cpu {agree:.2f}x the row",
                              "0.8-1.25x", _ok(min(agree, 1 / agree), 0.8)))
    if not bad("reward"):
        for r in res["reward"]:
            lines.append((f"box_score, {r['boxes']} pred x {r['boxes']} gt", f"{r['vectorized_us']:.0f} us",
                          f"{r['naive_us']:.0f} us (naive)", f"{r['speedup']:.2f}x", f">= {r['goal']}x",
                          _ok(r["speedup"], r["goal"])))
    widths = [max(len(row[i]) for row in lines) for i in range(6)]
    fmt = lambda row: "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True))  # noqa: E731
    return "\n".join([fmt(lines[0]), "  ".join("-" * w for w in widths)] + [fmt(r) for r in lines[1:]])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="about a tenth of the samples (smoke run)")
    ap.add_argument("--only", default=",".join(ROWS), help=f"comma list of rows: {','.join(ROWS)}")
    ap.add_argument("--mix-n", type=int, default=26_000_000, help="index rows for the mix row")
    ap.add_argument("--mix-timeout", type=int, default=1800, help="seconds before the mix row gives up")
    ap.add_argument("--mix-keep", type=Path, default=None,
                    help="keep the mix row's generated index in this folder and reuse it when already there")
    ap.add_argument("--out", type=Path, default=None, help="JSON path (default bench/results/<ts>.json)")
    args = ap.parse_args(argv)
    rows = tuple(r.strip() for r in args.only.split(",") if r.strip())
    unknown = set(rows) - set(ROWS)
    if unknown:
        ap.error(f"--only: unknown rows {sorted(unknown)}")
    t0 = time.perf_counter()
    load0 = os.getloadavg()
    res = collect(rows, args.quick, args.mix_n, args.mix_timeout, log=lambda m: print(m, file=sys.stderr),
                  mix_keep=args.mix_keep)
    doc = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "quick": args.quick,
           "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                       "platform": platform.platform(), "loadavg_start": load0, "loadavg_end": os.getloadavg()},
           "seconds": round(time.perf_counter() - t0, 1), "results": res}
    path = args.out or RESULTS / f"{doc['when'].replace(':', '')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1))
    print(table(res))
    print(f"\n{os.cpu_count()} CPUs, load average {load0[0]:.1f} at start / {os.getloadavg()[0]:.1f} at end "
          f"(other processes share these cores: ratios are same-run pairs, absolute rates vary); "
          f"{doc['seconds']:.0f} s; wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
