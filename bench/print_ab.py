"""What the perceptual print costs inside a real JPEG pass-through build (issue 19 item 3), not in a loop.

    python -m bench.print_ab [--n 2000] [--repeats 6]

One process alternates four runs on the same byte-unique VQA-RAD JPEGs: the build as it is, the build with
the four small BOX resizes taken out of the print (the box reduction kept), the build with the whole
perceptual print taken out (the pixel hash kept), and the floor (read + validating decode + tar). Each
variant swaps `fingerprint` where the build calls it; the swapped builds write wrong prints and are
thrown away. Prints the best CPU ms per sample of each and floor / variant: how far from the 0.8 target
any print of a given cost would land. Diagnostic only, not a `make bench` row: it patches project code.
"""

from __future__ import annotations

import argparse
import os
import shutil
from collections.abc import Callable
from typing import Any

import numpy as np

from . import baselines, build_rows, gen


def _variants() -> dict[str, Callable[..., Any]]:
    import medmo_data.build.normalize as normalize
    from medmo_data.mix import fingerprint as fp

    def hash_only(img: Any, pixels: np.ndarray | None = None, version: int = 2) -> tuple[str, int, bytes]:
        return fp.pixel_hash(np.asarray(img) if pixels is None else pixels), 0, bytes(fp.THUMB_SIDE ** 2)

    def reduction_only(img: Any, pixels: np.ndarray | None = None, version: int = 2) -> tuple[str, int, bytes]:
        fp._reduced(fp._grey(img))
        return hash_only(img, pixels)

    return {"build as it is": normalize.fingerprint, "box reduction, no resizes": reduction_only,
            "pixel hash, no print": hash_only}


def run(n: int = 2000, repeats: int = 6) -> dict[str, Any]:
    import medmo_data.build.normalize as normalize

    work = build_rows.workdir()
    raw, out = gen.vqa_rad(work / "raw_print_ab", n), work / "out_print_ab"
    variants = _variants()
    real = normalize.fingerprint
    cpu: dict[str, list[float]] = {name: [] for name in [*variants, "floor"]}
    try:
        build_rows._build("vqa_rad", raw, out, limit=20)  # imports and first allocations, untimed
        for _ in range(repeats):
            for name, fn in variants.items():
                normalize.fingerprint = fn
                try:
                    cpu[name].append(build_rows._timed(lambda: build_rows._build("vqa_rad", raw, out))[1] / n)
                finally:
                    normalize.fingerprint = real
            cpu["floor"].append(build_rows._timed(lambda: baselines.jpeg_passthrough(raw, work / "f.tar"))[1] / n)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    floor = min(cpu["floor"])
    return {name: {"cpu_ms_per_sample": 1000 * min(v), "floor_over_this": floor / min(v)} for name, v in cpu.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=6)
    args = ap.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    for name, row in run(args.n, args.repeats).items():
        print(f"{name:28s} {row['cpu_ms_per_sample']:.3f} CPU ms/sample   floor / this {row['floor_over_this']:.2f}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
