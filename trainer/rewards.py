"""Stage-4 (GRPO/DAPO) rewards. Each is a plain module-level function (picklable, TRL's contract):
`f(completions, **dataset_columns) -> list[float | None]`; `None` means "not applicable to this row", so
one dataset can mix label tasks and box tasks.

- `box_score`: the bounding-box reward of the design contract (MedMO supplement 1.1), exactly:
  Hungarian matching on C = 5*L1 + 2*(1 - GIoU), per-pair score (5*(1 - clip01(L1)) + 2*(GIoU+1)/2) / 7,
  averaged over the G ground-truth boxes, minus optional miss / false-alarm penalties, clipped to [0, 1].
- `bbox_reward`: `box_score` on a completion, parsed in any of the three text frames (qwen3, pixel, json)
  and mapped back to stored-image pixels, against the row's `objects`; with several images, per image
  (the `Picture n:` marker of `medmo_data.render`) and combined weighted by ground-truth count.
- `label_accuracy_reward`: normalized predicted label set against the row's target labels (Jaccard).
- `tag_count_reward`: the answer-format tags, each present exactly once (open-r1 style, 0.25 each).
- `soft_overlong_punishment`: TRL's DAPO overlong ramp (`overlong_reward(max_len, cache)`).

Dataset columns read (written by `medmo_train.data` for GRPO rows): `objects` (list of {image, label,
bbox} in stored pixels, or None for rows that are not box tasks), `image_sizes` / `fed_sizes`
([[w, h], ...] stored and processor-fed), `box_format`, `labels` (target label list or None).
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from medmo_data.render import from_frame, parse_boxes, parse_image_boxes

W_L1 = 5.0
W_GIOU = 2.0
TAGS = ("<think>", "</think>", "<answer>", "</answer>")
_ANSWER = re.compile(r"<answer>(.*?)(?:</answer>|$)", re.S)


def _as_array(boxes: Sequence[Sequence[float]]) -> np.ndarray:
    """(N, 4) float64 XYXY with each box's corners ordered (x1 <= x2, y1 <= y2); see `box_score`."""
    a = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([np.minimum(a[:, :2], a[:, 2:]), np.maximum(a[:, :2], a[:, 2:])], axis=1)


def _extent(boxes: np.ndarray) -> tuple[float, float]:
    """(H, W) = the largest y2 and x2 of the boxes; (0, 0) when there are none."""
    if len(boxes) == 0:
        return 0.0, 0.0
    return float(boxes[:, 3].max()), float(boxes[:, 2].max())


