"""Stage-4 (GRPO/DAPO) rewards. Each is a plain module-level function (picklable, TRL's contract):
`f(completions, **dataset_columns) -> list[float | None]`; `None` means "not applicable to this row", so
one dataset can mix label tasks and box tasks.

- `box_score`: the bounding-box reward of the design contract (MedMO supplement 1.1), exactly:
  Hungarian matching on C = 5*L1 + 2*(1 - GIoU), per-pair score (5*(1 - clip01(L1)) + 2*(GIoU+1)/2) / 7,
  averaged over the G ground-truth boxes, minus optional miss / false-alarm penalties, clipped to [0, 1].
- `bbox_reward`: `box_score` on a completion, parsed in any of the three text frames (qwen3, pixel, json)
  and mapped back to stored-image pixels, against the row's `objects`.
- `label_accuracy_reward`: normalized predicted label set against the row's target labels (Jaccard).
- `tag_count_reward`: the answer-format tags, each present exactly once (open-r1 style, 0.25 each).
- `soft_overlong_punishment`: TRL's DAPO overlong ramp (`overlong_reward(max_len, cache)`).

Dataset columns read (written by `medmo_train.data` for GRPO rows): `objects` (list of {image, label,
bbox} in stored pixels, or None for rows that are not box tasks), `image_sizes` / `fed_sizes`
([[w, h], ...] stored and processor-fed), `box_format`, `labels` (target label list or None).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from medmo_data.render import from_frame, parse_boxes

W_L1 = 5.0
W_GIOU = 2.0
TAGS = ("<think>", "</think>", "<answer>", "</answer>")
_ANSWER = re.compile(r"<answer>(.*?)(?:</answer>|$)", re.S)


def _as_array(boxes: Sequence[Sequence[float]]) -> np.ndarray:
    return np.asarray(boxes, dtype=np.float64).reshape(-1, 4)


def _extent(boxes: np.ndarray) -> tuple[float, float]:
    """(H, W) = the largest y2 and x2 of the boxes; (0, 0) when there are none."""
    if len(boxes) == 0:
        return 0.0, 0.0
    return float(boxes[:, 3].max()), float(boxes[:, 2].max())


def pairwise_giou(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """GIoU (Rezatofighi et al. 2019) of every (pred, gt) pair, shape (P, G), values in [-1, 1].

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


def _giou_one(p: Sequence[float], g: Sequence[float]) -> float:
    """GIoU of one pair; same degenerate-case rules as `pairwise_giou`."""
    area_p = (p[2] - p[0]) * (p[3] - p[1])
    area_g = (g[2] - g[0]) * (g[3] - g[1])
    inter = max(0.0, min(p[2], g[2]) - max(p[0], g[0])) * max(0.0, min(p[3], g[3]) - max(p[1], g[1]))
    union = area_p + area_g - inter
    iou = inter / union if union > 0 else 0.0
    enclose = (max(p[2], g[2]) - min(p[0], g[0])) * (max(p[3], g[3]) - min(p[1], g[1]))
    return iou - ((enclose - union) / enclose if enclose > 0 else 0.0)


def _small_match(pred: list[list[float]], gt: list[list[float]], diag2: float) -> tuple[int, float]:
    """(m, sum of pair scores) for tiny finite sets (P * G <= SMALL): exhaustive minimum-cost matching in
    plain Python, which for these sizes is the Hungarian optimum without NumPy/SciPy call overhead."""
    l1 = [[sum(abs(a - b) for a, b in zip(p, g, strict=True)) / diag2 for g in gt] for p in pred]
    gi = [[_giou_one(p, g) for g in gt] for p in pred]
    cost = [[W_L1 * l1[i][j] + W_GIOU * (1.0 - gi[i][j]) for j in range(len(gt))] for i in range(len(pred))]
    small, large = (range(len(pred)), range(len(gt))) if len(pred) <= len(gt) else (range(len(gt)), range(len(pred)))
    best, best_pairs = math.inf, ()
    for perm in itertools.permutations(large, len(small)):
        pairs = tuple(zip(small, perm, strict=True)) if len(pred) <= len(gt) else \
            tuple(zip(perm, small, strict=True))
        c = sum(cost[i][j] for i, j in pairs)
        if c < best:
            best, best_pairs = c, pairs
    total = sum((W_L1 * (1.0 - min(max(l1[i][j], 0.0), 1.0)) + W_GIOU * (gi[i][j] + 1.0) / 2.0)
                / (W_L1 + W_GIOU) for i, j in best_pairs)
    return len(best_pairs), total


