"""Box conversions into the one stored frame: XYXY floats in pixels of the stored image.

Every raw convention (XYWH, YOLO normalised centre, 1-based corners, point lists, instance masks) is
turned into XYXY here, exactly once; recipes never do box arithmetic of their own.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

Box = list[float]


class BoxError(ValueError):
    """A box that cannot be stored (non-finite, inverted, zero-area or off the image)."""


def from_xywh(x: float, y: float, w: float, h: float) -> Box:
    """Top-left corner plus width/height (NIH BBox_List, SLAKE detection.json)."""
    return [float(x), float(y), float(x) + float(w), float(y) + float(h)]


def from_yolo(cx: float, cy: float, w: float, h: float, width: int, height: int) -> Box:
    """YOLO `class cx cy w h`, all normalised to [0, 1] of the image."""
    return [
        (float(cx) - float(w) / 2) * width,
        (float(cy) - float(h) / 2) * height,
        (float(cx) + float(w) / 2) * width,
        (float(cy) + float(h) / 2) * height,
    ]


def from_one_based(x1: float, y1: float, x2: float, y2: float) -> Box:
    """Corners counted from 1 (DeepLesion DL_info.csv) to the 0-based pixel frame."""
    return [float(x1) - 1, float(y1) - 1, float(x2) - 1, float(y2) - 1]


def from_points(points: Iterable[Sequence[float]]) -> Box:
    """Tight box around a polygon/point list (Supervisely `points.exterior`)."""
    arr = np.asarray(list(points), dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2 or len(arr) == 0:
        raise BoxError(f"need a list of (x, y) points, got shape {arr.shape}")
    return [float(arr[:, 0].min()), float(arr[:, 1].min()), float(arr[:, 0].max()), float(arr[:, 1].max())]


def from_instance_mask(mask: np.ndarray) -> list[tuple[int, Box]]:
    """Boxes of every instance id > 0 in a 2-D label image, sorted by id.

    A pixel (r, c) covers [c, c+1) x [r, r+1), so an instance on columns 3..5 has x1=3, x2=6.
    Touching instances stay apart because they carry different ids.
    """
    if mask.ndim != 2:
        raise BoxError(f"instance mask must be 2-D, got shape {mask.shape}")
    ids = np.unique(mask)
    ids = ids[ids > 0]
    if len(ids) == 0:
        return []
    # One pass over the image for all instances: per-id min/max of rows and columns.
    flat = mask.ravel()
    fg = flat > 0
    rows, cols = np.divmod(np.nonzero(fg)[0], mask.shape[1])
    lab = np.searchsorted(ids, flat[fg])
    n = len(ids)
    big = np.iinfo(np.int64).max
    r0 = np.full(n, big)
    c0 = np.full(n, big)
    r1 = np.full(n, -1)
    c1 = np.full(n, -1)
    np.minimum.at(r0, lab, rows)
    np.minimum.at(c0, lab, cols)
    np.maximum.at(r1, lab, rows)
    np.maximum.at(c1, lab, cols)
    return [(int(i), [float(c0[k]), float(r0[k]), float(c1[k] + 1), float(r1[k] + 1)]) for k, i in enumerate(ids)]


def clip(box: Sequence[float], width: float, height: float) -> Box:
    x1, y1, x2, y2 = box
    return [min(max(x1, 0.0), width), min(max(y1, 0.0), height), min(max(x2, 0.0), width),
            min(max(y2, 0.0), height)]


def scale(box: Sequence[float], sx: float, sy: float) -> Box:
    x1, y1, x2, y2 = box
    return [x1 * sx, y1 * sy, x2 * sx, y2 * sy]


def check(box: Sequence[float], width: float, height: float, tolerance: float = 2.0) -> Box:
    """Validate a box against its image and clip sub-pixel overhang.

    Raises BoxError for non-finite values, inverted or zero-area boxes, and boxes that stick out of the
    image by more than `tolerance` pixels (a sign of a wrong frame, not of rounding).
    """
    if len(box) != 4:
        raise BoxError(f"need 4 coordinates, got {list(box)!r}")
    try:
        vals = [float(v) for v in box]
    except (TypeError, ValueError) as exc:
        raise BoxError(f"non-numeric coordinate in {list(box)!r}") from exc
    if not all(math.isfinite(v) for v in vals):
        raise BoxError(f"non-finite coordinate in {vals!r}")
    x1, y1, x2, y2 = vals
    if x2 < x1 or y2 < y1:
        raise BoxError(f"inverted box {vals!r}")
    if x1 < -tolerance or y1 < -tolerance or x2 > width + tolerance or y2 > height + tolerance:
        raise BoxError(f"box {vals!r} lies outside the {width}x{height} image")
    out = clip(vals, width, height)
    if out[2] - out[0] <= 0 or out[3] - out[1] <= 0:
        raise BoxError(f"zero-area box {vals!r}")
    return out