def pairwise_giou(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """GIoU (Rezatofighi et al. 2019) of every (pred, gt) pair, shape (P, G), values in [-1, 1] for boxes
    with ordered corners (as `_as_array` gives them).

    Degenerate cases: a zero union gives IoU 0; a zero enclosing area gives GIoU = IoU.
    """
    p = pred[:, None, :]
    g = gt[None, :, :]
    area_p = (p[..., 2] - p[..., 0]) * (p[..., 3] - p[..., 1])
    area_g = (g[..., 2] - g[..., 0]) * (g[..., 3] - g[..., 1])
    iw = np.clip(np.minimum(p[..., 2], g[..., 2]) - np.maximum(p[..., 0], g[..., 0]), 0, None)
    ih = np.clip(np.minimum(p[..., 3], g[..., 3]) - np.maximum(p[..., 1], g[..., 1]), 0, None)
    inter = iw * ih
    union = area_p + area_g - inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    cw = np.maximum(p[..., 2], g[..., 2]) - np.minimum(p[..., 0], g[..., 0])
    ch = np.maximum(p[..., 3], g[..., 3]) - np.minimum(p[..., 1], g[..., 1])
    enclose = cw * ch
    extra = np.divide(enclose - union, enclose, out=np.zeros_like(enclose), where=enclose > 0)
    return iou - extra


def _ordered(boxes: Sequence[Sequence[float]]) -> list[tuple[float, float, float, float]] | None:
    """Finite boxes as float tuples with ordered corners; None when any box is not 4 finite numbers."""
    out = []
    for b in boxes:
        if len(b) != 4:
            return None
        x1, y1, x2, y2 = float(b[0]), float(b[1]), float(b[2]), float(b[3])
        if not math.isfinite(x1 + y1 + x2 + y2):  # any NaN or inf (or an overflowing sum: NumPy path)
            return None
        out.append((x1 if x1 <= x2 else x2, y1 if y1 <= y2 else y2, x2 if x1 <= x2 else x1, y2 if y1 <= y2 else y1))
    return out


def _pair_terms(pred: list[tuple[float, ...]], gt: list[tuple[float, ...]],
                diag2: float) -> tuple[list[list[float]], list[list[float]]]:
    """(L1, GIoU) matrices (P x G) in plain Python: the same rules as `pairwise_giou`, no array set-up."""
    areas_g = [(g2 - g0) * (g3 - g1) for g0, g1, g2, g3 in gt]
    l1s, gious = [], []
    for p0, p1, p2, p3 in pred:
        area_p = (p2 - p0) * (p3 - p1)
        row_l1, row_g = [], []
        for (g0, g1, g2, g3), area_g in zip(gt, areas_g):  # noqa: B905 - same length by construction
            row_l1.append((abs(p0 - g0) + abs(p1 - g1) + abs(p2 - g2) + abs(p3 - g3)) / diag2)
            iw = (p2 if p2 < g2 else g2) - (p0 if p0 > g0 else g0)
            ih = (p3 if p3 < g3 else g3) - (p1 if p1 > g1 else g1)
            inter = iw * ih if iw > 0.0 and ih > 0.0 else 0.0
            union = area_p + area_g - inter
            iou = inter / union if union > 0.0 else 0.0
            enclose = ((p2 if p2 > g2 else g2) - (p0 if p0 < g0 else g0)) * \
                ((p3 if p3 > g3 else g3) - (p1 if p1 < g1 else g1))
            row_g.append(iou - (enclose - union) / enclose if enclose > 0.0 else iou)
        l1s.append(row_l1)
        gious.append(row_g)
    return l1s, gious


def _pair_score(l1: float, giou: float) -> float:
    return (W_L1 * (1.0 - (0.0 if l1 < 0.0 else 1.0 if l1 > 1.0 else l1)) + W_GIOU * (giou + 1.0) / 2.0) \
        / (W_L1 + W_GIOU)


@functools.cache
def _assignments(n_p: int, n_g: int) -> tuple[tuple[tuple[int, int], ...], ...]:
    """Every matching of min(n_p, n_g) (pred, gt) pairs, as pair tuples (built once per shape)."""
    if n_p <= n_g:
        return tuple(tuple(enumerate(perm)) for perm in itertools.permutations(range(n_g), n_p))
    return tuple(tuple((i, j) for j, i in enumerate(perm)) for perm in itertools.permutations(range(n_p), n_g))


def _min_cost_pairs(cost: list[list[float]]) -> list[tuple[int, int]] | tuple[tuple[int, int], ...]:
    """Minimum-cost matching of min(P, G) pairs: a scan for one row or column, all assignments for up to
    3 x 3 (first minimum wins, as in a scan), SciPy's Hungarian solver (on the list) above."""
    n_p, n_g = len(cost), len(cost[0])
    if n_p == 1:
        row = cost[0]
        return [(0, min(range(n_g), key=row.__getitem__))]
    if n_g == 1:
        return [(min(range(n_p), key=lambda i: cost[i][0]), 0)]
    if n_p * n_g <= SMALL:
        best, best_c = (), math.inf
        for pairs in _assignments(n_p, n_g):
            c = 0.0
            for i, j in pairs:
                c += cost[i][j]
            if c < best_c:
                best, best_c = pairs, c
        return best
    rows, cols = linear_sum_assignment(cost)
    return list(zip(rows.tolist(), cols.tolist(), strict=True))


SMALL = 9  # up to 3 x 3 boxes: at most 6 assignments to try
PLAIN_MAX = 144  # up to 12 x 12 pairs the plain-Python terms beat NumPy's per-call set-up (bench/reward.py)


def box_score(pred_boxes: Sequence[Sequence[float]], gt_boxes: Sequence[Sequence[float]],
              lambda_fn: float = 0.0, lambda_fp: float = 0.0) -> float:
    """The contract's box reward for XYXY boxes in one frame (any unit; L1 is scale-normalized).

    G = 0 -> 0.5. P = 0 -> clip01(-penalty) = 0. Otherwise Hungarian matching of m = min(P, G) pairs;
    base = sum(s_k) / G; penalty = (lambda_fn*(G-m) + lambda_fp*(P-m)) / max(1, G); clip01(base - penalty).
    Pairs whose cost is not finite (a non-finite coordinate) are not feasible and leave m smaller.

    Degenerate boxes: an inverted box (x2 < x1 or y2 < y1) has its corners ordered first, for predictions
    and ground truth alike (the parser does the same: a model that found the region but wrote the corners
    swapped gets the box it meant), so no area is negative. A zero-area box (a line or a point) keeps its
    zero area: its IoU with anything is 0 and its GIoU is -(enclosing - union) / enclosing, or 0 when the
    enclosing box has no area either. So GIoU stays in [-1, 1], every s_k in [0, 1] and R in [0, 1].

    Finite sets up to PLAIN_MAX pairs take a plain-Python path (the usual GRPO case: 1-3 boxes); larger or
    non-finite ones NumPy + SciPy. Both give the same value (tests/test_rewards.py).
    """
    n_g, n_p = len(gt_boxes), len(pred_boxes)
    if n_g == 0:
        return 0.5
    if 0 < n_p * n_g <= PLAIN_MAX:
        gt_l, pred_l = _ordered(gt_boxes), _ordered(pred_boxes)
        if gt_l is not None and pred_l is not None:
            h, w = max(b[3] for b in gt_l), max(b[2] for b in gt_l)
            if not (h > 0 and w > 0):
                h, w = max(b[3] for b in pred_l), max(b[2] for b in pred_l)
            if not (h > 0 and w > 0):
                h, w = 1.0, 1.0
            l1, giou = _pair_terms(pred_l, gt_l, 2.0 * math.sqrt(h * h + w * w))
            cost = [[W_L1 * a + W_GIOU * (1.0 - b) for a, b in zip(ra, rb)]  # noqa: B905
                    for ra, rb in zip(l1, giou)]  # noqa: B905
            pairs = _min_cost_pairs(cost)
            total = sum(_pair_score(l1[i][j], giou[i][j]) for i, j in pairs)
            penalty = (lambda_fn * (n_g - len(pairs)) + lambda_fp * (n_p - len(pairs))) / n_g
            r = total / n_g - penalty
            return 0.0 if r < 0.0 else 1.0 if r > 1.0 else r
    gt = _as_array(gt_boxes)
    pred = _as_array(pred_boxes)
    h, w = _extent(gt)
    if not (h > 0 and w > 0 and math.isfinite(h) and math.isfinite(w)):
        h, w = _extent(pred)
    if not (h > 0 and w > 0 and math.isfinite(h) and math.isfinite(w)):
        h, w = 1.0, 1.0
    m, total = 0, 0.0
    if n_p:
        l1 = np.abs(pred[:, None, :] - gt[None, :, :]).sum(-1) / (2.0 * math.hypot(h, w))
        giou = pairwise_giou(pred, gt)
        cost = W_L1 * l1 + W_GIOU * (1.0 - giou)
        feasible = np.isfinite(cost)
        if feasible.any():
            big = (np.nanmax(np.where(feasible, cost, np.nan)) + 1.0) * (n_p + n_g)
            rows, cols = linear_sum_assignment(np.where(feasible, cost, big))
            ok = feasible[rows, cols]
            rows, cols = rows[ok], cols[ok]
            s = (W_L1 * (1.0 - np.clip(l1[rows, cols], 0.0, 1.0)) + W_GIOU * (giou[rows, cols] + 1.0) / 2.0) \
                / (W_L1 + W_GIOU)
            m, total = len(rows), float(s.sum())
    penalty = (lambda_fn * (n_g - m) + lambda_fp * (n_p - m)) / max(1, n_g)
    return float(min(max(total / n_g - penalty, 0.0), 1.0))


def completion_text(completion: Any) -> str:
    """Text of a TRL completion: conversational [{"role": "assistant", "content": ...}] or a string."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion:
        content = completion[-1].get("content", "")
        if isinstance(content, list):
            return "".join(p.get("text", "") for p in content if isinstance(p, dict))
        return str(content)
    return ""


def answer_text(text: str) -> str:
    """The part inside <answer>...</answer> when the completion uses the tags, else the whole text."""
    m = _ANSWER.search(text)
    return m.group(1) if m else text


def predicted_boxes(text: str, sizes: Sequence[Sequence[float]], fed_sizes: Sequence[Sequence[float]] | None,
                    box_format: str) -> list[tuple[int, str | None, list[float]]]:
    """(image, label, box in that image's stored pixels) for every box of a completion.

    The image is the one a `Picture n:` marker names (medmo_data.render), image 0 for boxes before any
    marker; boxes naming an image the sample does not have are dropped. The layout decides the frame
    where it is unambiguous: JSON `bbox_2d` is always 0-1000 relative; `<box>` lines and bare lists are
    read in the row's `box_format` (qwen3 relative, or pixel of the fed image).
    """
    body = answer_text(text)
    is_json = "bbox_2d" in body or '"bbox"' in body
    frame = "json" if is_json else box_format
    if frame == "json" and not is_json:
        frame = "qwen3"
    out = []
    for image, lab, b in parse_image_boxes(body):
        i = image or 0
        if i >= len(sizes):
            continue
        wh = (float(sizes[i][0]), float(sizes[i][1]))
        fed = (float(fed_sizes[i][0]), float(fed_sizes[i][1])) if fed_sizes else None
        out.append((i, lab, from_frame(b, wh, fed, frame)))
    return out


def image_box_score(pred: Sequence[tuple[int, Sequence[float]]], gt: Sequence[tuple[int, Sequence[float]]]) -> float:
    """`box_score` per image, combined over the images that carry ground truth.

    Each image's predicted boxes are scored against that image's ground truth (its own pixels and extent);
    the row's reward is the mean over ground-truth images weighted by their box counts,
    sum_i G_i * R_i / sum_i G_i (so with one image it is exactly `box_score`). A box on an image without
    ground truth is a false alarm, free at the contract's lambda_FP = 0; no ground truth at all -> 0.5.
    """
    gt_by: dict[int, list[Sequence[float]]] = {}
    for i, b in gt:
        gt_by.setdefault(i, []).append(b)
    if len(gt_by) <= 1:  # one image with truths (or none): the contract's formula as is
        only = next(iter(gt_by), 0)
        return box_score([b for i, b in pred if i == only], gt_by.get(only, []))
    total = sum(len(g) * box_score([b for j, b in pred if j == i], g) for i, g in gt_by.items())
    return total / sum(len(g) for g in gt_by.values())


def bbox_reward(completions: list[Any], objects: list[Any] | None = None, image_sizes: list[Any] | None = None,
                fed_sizes: list[Any] | None = None, box_format: list[str] | None = None,
                **kwargs: Any) -> list[float | None]:
    """`image_box_score` of each completion against its row's objects; None on rows without `objects`.

    A grounding row with an empty object list is scored (G = 0 -> 0.5), not skipped. With several images,
    each box is read in the frame of the image its `Picture n:` marker names and scored against that
    image's ground truth; a row with one image scores exactly as `box_score` on its boxes.
    """
    n = len(completions)
    objects = objects if objects is not None else [None] * n
    image_sizes = image_sizes if image_sizes is not None else [None] * n
    fed_sizes = fed_sizes if fed_sizes is not None else [None] * n
    box_format = box_format if box_format is not None else ["qwen3"] * n
    out: list[float | None] = []
    for comp, objs, sizes, feds, fmt in zip(completions, objects, image_sizes, fed_sizes, box_format, strict=True):
        if objs is None or not sizes:
            out.append(None)
            continue
        gt = [(int(o.get("image", 0)), o["bbox"]) for o in objs]
        pred = predicted_boxes(completion_text(comp), sizes, feds or None, fmt or "qwen3")
        out.append(image_box_score([(i, b) for i, _, b in pred], gt))
    return out


def normalize_label(label: str) -> str:
    """Lower case, punctuation to spaces, single spaces: 'Pleural-Effusion.' -> 'pleural effusion'."""
    return " ".join(re.sub(r"[^\w\s]", " ", label.lower()).replace("_", " ").split())


def predicted_labels(text: str) -> set[str]:
    """Labels named in a completion: the labels of its boxes, else the answer split on commas/lines."""
    body = answer_text(text)
    labelled = {normalize_label(lab) for lab, _ in parse_boxes(body) if lab}
    if labelled:
        return labelled - {""}
    parts = re.split(r"[,;\n]| and ", body)
    return {normalize_label(p) for p in parts} - {""}


def label_accuracy_reward(completions: list[Any], labels: list[Any] | None = None,
                          **kwargs: Any) -> list[float | None]:
    """|pred ∩ target| / |pred ∪ target| over normalized label sets; None where the row has no labels.

    1.0 only for exactly the target set; an empty target set scores 1.0 for an empty prediction.
    """
    labels = list(labels) if labels is not None else [None] * len(completions)
    out: list[float | None] = []
    for comp, target in zip(completions, labels, strict=True):
        if target is None:
            out.append(None)
            continue
        want = {normalize_label(str(t)) for t in target} - {""}
        got = predicted_labels(completion_text(comp))
        union = want | got
        out.append(1.0 if not union else len(want & got) / len(union))
    return out


def tag_count_reward(completions: list[Any], **kwargs: Any) -> list[float]:
    """0.25 for each of <think>, </think>, <answer>, </answer> that occurs exactly once."""
    out = []
    for comp in completions:
        text = completion_text(comp)
        out.append(sum(0.25 for t in TAGS if text.count(t) == 1))
    return out


def overlong_reward(max_completion_len: int, soft_punish_cache: int):
    """TRL's soft overlong punishment (DAPO eq. 13), named `soft_overlong_punishment_reward`."""
    from trl.rewards import get_soft_overlong_punishment

    return get_soft_overlong_punishment(max_completion_len=max_completion_len,
                                        soft_punish_cache=soft_punish_cache)


def reward_functions(max_completion_len: int, soft_punish_cache: int) -> list[Any]:
    """The four stage-4 rewards in the order they are logged."""
    return [bbox_reward, label_accuracy_reward, tag_count_reward,
            overlong_reward(max_completion_len, soft_punish_cache)]
