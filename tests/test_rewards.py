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


# --- degenerate predicted boxes: corners ordered, zero-area boxes keep zero area ------------------------


@pytest.mark.parametrize("inverted,ordered", [
    ([10, 0, 0, 10], A),  # x2 < x1: old code gave GIoU -1 for the very box A
    ([0, 10, 10, 0], A),  # y2 < y1
    ([10, 10, 0, 0], A),  # both: old code gave GIoU +1 with L1 > 1
    ([100, 0, 20, 10], [20, 0, 100, 10]),  # old code: union < 0, GIoU -4.5, s_k < 0
])
def test_inverted_box_scores_as_its_ordered_box(inverted, ordered):
    from medmo_train.rewards import _as_array, pairwise_giou

    assert box_score([inverted], [A]) == pytest.approx(box_score([ordered], [A]), abs=1e-12)
    assert box_score([inverted], [A]) == pytest.approx(slow_scores([ordered], [A])[0], abs=1e-12)
    giou = pairwise_giou(_as_array([inverted]), _as_array([A]))
    assert -1.0 <= giou.min() and giou.max() <= 1.0
    # one bad box no longer drags down a perfect one: 2 truths, the second predicted inverted and exact
    b = [20, 20, 30, 30]
    assert box_score([A, [30, 30, 20, 20]], [A, b]) == 1.0
    # the NumPy path (over PLAIN_MAX pairs) orders corners the same way
    many = [[i * 20.0, 0, i * 20.0 + 10, 10] for i in range(13)]
    flipped = [[b[2], b[3], b[0], b[1]] for b in many]
    assert box_score(flipped, many) == pytest.approx(1.0) and box_score([inverted] * 13, [A] * 13) == \
        pytest.approx(box_score([ordered] * 13, [A] * 13), abs=1e-12)


@pytest.mark.parametrize("name,pred,gt,want", [
    # identical points: L1 0; union and enclosing area 0 -> IoU 0, GIoU 0 -> s = (5 + 1) / 7
    ("point on point", [[5, 5, 5, 5]], [[5, 5, 5, 5]], 6 / 7),
    # a horizontal line inside A: IoU 0, enclosing = A (100), union 100 -> GIoU 0; L1 = 10 / 28.28
    ("line inside box", [[0, 5, 10, 5]], [A], (5 * (1 - 10 / (2 * math.sqrt(200))) + 1.0) / 7),
    # a point far away: GIoU -> -(enclosing - union)/enclosing; L1 clipped to 1
    ("far point", [[100, 100, 100, 100]], [A], (2 * (1 + (-(10000 - 100) / 10000)) / 2) / 7),
])
def test_zero_area_boxes_stay_in_range(name, pred, gt, want):
    assert box_score(pred, gt) == pytest.approx(want, abs=1e-9)
    assert any(v == pytest.approx(want, abs=1e-9) for v in slow_scores(pred, gt))


_any_coord = st.floats(min_value=-50, max_value=250, allow_nan=False, allow_infinity=False)
_any_box = st.lists(st.one_of(_any_coord, st.integers(0, 12).map(float)), min_size=4, max_size=4)


@settings(max_examples=150, deadline=None)
@given(pred=st.lists(_any_box, max_size=5), gt=st.lists(_box, min_size=1, max_size=4))
def test_any_corners_give_values_in_range(pred, gt):
    from medmo_train.rewards import _as_array, pairwise_giou

    if pred:
        giou = pairwise_giou(_as_array(pred), _as_array(gt))
        assert (giou >= -1 - 1e-12).all() and (giou <= 1 + 1e-12).all()
    ordered = [[min(b[0], b[2]), min(b[1], b[3]), max(b[0], b[2]), max(b[1], b[3])] for b in pred]
    score = box_score(pred, gt)
    assert 0.0 <= score <= 1.0 and score == pytest.approx(box_score(ordered, gt), abs=1e-12)
    if pred and len(pred) * len(gt) <= 16:
        assert any(abs(score - s) < 1e-9 for s in slow_scores(ordered, gt))


def test_plain_and_numpy_paths_agree():
    from medmo_train import rewards

    rng = __import__("random").Random(3)
    for n_p, n_g in ((1, 1), (2, 3), (3, 3), (4, 2), (6, 5), (12, 12)):
        pred = [[rng.uniform(0, 300), rng.uniform(0, 300), rng.uniform(0, 300), rng.uniform(0, 300)]
                for _ in range(n_p)]
        gt = [[x, y, x + rng.uniform(1, 80), y + rng.uniform(1, 80)]
              for x, y in ((rng.uniform(0, 300), rng.uniform(0, 300)) for _ in range(n_g))]
        plain = box_score(pred, gt, 0.1, 0.2)
        old, rewards.PLAIN_MAX = rewards.PLAIN_MAX, 0
        try:
            vec = box_score(pred, gt, 0.1, 0.2)
        finally:
            rewards.PLAIN_MAX = old
        assert plain == pytest.approx(vec, abs=1e-12), (n_p, n_g)


