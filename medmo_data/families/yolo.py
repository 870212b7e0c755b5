"""YOLO label files (`class cx cy w h`, normalised 0-1) -> XYXY boxes in source pixels.

Shared by the recipes that read YOLO exports (GRAZPEDWRI-DX `folder_structure/yolov5/labels/`, the
pre-converted "Bacteria" set). Rules:
- one box per line, exactly 5 space-separated fields; a 6th field is a prediction's confidence, so such a
  file is not ground truth and is refused;
- exported values may overshoot [0, 1] slightly (rounding in the exporters): corners are clamped to the
  image before the conversion, so a box at the image edge ends exactly on the edge;
- class names come from `meta.yaml` / `data.yaml` (`names:` list or `{id: name}` map) or a plain
  `classes.txt` / `obj.names` (one name per line); exports write them as identifiers (`E_coli`), so
  `spoken` turns them into the words a model says.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from medmo_data.formats.tables import FileRefused, read_small
from medmo_data.pixels import boxes


class YoloError(ValueError):
    """A label file or image that cannot be used; `reason` is the manifest's reject reason."""

    def __init__(self, reason: str, detail: str):
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


@dataclass(frozen=True)
class YoloBox:
    cls: int
    bbox: list[float]  # XYXY, pixels of the source image


def parse_labels(text: str, width: int, height: int, where: str = "labels") -> list[YoloBox]:
    """Every box of one label file's text, in file order."""
    out: list[YoloBox] = []
    for n, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 5:
            raise YoloError("malformed_label", f"{where}:{n}: {len(fields)} fields, need 5 (class cx cy w h)")
        try:
            cls_f = float(fields[0])
            cx, cy, w, h = (float(v) for v in fields[1:])
        except ValueError as exc:
            raise YoloError("malformed_label", f"{where}:{n}: non-numeric field in {line.strip()!r}") from exc
        if not cls_f.is_integer() or cls_f < 0:
            raise YoloError("malformed_label", f"{where}:{n}: class {fields[0]!r} is not a class index")
        if not all(math.isfinite(v) for v in (cx, cy, w, h)) or w <= 0 or h <= 0:
            raise YoloError("bad_box", f"{where}:{n}: box {fields[1:]} has no area")
        x1, y1 = max(cx - w / 2, 0.0), max(cy - h / 2, 0.0)
        x2, y2 = min(cx + w / 2, 1.0), min(cy + h / 2, 1.0)
        if x2 <= x1 or y2 <= y1:
            raise YoloError("bad_box", f"{where}:{n}: box {fields[1:]} lies outside the image")
        bbox = boxes.from_yolo((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1, width, height)
        out.append(YoloBox(int(cls_f), bbox))
    return out


def read_labels(path: Path, width: int, height: int) -> list[YoloBox]:
    try:
        text = read_small(path).decode("utf-8")
    except FileRefused as exc:  # missing, or a FIFO / device / huge file where a label file should be
        reason = "missing_labels" if exc.reason == "missing_file" else exc.reason
        raise YoloError(reason, f"{path} does not exist" if reason == "missing_labels" else str(exc)) from exc
    except UnicodeDecodeError as exc:
        raise YoloError("non_utf8_text", f"{path}: byte {exc.start} is not UTF-8") from exc
    return parse_labels(text, width, height, str(path))


def spoken(name: str) -> str:
    """A class identifier as words: underscores become spaces (`E_coli` -> `E coli`), blanks collapse."""
    return " ".join(name.replace("_", " ").split())


def read_names(path: Path, data: bytes | None = None) -> list[str]:
    """Class names by index from a YOLO `*.yaml` (`names:`) or a one-name-per-line text file (its bytes
    `data`, a zip member's, when given)."""
    text = (read_small(path) if data is None else data).decode("utf-8")
    if path.suffix in (".yaml", ".yml"):
        import yaml

        names = (yaml.safe_load(text) or {}).get("names")
        if isinstance(names, dict):
            return [str(names[k]) for k in sorted(names, key=int)]
        if isinstance(names, list):
            return [str(n) for n in names]
        raise ValueError(f"{path}: no `names:` list or map")
    return [ln.strip() for ln in text.splitlines() if ln.strip()]


def image_size(path: Path, data: bytes | None = None) -> tuple[int, int]:
    """(width, height) from the image header only (of `data`, a zip member's bytes, when given); YOLO boxes
    need it before any pixel is decoded."""
    try:
        with Image.open(io.BytesIO(data) if data is not None else path) as img:
            return img.size
    except FileNotFoundError as exc:
        raise YoloError("missing_image", f"{path} does not exist") from exc
    except (UnidentifiedImageError, OSError) as exc:
        raise YoloError("corrupt_image", f"{path}: {exc}") from exc
