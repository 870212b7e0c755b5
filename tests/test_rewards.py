"""Stage-4 rewards: the box reward against hand-computed values and a slow direct transcription of the
design contract's formula; the label, tag and overlong rewards on hand-written completions."""

from __future__ import annotations

import itertools
import math
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from medmo_train.rewards import (
    bbox_reward,
    box_score,
    label_accuracy_reward,
    overlong_reward,
    tag_count_reward,
)

# --- the slow, direct transcription of design.md "Bounding-box reward" (loops, brute-force matching) ----


def slow_giou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    iou = inter / union if union > 0 else 0.0
    c = (max(a[2], b[2]) - min(a[0], b[0])) * (max(a[3], b[3]) - min(a[1], b[1]))
    return iou - (c - union) / c if c > 0 else iou


def slow_scores(pred, gt, lfn=0.0, lfp=0.0):
    """Every reward value a minimum-cost matching can give (ties in cost may differ in score)."""
    G, P = len(gt), len(pred)
    if G == 0:
        return [0.5]
    H = max(b[3] for b in gt)
    W = max(b[2] for b in gt)
    if P == 0:
        return [min(max(0 - (lfn * G) / max(1, G), 0.0), 1.0)]
    diag = math.sqrt(H * H + W * W)

    def l1(p, g):
        return (abs(p[0] - g[0]) + abs(p[1] - g[1]) + abs(p[2] - g[2]) + abs(p[3] - g[3])) / (2 * diag)

    def cost(p, g):
        return 5.0 * l1(p, g) + 2.0 * (1 - slow_giou(p, g))

    m = min(P, G)
    results = []
    for ps in itertools.permutations(range(P), m):
        for gs in itertools.combinations(range(G), m):
            c = sum(cost(pred[i], gt[j]) for i, j in zip(ps, gs, strict=True))
            s = sum((5.0 * (1 - min(max(l1(pred[i], gt[j]), 0.0), 1.0)) + 2.0 * (slow_giou(pred[i], gt[j]) + 1) / 2)
                    / 7.0 for i, j in zip(ps, gs, strict=True))
            results.append((c, s))
    best = min(c for c, _ in results)
    penalty = (lfn * (G - m) + lfp * (P - m)) / max(1, G)
    return sorted({min(max(s / G - penalty, 0.0), 1.0) for c, s in results if c <= best + 1e-9})


# --- hand-computed cases ------------------------------------------------------------------------------

A = [0, 0, 10, 10]
CASES = [
    ("perfect", [A], [A], 0, 0, 1.0),
    ("G=0, P=0", [], [], 0, 0, 0.5),
    ("G=0, P=2, penalties ignored", [A, A], [], 1, 1, 0.5),
    ("P=0", [], [A], 0, 0, 0.0),
    ("P=0 with miss penalty", [], [A, A], 0.5, 0, 0.0),
    # L1 = 10 / (2*sqrt(200)) = 0.353553; GIoU = 50/150 = 1/3.
    ("shifted half a box", [[5, 0, 15, 10]], [A], 0, 0, (5 * (1 - 0.35355339) + 2 * (4 / 3) / 2) / 7),
    # L1 = 40 / 28.28 > 1 -> clipped; IoU 0, enclosing 300, union 200 -> GIoU = -1/3.
    ("disjoint, negative GIoU", [[20, 0, 30, 10]], [A], 0, 0, (2 * (2 / 3) / 2) / 7),
    # L1 = 10 / 28.28; IoU = 25/100, enclosing = union -> GIoU 0.25.
    ("inside, quarter area", [[0, 0, 5, 5]], [A], 0, 0, (5 * (1 - 0.35355339) + 2 * 1.25 / 2) / 7),
    # zero-area prediction: L1 = 20/28.28 = 0.707107; IoU 0; enclosing = union = 100 -> GIoU 0.
    ("zero-area prediction", [[5, 5, 5, 5]], [A], 0, 0, (5 * (1 - 0.70710678) + 1.0) / 7),
    ("more predictions than truths", [A, [20, 20, 30, 30]], [A], 0, 0, 1.0),
    ("more predictions, false-alarm penalty", [A, [20, 20, 30, 30]], [A], 0, 0.25, 0.75),
    ("fewer predictions than truths", [A], [A, [20, 20, 30, 30]], 0, 0, 0.5),
    ("fewer predictions, miss penalty", [A], [A, [20, 20, 30, 30]], 0.2, 0, 0.4),
    ("order does not matter", [[20, 20, 30, 30], A], [A, [20, 20, 30, 30]], 0, 0, 1.0),
    # Hungarian, not greedy: p2 takes A exactly, p1 (between A and B) goes to B.
    # B: H=10, W=20 -> L1 = 10 / (2*sqrt(500)) = 0.2236068; GIoU = 1/3.
    ("hungarian beats greedy", [[5, 0, 15, 10], A], [A, [10, 0, 20, 10]], 0, 0,
     (1 + (5 * (1 - 0.2236068) + 2 * (4 / 3) / 2) / 7) / 2),
    ("penalty clips at zero", [[20, 0, 30, 10], [40, 0, 50, 10], [60, 0, 70, 10]], [A], 0, 0.5, 0.0),
]