# --- several images: each box is scored on the image its `Picture n:` marker names (real MedSG rows) ----


@pytest.fixture(scope="module")
def medsg(tmp_path_factory):
    """The MedSG fixture (real MedSG-188K Task8 records) built by the project: {id: sample}."""
    from tests.helpers import build_fixture, by_id, read_samples

    tmp = tmp_path_factory.mktemp("medsg")
    build_fixture("medsg", tmp)
    return by_id(read_samples(tmp / "out" / "medsg"))


REF = "referring/AbdomenCT1K/CT_RightKidney/npy_imgs/casenum_00798_sliceid_13_CT_RightKidney"


def _medsg_row(sample, fmt):
    from medmo_train.data import Resolution, grpo_row

    row = grpo_row(sample["__key__"], "medsg", sample, fmt, Resolution(32 * 32, 256 * 256))
    return row, {k: [row[k]] for k in ("objects", "image_sizes", "fed_sizes", "box_format")}


def _answer(sample, fmt):
    from medmo_data.render import render_messages

    feds = [list(f) for f in _medsg_row(sample, fmt)[0]["fed_sizes"]]
    return render_messages(sample["json"], fmt, feds)[-1]["content"][-1]["text"]


@pytest.mark.parametrize("fmt", ["qwen3", "pixel", "json"])
def test_medsg_exact_answer_on_image_three_scores_high(medsg, fmt):
    s = medsg[f"{REF}#0"]  # RightVentricle, on the third of three 336x336 images
    assert s["json"]["objects"] == [{"image": 2, "label": "RightVentricle", "bbox": [92.0, 150.0, 164.0, 224.0]}]
    _, cols = _medsg_row(s, fmt)
    answer = _answer(s, fmt)
    assert ("Picture 3: RightVentricle <box>" in answer) if fmt != "json" else ('"picture": 3' in answer)
    [score] = bbox_reward([[{"role": "assistant", "content": f"<answer>{answer}</answer>"}]], **cols)
    assert score >= 0.95


def test_medsg_wrong_image_unmarked_or_far_box_scores_low(medsg):
    s = medsg[f"{REF}#1"]  # PharynxCancer on the second image
    assert [o["image"] for o in s["json"]["objects"]] == [1]
    _, cols = _medsg_row(s, "pixel")
    exact = _answer(s, "pixel")
    assert exact.endswith("Picture 2: PharynxCancer <box>[[104, 171, 116, 194]]</box>")  # 336 -> 256 fed
    box = "PharynxCancer <box>[[104, 171, 116, 194]]</box>"
    texts = {
        "exact": exact,
        "wrong image": f"Picture 1: {box}",
        "no marker (reads as image 1)": box,
        "far off": "Picture 2: PharynxCancer <box>[[10, 10, 40, 30]]</box>",
        "marker on its own line": f"Picture 2:\n{box}",
        "both images, one right": f"Picture 1: {box}\nPicture 2: {box}",
        "no such image": f"Picture 7: {box}",
    }
    got = dict(zip(texts, bbox_reward([[{"role": "assistant", "content": t}] for t in texts.values()],
                                      **{k: v * len(texts) for k, v in cols.items()}), strict=True))
    assert got["exact"] >= 0.95 and got["marker on its own line"] == got["exact"]
    assert got["both images, one right"] == got["exact"]  # the extra box is a free false alarm (lambda_FP 0)
    assert got["wrong image"] == got["no marker (reads as image 1)"] == got["no such image"] == 0.0
    assert got["far off"] < 0.5


def test_multi_image_combination_weighted_by_truth_count():
    # image 1 holds two truths, image 2 one: R = (2 * R_1 + 1 * R_2) / 3, each in its own image's pixels
    objs = [{"image": 0, "label": "a", "bbox": [0.0, 0.0, 10.0, 10.0]},
            {"image": 0, "label": "a", "bbox": [20.0, 20.0, 30.0, 30.0]},
            {"image": 1, "label": "b", "bbox": [0.0, 0.0, 50.0, 50.0]}]
    cols = {"objects": [objs], "image_sizes": [[[100, 100], [200, 100]]], "fed_sizes": [[[100, 100], [200, 100]]],
            "box_format": ["pixel"]}
    text = "Picture 1: a <box>[[0, 0, 10, 10]]</box>\nPicture 2: b <box>[[0, 0, 100, 50]]</box>"
    r2 = box_score([[0, 0, 100, 50]], [[0, 0, 50, 50]])
    [got] = bbox_reward([[{"role": "assistant", "content": text}]], **cols)
    assert got == pytest.approx((2 * box_score([[0, 0, 10, 10]], [[0, 0, 10, 10], [20, 20, 30, 30]]) + r2) / 3)
    assert got == pytest.approx((2 * 0.5 + r2) / 3)
