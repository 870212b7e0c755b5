"""Bacteria: bacterial microscopy images with one box per bacterium (MedMO's "Bacteria" grounding set).

Identity UNVERIFIED: MedMO's loader reads a pre-converted YOLO export (`images/*.jpg` + `labels/*.txt`)
without naming the source; candidates are DeepBacs E. coli (Zenodo 10.5281/zenodo.5551057), the darkfield
spirochaete set (instance masks) and Makrai et al. 2023 colonies (YOLO, figshare). Licence: that of the
source you point the recipe at (CC-BY-4.0 for the three candidates); record it with `license=` if it differs.
Two layouts are read, anywhere under the input folder:
- YOLO: every `labels/**/<stem>.txt` (`class cx cy w h` normalised) with its image at the same relative
  path under the sibling `images/` folder (`.jpg`, `.jpeg`, `.png`, `.tif`, `.tiff`, `.bmp`); class names
  from `data.yaml` / `classes.txt` / `obj.names` at the top, said as words (`E_coli` -> "E coli"), else
  every box is a `bacterium`. An EMPTY
  label file is the annotator's "no bacteria here" and becomes a negative sample (`None found.`).
- Instance masks: every `masks/**/<stem>.{png,tif,tiff}` (0 = background, one id per bacterium; touching
  cells stay apart) with its image under the sibling `images/`; a mask without ids is rejected (`no_objects`).
Splits: a path component `train`, `val`/`valid`/`validation` or `test` decides; otherwise the file stem is
hashed 80/10/10. Images with more than `max_boxes` (default 100) boxes are rejected (`too_many_boxes`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

from medmo_data.families import cells, yolo
from medmo_data.recipe import ImageSource, RawSample, Reject, SourceError, SourceInfo

INFO = SourceInfo(
    name="bacteria", title="Bacteria (bacterial microscopy detection)", stages=(2, 4), tasks=("detection",),
    modality="microscopy", access="open", license="CC-BY-4.0",
    homepage="https://doi.org/10.5281/zenodo.5551057",
    citation="Spahn & Heilemann, DeepBacs E. coli antibiotic phenotyping object detection dataset, 2021 "
             "(source identity of MedMO's set unverified)",
    image_format="jpg",
)
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")
SPLIT_DIRS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
NAME_FILES = ("data.yaml", "classes.txt", "obj.names")
PROMPT = cells.detection_prompt("bacterium", "microscopy image")


def split_of(rel: Path) -> str:
    for part in rel.parts[:-1]:
        if part.lower() in SPLIT_DIRS:
            return SPLIT_DIRS[part.lower()]
    h = int(hashlib.sha1(f"bacteria-{rel.stem}".encode()).hexdigest()[:8], 16) % 100
    return "test" if h < 10 else "val" if h < 20 else "train"


def find_image(images_dir: Path, rel: Path) -> Path | None:
    for ext in IMAGE_EXTS:
        for cand in (images_dir / rel.with_suffix(ext), images_dir / rel.with_suffix(ext.upper())):
            if cand.exists():
                return cand
    return None


def _source(path: Path) -> ImageSource:
    # 16-bit TIFF microscopy needs scaling; 8-bit JPEG/PNG pass as they are.
    return ImageSource(path=str(path), normalize="percentile" if path.suffix.lower() in (".tif", ".tiff") else None)


def _yolo(root: Path, labels: Path, names: list[str], max_boxes: int) -> Iterator[RawSample | Reject]:
    images = labels.parent / "images"
    for txt in sorted(labels.rglob("*.txt")):
        rel = txt.relative_to(labels)
        sid = str(txt.relative_to(root).with_suffix(""))
        img = find_image(images, rel)
        if img is None:
            yield Reject(sid, "missing_image", f"no image for {txt} under {images}")
            continue
        try:
            w, h = yolo.image_size(img)
            found = yolo.read_labels(txt, w, h)
        except yolo.YoloError as exc:
            yield Reject(sid, exc.reason, exc.detail)
            continue
        if names and any(b.cls >= len(names) for b in found):
            yield Reject(sid, "unknown_label", f"class id outside the {len(names)} names")
            continue
        objs = [{"image": 0, "label": names[b.cls] if names else "bacterium", "bbox": b.bbox} for b in found]
        yield cells.detection_sample(sid, split_of(rel), [_source(img)], objs, PROMPT, max_boxes,
                                     {"image": img.name, "annotation": "yolo"}, empty="negative")


def _masks(root: Path, masks: Path, max_boxes: int) -> Iterator[RawSample | Reject]:
    images = masks.parent / "images"
    for mpath in sorted(p for p in masks.rglob("*") if p.suffix.lower() in (".png", ".tif", ".tiff")):
        rel = mpath.relative_to(masks)
        sid = str(mpath.relative_to(root).with_suffix(""))
        img = find_image(images, rel)
        if img is None:
            yield Reject(sid, "missing_image", f"no image for {mpath} under {images}")
            continue
        mask = cells.load_mask_2d(mpath, sid)
        if isinstance(mask, Reject):
            yield mask
            continue
        yield cells.detection_sample(sid, split_of(rel), [_source(img)], cells.mask_objects(mask, "bacterium"),
                                     PROMPT, max_boxes, {"image": img.name, "annotation": "mask"})


def records(root: Path, options: dict[str, str]) -> Iterator[RawSample | Reject]:
    max_boxes = cells.max_boxes_option(options)
    names: list[str] = []
    for n in NAME_FILES:
        if (root / n).exists():
            names = [yolo.spoken(x) for x in yolo.read_names(root / n)]
            break
    label_dirs = sorted(p for p in root.rglob("labels") if p.is_dir())
    mask_dirs = sorted(p for p in root.rglob("masks") if p.is_dir())
    if not label_dirs and not mask_dirs:
        raise SourceError(f"{root}: no labels/ (YOLO) or masks/ (instance masks) folder found")
    for d in label_dirs:
        yield from _yolo(root, d, names, max_boxes)
    for d in mask_dirs:
        yield from _masks(root, d, max_boxes)