SMALL = 9  # up to 3 x 3 boxes: at most 6 assignments to try


def box_score(pred_boxes: Sequence[Sequence[float]], gt_boxes: Sequence[Sequence[float]],
              lambda_fn: float = 0.0, lambda_fp: float = 0.0) -> float:
    """The contract's box reward for XYXY boxes in one frame (any unit; L1 is scale-normalized).

    G = 0 -> 0.5. P = 0 -> clip01(-penalty) = 0. Otherwise Hungarian matching of m = min(P, G) pairs;
    base = sum(s_k) / G; penalty = (lambda_fn*(G-m) + lambda_fp*(P-m)) / max(1, G); clip01(base - penalty).
    Pairs whose cost is not finite (a non-finite coordinate) are not feasible and leave m smaller.
    Tiny finite sets take an exact plain-Python path (the usual GRPO case: 1-3 boxes); the rest NumPy + SciPy.
    """
    n_g, n_p = len(gt_boxes), len(pred_boxes)
    if n_g == 0:
        return 0.5
    if 0 < n_p * n_g <= SMALL:
        gt_l = [[float(v) for v in b] for b in gt_boxes]
        pred_l = [[float(v) for v in b] for b in pred_boxes]
        if all(len(b) == 4 and all(math.isfinite(v) for v in b) for b in gt_l + pred_l):
            h, w = max(b[3] for b in gt_l), max(b[2] for b in gt_l)
            if not (h > 0 and w > 0):
                h, w = max(b[3] for b in pred_l), max(b[2] for b in pred_l)
            if not (h > 0 and w > 0):
                h, w = 1.0, 1.0
            m, total = _small_match(pred_l, gt_l, 2.0 * math.hypot(h, w))
            penalty = (lambda_fn * (n_g - m) + lambda_fp * (n_p - m)) / max(1, n_g)
            return float(min(max(total / n_g - penalty, 0.0), 1.0))
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


def predicted_boxes(text: str, size: Sequence[float], fed_size: Sequence[float] | None,
                    box_format: str) -> list[tuple[str | None, list[float]]]:
    """(label, box in stored-image pixels) for every box of a completion.

    The layout decides the frame where it is unambiguous: JSON `bbox_2d` is always 0-1000 relative;
    `<box>` lines and bare lists are read in the row's `box_format` (qwen3 relative, or pixel).
    """
    body = answer_text(text)
    is_json = "bbox_2d" in body or '"bbox"' in body
    frame = "json" if is_json else box_format
    if frame == "json" and not is_json:
        frame = "qwen3"
    wh = (float(size[0]), float(size[1]))
    fed = (float(fed_size[0]), float(fed_size[1])) if fed_size else None
    return [(lab, from_frame(b, wh, fed, frame)) for lab, b in parse_boxes(body)]


def bbox_reward(completions: list[Any], objects: list[Any] | None = None, image_sizes: list[Any] | None = None,
                fed_sizes: list[Any] | None = None, box_format: list[str] | None = None,
                **kwargs: Any) -> list[float | None]:
    """`box_score` of each completion against its row's objects; None on rows without `objects`.

    A grounding row with an empty object list is scored (G = 0 -> 0.5), not skipped. Predicted boxes are
    compared with the ground truth of image 0 in stored pixels.
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
        gt = [o["bbox"] for o in objs if int(o.get("image", 0)) == 0]
        pred = predicted_boxes(completion_text(comp), sizes[0], feds[0] if feds else None, fmt or "qwen3")
        out.append(box_score([b for _, b in pred], gt))
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
