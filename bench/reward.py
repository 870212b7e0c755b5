"""`medmo_train.rewards.box_score` against a direct transcription of the contract's formula (per-pair
Python loops for L1 and GIoU, then the same Hungarian solver), on random XYXY box sets of every size a
stage-4 answer has in practice (1 to 30 boxes). Both must agree to 1e-9 on every case before any timing
counts. Goal (#19.6): never slower than the obvious code, i.e. speed-up >= 1.0 at every size."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment


def _giou(p: list[float], g: list[float]) -> float:
    ap = (p[2] - p[0]) * (p[3] - p[1])
    ag = (g[2] - g[0]) * (g[3] - g[1])
    iw = max(0.0, min(p[2], g[2]) - max(p[0], g[0]))
    ih = max(0.0, min(p[3], g[3]) - max(p[1], g[1]))
    inter = iw * ih
    union = ap + ag - inter
    iou = inter / union if union > 0 else 0.0
    enclose = (max(p[2], g[2]) - min(p[0], g[0])) * (max(p[3], g[3]) - min(p[1], g[1]))
    return iou - ((enclose - union) / enclose if enclose > 0 else 0.0)


def naive_box_score(pred: list[list[float]], gt: list[list[float]]) -> float:
    """The formula line by line (lambdas 0, finite boxes)."""
    if not gt:
        return 0.5
    if not pred:
        return 0.0
    h = max(b[3] for b in gt)
    w = max(b[2] for b in gt)
    diag = 2.0 * math.sqrt(h * h + w * w)
    l1 = [[sum(abs(p[k] - g[k]) for k in range(4)) / diag for g in gt] for p in pred]
    gi = [[_giou(p, g) for g in gt] for p in pred]
    cost = [[5.0 * l1[i][j] + 2.0 * (1 - gi[i][j]) for j in range(len(gt))] for i in range(len(pred))]
    rows, cols = linear_sum_assignment(cost)
    s = sum((5.0 * (1 - min(max(l1[i][j], 0.0), 1.0)) + 2.0 * (gi[i][j] + 1) / 2) / 7.0
            for i, j in zip(rows, cols, strict=True))
    return min(max(s / len(gt), 0.0), 1.0)


def _boxes(rng: np.random.Generator, n: int) -> list[list[float]]:
    xy = rng.uniform(0, 400, (n, 2))
    wh = rng.uniform(5, 100, (n, 2))
    return np.concatenate([xy, xy + wh], 1).round(1).tolist()


SIZES = (1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30)
GOAL = 1.0


def run(sizes: tuple[int, ...] = SIZES, cases: int = 300) -> list[dict[str, Any]]:
    from medmo_train.rewards import box_score

    rng = np.random.default_rng(0)
    rows = []
    for n in sizes:
        data = [(_boxes(rng, n), _boxes(rng, n)) for _ in range(cases)]
        for p, g in data[:20]:
            assert abs(box_score(p, g) - naive_box_score(p, g)) < 1e-9, (n, p, g)
        times = {}
        for name, fn in (("vectorized", box_score), ("naive", naive_box_score)):
            best = float("inf")
            for _ in range(3):
                t = time.perf_counter()
                for p, g in data:
                    fn(p, g)
                best = min(best, time.perf_counter() - t)
            times[name] = best / cases
        rows.append({"boxes": n, "vectorized_us": 1e6 * times["vectorized"], "naive_us": 1e6 * times["naive"],
                     "speedup": times["naive"] / times["vectorized"], "goal": GOAL})
    return rows


if __name__ == "__main__":
    import os

    print(f"load average {os.getloadavg()[0]:.2f}")
    for r in run():
        print(f"{r['boxes']:>2} boxes: box_score {r['vectorized_us']:7.1f} us, plain loop {r['naive_us']:8.1f} us, "
              f"x{r['speedup']:.2f} (goal >= {r['goal']})")
