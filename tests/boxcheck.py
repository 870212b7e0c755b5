"""Test helper for box sources: boxes drawn by `show` must sit on the bright fixture objects.

Fixtures draw bright objects on a dark background at exactly the labelled pixels, so inside every box
the rendered tile must be much brighter on average than the image area outside all boxes.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from medmo_data.show import TILE, draw_sample, show

MARGIN = 3  # skip the 2-pixel outline drawn by `show`


def box_contrast(rec: dict[str, Any], members: dict[str, bytes]) -> list[tuple[float, float]]:
    """(mean grey inside, mean grey outside all boxes) for every object on image 0 of a `show` tile."""
    tile = np.asarray(draw_sample(rec, members).convert("L"), dtype=np.float64)
    im = rec["images"][0]
    s = min(TILE / im["width"], TILE / im["height"])
    h, w = round(im["height"] * s), round(im["width"] * s)
    area = tile[:h, :w]
    covered = np.zeros((h, w), dtype=bool)
    spans = []
    for ob in rec["objects"]:
        if ob["image"] != 0:
            continue
        x1, y1, x2, y2 = (v * s for v in ob["bbox"])
        covered[max(0, math.floor(y1) - MARGIN):math.ceil(y2) + MARGIN,
                max(0, math.floor(x1) - MARGIN):math.ceil(x2) + MARGIN] = True
        spans.append((math.ceil(y1) + MARGIN, math.floor(y2) - MARGIN, math.ceil(x1) + MARGIN, math.floor(x2) - MARGIN))
    outside = float(area[~covered].mean())
    return [(float(area[r0:r1, c0:c1].mean()), outside) for r0, r1, c0, c1 in spans]


def assert_boxes_on_objects(rec: dict[str, Any], members: dict[str, bytes], margin: float = 60.0) -> None:
    pairs = box_contrast(rec, members)
    assert pairs, f"{rec['id']}: no box on image 0"
    for k, (inside, outside) in enumerate(pairs):
        assert inside > outside + margin, f"{rec['id']} box {k}: inside {inside:.1f} vs outside {outside:.1f}"


def assert_show_grid(folder: Path, out: Path, n: int = 8) -> None:
    """`medmo-data show` renders a grid of n tiles (or fewer) into a readable PNG."""
    count = show(folder, out, n=n)
    assert count >= 1
    with Image.open(out) as img:
        assert img.width >= TILE and img.height >= TILE