@pytest.mark.parametrize("name,pred,gt,lfn,lfp,want", CASES, ids=[c[0] for c in CASES])
def test_box_score_hand_computed(name, pred, gt, lfn, lfp, want):
    assert box_score(pred, gt, lambda_fn=lfn, lambda_fp=lfp) == pytest.approx(want, abs=1e-6)
    assert any(v == pytest.approx(want, abs=1e-6) for v in slow_scores(pred, gt, lfn, lfp))


def test_no_feasible_pairs_counts_no_match():
    # A NaN prediction cannot be paired: m = 0, so only the penalty counts.
    assert box_score([[math.nan, 0, 1, 1]], [A]) == 0.0
    assert box_score([[math.nan, 0, 1, 1], A], [A]) == 1.0


_coord = st.floats(min_value=0, max_value=200, allow_nan=False, allow_infinity=False)
_size = st.floats(min_value=0.5, max_value=120, allow_nan=False, allow_infinity=False)
_box = st.tuples(_coord, _coord, _size, _size).map(lambda t: [t[0], t[1], t[0] + t[2], t[1] + t[3]])
_int_box = st.tuples(st.integers(0, 20), st.integers(0, 20), st.integers(1, 10), st.integers(1, 10)).map(
    lambda t: [t[0], t[1], t[0] + t[2], t[1] + t[3]])


@settings(max_examples=150, deadline=None)
@given(pred=st.lists(st.one_of(_box, _int_box), max_size=4), gt=st.lists(st.one_of(_box, _int_box), max_size=4),
       lfn=st.sampled_from([0.0, 0.1, 0.5]), lfp=st.sampled_from([0.0, 0.2, 1.0]))
def test_box_score_matches_direct_transcription(pred, gt, lfn, lfp):
    fast = box_score(pred, gt, lambda_fn=lfn, lambda_fp=lfp)
    assert 0.0 <= fast <= 1.0
    assert any(abs(fast - s) < 1e-9 for s in slow_scores(pred, gt, lfn, lfp)), (fast, slow_scores(pred, gt, lfn, lfp))


