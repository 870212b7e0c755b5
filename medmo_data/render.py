"""Turn stored `objects` into answer text for a model's box frame, and parse any frame back.

Frames (`box_format`):
- `qwen3` (default): integers 0-1000 relative to the image, one line per label:
  `label <box>[[x1,y1,x2,y2],[...]]</box>` (the form MedMO's README shows);
- `pixel`: the same layout in absolute integer pixels of the image the model is fed (MedMO stage 4);
- `json`: `[{"bbox_2d": [x1,y1,x2,y2], "label": "..."}]` with Qwen3-VL's native 0-1000 relative integers.

Prompts carry the placeholder `{box_format_hint}`; `render_messages` replaces it with the sentence that
tells the model which frame to answer in, and replaces each `{"type": "objects"}` part with the boxes.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any

BOX_FORMATS = ("qwen3", "pixel", "json")
HINT = "{box_format_hint}"

FORMAT_HINTS = {
    "qwen3": (
        "Answer with one line per finding: `label <box>[[x1, y1, x2, y2]]</box>`, coordinates as integers "
        "from 0 to 1000 relative to the image width and height."
    ),
    "pixel": (
        "Answer with one line per finding: `label <box>[[x1, y1, x2, y2]]</box>`, coordinates in absolute "
        "pixels of the image."
    ),
    "json": (
        'Answer in JSON: [{"bbox_2d": [x1, y1, x2, y2], "label": "..."}], coordinates as integers from 0 to '
        "1000 relative to the image width and height."
    ),
}
NO_OBJECTS = "None found."


def _check_format(box_format: str) -> None:
    if box_format not in BOX_FORMATS:
        raise ValueError(f"box_format must be one of {BOX_FORMATS}, got {box_format!r}")


def to_frame(bbox: Sequence[float], size: tuple[int, int], fed_size: tuple[int, int] | None,
             box_format: str) -> list[int]:
    """Map a stored-pixel box to integer coordinates of `box_format`.

    size = stored (width, height); fed_size = (width, height) the model sees (pixel frame only).
    """
    w, h = size
    x1, y1, x2, y2 = bbox
    if box_format == "pixel":
        fw, fh = fed_size or size
        sx, sy = fw / w, fh / h
        vals = [x1 * sx, y1 * sy, x2 * sx, y2 * sy]
        lim = [fw, fh, fw, fh]
    else:
        vals = [x1 / w * 1000, y1 / h * 1000, x2 / w * 1000, y2 / h * 1000]
        lim = [1000] * 4
    return [min(max(int(round(v)), 0), m) for v, m in zip(vals, lim, strict=True)]


def from_frame(coords: Sequence[float], size: tuple[int, int], fed_size: tuple[int, int] | None,
               box_format: str) -> list[float]:
    """Inverse of `to_frame`: frame coordinates back to stored pixels (floats)."""
    w, h = size
    x1, y1, x2, y2 = (float(c) for c in coords)
    if box_format == "pixel":
        fw, fh = fed_size or size
        return [x1 * w / fw, y1 * h / fh, x2 * w / fw, y2 * h / fh]
    return [x1 * w / 1000, y1 * h / 1000, x2 * w / 1000, y2 * h / 1000]


def render_objects(objs: Sequence[dict[str, Any]], sizes: Sequence[tuple[int, int]], box_format: str = "qwen3",
                   fed_sizes: Sequence[tuple[int, int]] | None = None) -> str:
    """Text for a list of `{image, label, bbox}` objects in the chosen frame (labels in first-seen order)."""
    _check_format(box_format)
    if not objs:
        return "[]" if box_format == "json" else NO_OBJECTS
    framed = []
    for ob in objs:
        i = ob["image"]
        fed = fed_sizes[i] if fed_sizes else None
        framed.append((ob["label"], to_frame(ob["bbox"], sizes[i], fed, box_format)))
    if box_format == "json":
        return json.dumps([{"bbox_2d": b, "label": lab} for lab, b in framed], ensure_ascii=False)
    by_label: dict[str, list[list[int]]] = {}
    for lab, b in framed:
        by_label.setdefault(lab, []).append(b)
    lines = []
    for lab, boxes in by_label.items():
        inner = ", ".join("[" + ", ".join(str(v) for v in b) + "]" for b in boxes)
        lines.append(f"{lab} <box>[{inner}]</box>")
    return "\n".join(lines)


def render_messages(record: dict[str, Any], box_format: str = "qwen3",
                    fed_sizes: Sequence[tuple[int, int]] | None = None) -> list[dict[str, Any]]:
    """The record's messages with hints filled in and `objects` parts rendered as text parts."""
    _check_format(box_format)
    sizes = [(im["width"], im["height"]) for im in record.get("images", [])]
    out = []
    for msg in record["messages"]:
        parts = []
        for part in msg["content"]:
            if part["type"] == "objects":
                parts.append({"type": "text", "text": render_objects(record["objects"], sizes, box_format,
                                                                      fed_sizes)})
            elif part["type"] == "text" and HINT in part["text"]:
                parts.append({"type": "text", "text": part["text"].replace(HINT, FORMAT_HINTS[box_format])})
            else:
                parts.append(dict(part))
        # Adjacent text parts merge so that a rendered answer reads as one string.
        merged: list[dict[str, Any]] = []
        for p in parts:
            if merged and p["type"] == "text" and merged[-1]["type"] == "text":
                merged[-1] = {"type": "text", "text": merged[-1]["text"] + p["text"]}
            else:
                merged.append(p)
        out.append({"role": msg["role"], "content": merged})
    return out


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)
_BOX_BLOCK = re.compile(r"(?:^|\n)\s*([^\n<]*?)\s*<box>(.*?)</box>", re.S)
_NUM_LIST = re.compile(r"\[\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*,"
                       r"\s*(-?\d+(?:\.\d+)?)\s*\]")


