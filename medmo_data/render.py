"""Turn stored `objects` into answer text for a model's box frame, and parse any frame back.

Frames (`box_format`):
- `qwen3` (default): integers 0-1000 relative to the image, one line per label:
  `label <box>[[x1,y1,x2,y2],[...]]</box>` (the form MedMO's README shows);
- `pixel`: the same layout in absolute integer pixels of the image the model is fed (MedMO stage 4);
- `json`: `[{"bbox_2d": [x1,y1,x2,y2], "label": "..."}]` with Qwen3-VL's native 0-1000 relative integers.

Several images (MedSG's registered pairs, tracked frames): every box line starts with the image it is on,
in Qwen3-VL's own name for images (its chat template's `add_vision_id` writes "Picture 1: <image>"), counted
from 1: `Picture 2: label <box>[[x1,y1,x2,y2]]</box>`, each box in the frame of that image. The JSON frame
gives the same number as a `"picture"` key. A sample with one image never carries the marker; when parsing,
a marker applies to the boxes after it up to the next marker, and boxes before any marker have no image
(`parse_image_boxes` returns None; the reward reads them as image 1, the single-image convention).

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
PICTURE_MARKER = "Picture {n}: "  # before the boxes of image n (1-based) when a sample has several images
MULTI_IMAGE_HINT = " With several images, start each line with the image it is on: `Picture 2: label <box>...`."
_PICTURE = re.compile(r"Picture\s*(\d{1,3})\s*:")


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
    """Text for a list of `{image, label, bbox}` objects in the chosen frame.

    Lines group boxes by label in first-seen order; with several images, by (image, label), each line led
    by `Picture n: ` (`"picture": n` in JSON), so every box names the image whose pixels it is in.
    """
    _check_format(box_format)
    if not objs:
        return "[]" if box_format == "json" else NO_OBJECTS
    multi = len(sizes) > 1
    framed = []
    for ob in objs:
        i = ob["image"]
        fed = fed_sizes[i] if fed_sizes else None
        framed.append((i, ob["label"], to_frame(ob["bbox"], sizes[i], fed, box_format)))
    if box_format == "json":
        return json.dumps([{"bbox_2d": b, "label": lab, **({"picture": i + 1} if multi else {})}
                           for i, lab, b in framed], ensure_ascii=False)
    by_line: dict[tuple[int, str], list[list[int]]] = {}
    for i, lab, b in framed:
        by_line.setdefault((i if multi else 0, lab), []).append(b)
    lines = []
    for (i, lab), boxes in by_line.items():
        inner = ", ".join("[" + ", ".join(str(v) for v in b) + "]" for b in boxes)
        lead = PICTURE_MARKER.format(n=i + 1) if multi else ""
        lines.append(f"{lead}{lab} <box>[{inner}]</box>")
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
                hint = FORMAT_HINTS[box_format] + (MULTI_IMAGE_HINT if len(sizes) > 1 else "")
                parts.append({"type": "text", "text": part["text"].replace(HINT, hint)})
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


def _picture(value: Any) -> int | None:
    """0-based image index of a 1-based picture number; None when absent or not a positive integer."""
    try:
        n = int(value)
    except (TypeError, ValueError):
        return None
    return n - 1 if n >= 1 else None


def _parse_json_boxes(text: str) -> list[tuple[int | None, str | None, list[float]]] | None:
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
                out.append((_picture(d.get("picture")), str(lab) if lab is not None else None, b))
        return out
    return None


def _picture_at(markers: list[re.Match], pos: int) -> int | None:
    """The image of the last `Picture n:` marker that starts before `pos`."""
    image = None
    for m in markers:
        if m.start() >= pos:
            break
        image = _picture(m.group(1))
    return image


def parse_image_boxes(text: str) -> list[tuple[int | None, str | None, list[float]]]:
    """Every (image, label, [x1, y1, x2, y2]) found in a completion, in the coordinates it was written in.

    Reads the three frames' layouts: JSON `bbox_2d` lists (fenced or bare; image from a `"picture"` key),
    `label <box>[[...]]</box>` lines, and bare `[x1, y1, x2, y2]` lists (label None). The image is the
    0-based index named by the nearest `Picture n:` marker before the box, or None before any marker.
    Non-finite boxes are dropped.
    """
    if "bbox_2d" in text or '"bbox"' in text:
        parsed = _parse_json_boxes(text)
        if parsed is not None:
            return parsed
    markers = list(_PICTURE.finditer(text)) if "Picture" in text else []
    out: list[tuple[int | None, str | None, list[float]]] = []
    blocks = list(_BOX_BLOCK.finditer(text))
    if blocks:
        for m in blocks:
            image = _picture_at(markers, m.start(2))
            raw_label = m.group(1)
            if markers:
                raw_label = _PICTURE.split(raw_label)[-1]  # the text after the line's own marker
            label = raw_label.strip().rstrip(":").strip() or None
            for nm in _NUM_LIST.finditer(m.group(2)):
                b = _finite_box(nm.groups())
                if b is not None:
                    out.append((image, label, b))
            if not _NUM_LIST.search(m.group(2)):
                nums = re.findall(r"-?\d+(?:\.\d+)?", m.group(2))
                if len(nums) == 4 and (b := _finite_box(nums)) is not None:
                    out.append((image, label, b))
        return out
    for nm in _NUM_LIST.finditer(text):
        b = _finite_box(nm.groups())
        if b is not None:
            out.append((_picture_at(markers, nm.start()), None, b))
    return out


def parse_boxes(text: str) -> list[tuple[str | None, list[float]]]:
    """Every (label, [x1, y1, x2, y2]) of `parse_image_boxes`, without the image index."""
    return [(label, box) for _, label, box in parse_image_boxes(text)]
