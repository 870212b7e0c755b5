"""Judging: one prediction -> its per-item score, and a benchmark's lines -> its metrics (fractions).

Per kind: closed/open VQA (MedEvalKit judges), mcq (MedEvalKit `judge_multi_choice`), MMMU (its official
parser), report (ROUGE-L per item; CIDEr-D and BLEU-4 over the benchmark's whole corpus), grounding
(boxes parsed from any of the three frames, mapped to stored pixels, IoU per ground-truth box).
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from typing import Any

from medmo_train import metrics

from medmo_data.render import from_frame, parse_boxes

from .benchmarks import Item
from .mmmu import open_correct, parse_multi_choice


def predicted_boxes(text: str, item: Item, fed_size: tuple[int, int] | None) -> list[list[float]]:
    """Boxes of a completion in stored pixels of the item's image (the prompt's frame decides the units).

    In the 0-1000 frames a box whose four values are all <= 1 with a fraction (`[0.12, 0.3, 0.5, 0.61]`) is
    read as normalised to [0, 1], as MedSG-Bench's `extract_bbox` does."""
    assert item.image_size is not None
    out = []
    for _, b in parse_boxes(text):
        if item.box_format != "pixel" and all(v <= 1 for v in b) and any(v != int(v) for v in b):
            b = [v * 1000 for v in b]
        out.append(from_frame(b, item.image_size, fed_size, item.box_format))
    return out


def score_item(item: Item, prediction: str, fed_size: tuple[int, int] | None = None) -> dict[str, Any]:
    """The per-item judgement written to predictions/NAME.jsonl."""
    k = item.kind
    if k == "closed":
        return {"correct": metrics.closed_correct(prediction, item.reference, item.extra.get("yes_no_judge", True))}
    if k == "open":
        return {"correct": metrics.open_exact(prediction, item.reference),
                "recall": metrics.token_recall(prediction, item.reference)}
    if k == "mcq":
        return {"correct": metrics.mcq_correct(prediction, item.reference, item.choices),
                "choice": metrics.extract_choice(prediction, [chr(65 + i) for i in range(len(item.choices or []))])}
    if k == "mmmu_mcq":
        letters = [chr(65 + i) for i in range(len(item.choices or []))]
        pick = parse_multi_choice(prediction, letters, item.choices or [], seed=item.id)
        return {"correct": pick == item.reference, "choice": pick}
    if k == "mmmu_open":
        ref: str | list[str] = item.reference
        if ref.startswith("["):
            ref = [str(x) for x in ast.literal_eval(ref)]
        return {"correct": open_correct(prediction, ref)}
    if k == "report":
        return {"rouge_l": metrics.rouge_l_item(prediction, item.reference)}
    if k == "grounding":
        pred = predicted_boxes(prediction, item, fed_size)
        ious = metrics.match_boxes(pred, item.boxes or [])
        return {"ious": [round(x, 6) for x in ious], "predicted": len(pred),
                "pred_boxes": [[round(v, 2) for v in b] for b in pred]}
    raise ValueError(f"unknown item kind {k!r}")


def _mean(xs: Sequence[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def aggregate(group: str, lines: list[dict[str, Any]], report_scores: dict[str, Any] | None = None) -> dict[str, Any]:
    """Metrics (fractions in [0, 1]; CIDEr-D on its 0-10 scale) of one benchmark from its prediction lines."""
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for ln in lines:
        by_kind.setdefault(ln["kind"], []).append(ln)
    out: dict[str, Any] = {}
    if group in ("vqa", "text"):
        closed, opened = by_kind.get("closed", []), by_kind.get("open", [])
        choice = by_kind.get("mcq", []) + by_kind.get("mmmu_mcq", []) + by_kind.get("mmmu_open", [])
        right = [ln["score"]["correct"] for ln in closed + opened + choice]
        out["accuracy"] = _mean(right)
        if closed or opened:
            out["closed_accuracy"] = _mean([ln["score"]["correct"] for ln in closed])
            out["open_accuracy"] = _mean([ln["score"]["correct"] for ln in opened])
            out["open_recall"] = _mean([ln["score"]["recall"] for ln in opened])
            out.update(n_closed=len(closed), n_open=len(opened))
    elif group == "report":
        preds = [ln["prediction"] for ln in lines]
        refs = [[ln["reference"]] for ln in lines]
        out["rouge_l"] = metrics.rouge_l(preds, refs) if lines else None
        out["cider_d"] = metrics.cider_d(preds, refs) if lines else None
        out["bleu4"] = metrics.bleu4(preds, refs) if lines else None
        out.update(report_scores or {"ratescore": "not run", "embedding_score": "not run"})
    elif group == "grounding":
        ious = [x for ln in lines for x in ln["score"]["ious"]]
        predicted = sum(ln["score"]["predicted"] for ln in lines)
        hits = sum(x >= 0.5 for x in ious)
        out["acc_iou50"] = hits / len(ious) if ious else None
        out["mean_iou"] = _mean(ious)
        out["precision_iou50"] = hits / predicted if predicted else 0.0
        out["gt_boxes"] = len(ious)
    return out