def _finite_box(vals: Sequence[Any]) -> list[float] | None:
    try:
        b = [float(v) for v in vals]
    except (TypeError, ValueError):
        return None
    if len(b) != 4 or not all(math.isfinite(v) for v in b):
        return None
    x1, y1, x2, y2 = b
    # Inverted corners are repaired, not dropped: the model found the region, wrote corners swapped.
    return [min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)]


def _parse_json_boxes(text: str) -> list[tuple[str | None, list[float]]] | None:
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    for cand in candidates:
        start, end = cand.find("["), cand.rfind("]")
        if start < 0 or end <= start:
            continue
        try:
            data = json.loads(cand[start:end + 1])
        except json.JSONDecodeError:
            continue
        if isinstance(data, dict):
            data = [data]
        if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
            continue
        out = []
        for d in data:
            b = _finite_box(d.get("bbox_2d") or d.get("bbox") or [])
            if b is not None:
                lab = d.get("label")
                out.append((str(lab) if lab is not None else None, b))
        return out
    return None


def parse_boxes(text: str) -> list[tuple[str | None, list[float]]]:
    """Every (label, [x1, y1, x2, y2]) found in a completion, in the coordinates it was written in.

    Reads the three frames' layouts: JSON `bbox_2d` lists (fenced or bare), `label <box>[[...]]</box>`
    lines, and bare `[x1, y1, x2, y2]` lists (label None). Non-finite boxes are dropped.
    """
    if "bbox_2d" in text or '"bbox"' in text:
        parsed = _parse_json_boxes(text)
        if parsed is not None:
            return parsed
    out: list[tuple[str | None, list[float]]] = []
    blocks = list(_BOX_BLOCK.finditer(text))
    if blocks:
        for m in blocks:
            label = m.group(1).strip().rstrip(":").strip() or None
            for nm in _NUM_LIST.finditer(m.group(2)):
                b = _finite_box(nm.groups())
                if b is not None:
                    out.append((label, b))
            if not _NUM_LIST.search(m.group(2)):
                nums = re.findall(r"-?\d+(?:\.\d+)?", m.group(2))
                if len(nums) == 4 and (b := _finite_box(nums)) is not None:
                    out.append((label, b))
        return out
    for nm in _NUM_LIST.finditer(text):
        b = _finite_box(nm.groups())
        if b is not None:
            out.append((None, b))
    return out