def test_box_score_speed_against_transcription(capsys):
    boxes = [[i * 7.0, i * 3.0, i * 7.0 + 20, i * 3.0 + 15] for i in range(5)]
    preds = [[b[0] + 2, b[1] - 1, b[2] + 3, b[3] + 1] for b in reversed(boxes)]
    t0 = time.perf_counter()
    for _ in range(20):
        slow = slow_scores(preds, boxes)
    t_slow = (time.perf_counter() - t0) / 20
    t0 = time.perf_counter()
    for _ in range(200):
        fast = box_score(preds, boxes)
    t_fast = (time.perf_counter() - t0) / 200
    assert fast == pytest.approx(slow[0], abs=1e-9)
    with capsys.disabled():
        print(f"\nbox_score 5x5: {t_fast * 1e6:.0f} us, direct transcription {t_slow * 1e6:.0f} us, "
              f"x{t_slow / t_fast:.0f}")
    assert t_fast < t_slow


# --- the TRL reward functions on completions -------------------------------------------------------

STORED = [200, 100]
OBJ = [{"image": 0, "label": "Liver", "bbox": [20.0, 10.0, 60.0, 50.0]}]


def _row(fmt, fed=(400, 200), objs=OBJ):
    return {"objects": [objs], "image_sizes": [[STORED]], "fed_sizes": [[list(fed)]], "box_format": [fmt]}


@pytest.mark.parametrize("fmt,text", [
    ("qwen3", "Liver <box>[[100, 100, 300, 500]]</box>"),
    ("pixel", "Liver <box>[[40, 20, 120, 100]]</box>"),
    ("json", '```json\n[{"bbox_2d": [100, 100, 300, 500], "label": "Liver"}]\n```'),
    # a JSON answer on a pixel-frame row is still read as 0-1000 relative
    ("pixel", '[{"bbox_2d": [100, 100, 300, 500], "label": "Liver"}]'),
    ("qwen3", "<think>left lobe</think>\n<answer>\nLiver <box>[[300, 500, 100, 100]]</box>\n</answer>"),
])
def test_bbox_reward_reads_every_frame(fmt, text):
    comp = [[{"role": "assistant", "content": text}]]
    assert bbox_reward(comp, **_row(fmt)) == [pytest.approx(1.0)]


def test_bbox_reward_edge_rows():
    comps = [[{"role": "assistant", "content": "No box here."}]] * 3
    rows = {"objects": [OBJ, None, []], "image_sizes": [[STORED]] * 3, "fed_sizes": [[[400, 200]]] * 3,
            "box_format": ["qwen3"] * 3}
    assert bbox_reward(comps, **rows) == [0.0, None, 0.5]
    # shifted by half a box in x (stored pixels): the "shifted" hand-computed value, in stored units
    shifted = [[{"role": "assistant", "content": "Liver <box>[[200, 100, 400, 500]]</box>"}]]
    want = box_score([[40, 10, 80, 50]], [[20, 10, 60, 50]])
    assert bbox_reward(shifted, **_row("qwen3")) == [pytest.approx(want)]


def test_label_accuracy_reward():
    comps = [[{"role": "assistant", "content": t}] for t in (
        "liver <box>[[1, 2, 3, 4]]</box>\nLUNG <box>[[1, 2, 3, 4]]</box>",
        "<answer>Liver</answer>",
        "<answer>liver, kidney, lung</answer>",
        "anything",
    )]
    labels = [["Liver", "lung"], ["liver", "Lung."], ["liver", "lung"], None]
    assert label_accuracy_reward(comps, labels=labels) == [1.0, 0.5, pytest.approx(2 / 3), None]


def test_tag_count_reward():
    texts = ["<think>\na\n</think>\n<answer>\nb\n</answer>", "<answer>b</answer>",
             "<think>a</think><think>b</think><answer>c</answer>", "plain"]
    assert tag_count_reward([[{"role": "assistant", "content": t}] for t in texts]) == [1.0, 0.5, 0.5, 0.0]


def test_soft_overlong_punishment_from_trl():
    f = overlong_reward(16, 4)
    assert f.__name__ == "soft_overlong_punishment_reward"
    assert f(completion_ids=[[1] * 10, [1] * 14, [1] * 16]) == [0.0, pytest.approx(-0.5), pytest.approx(-1.0)]
