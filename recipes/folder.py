"""folder: your own images plus one annotation file, in any task of the schema.

Layout: `<root>/annotations.jsonl` (or `annotations.csv`) and the images it names, by path relative to
<root>. Any supported image: DICOM (`.dcm` or DICM magic), NIfTI (`.nii`, `.nii.gz`), PNG (8/16-bit),
JPEG, TIFF. Images that need no pixel change are stored as their own bytes: a JPEG as `N.jpg` (its samples
form their own shard series, e.g. `train-jpg`: a series has one set of member names), an 8-bit grey/RGB
PNG as `N.png` with only its image chunks (text/EXIF/ICC chunks dropped). See docs/folder-format.md for the full field list. One JSONL line:

    {"id": "case-001", "images": ["ct/case1.dcm"], "split": "train", "task": "grounding", "modality": "ct",
     "question": "Where is the nodule?", "window": "lung",
     "boxes": [{"label": "nodule", "bbox": [120, 88, 30, 24]}], "box_format": "xywh"}

- `task`: any schema task; `vqa`/`classification`/`mcq`/text tasks use `question` + `answer`;
  `caption`/`report` use `caption` (or `answer`) with an optional `question` as the prompt;
  `grounding`/`detection` use `boxes` (+ optional `question`; the box-frame hint is added).
- `box_format` (per line, default `xyxy`): `xyxy`, `xywh` (top-left + size), `xyxy_1based`,
  `cxcywh_norm` (YOLO: centre and size as fractions), `xyxy_norm` (fractions). Box `image` = image index.
- `window` (named or `[lo, hi]`), `slice` (NIfTI index on `axis`, default axial middle), `frame`
  (multi-frame DICOM), `value_offset` (16-bit PNG stored value -> HU) apply to every image of the line.
- CSV: columns `id, image, split, task, modality, question, answer, caption, label, bbox, box_format`;
  `image` may list several paths separated by `;`; `bbox` is four numbers separated by spaces; rows with
  the same `id` are one sample (one box per row).
Options: `-o license=...`, `-o access=open|registered|credentialed`, `-o modality=...` (default for lines
without one). DICOM header values are never copied into the output.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from medmo_data.formats.tables import clean, iter_csv, iter_jsonl
from medmo_data.pixels import boxes
from medmo_data.recipe import ImageSource, RawSample, Reject, SourceError, SourceInfo
from medmo_data.render import HINT
from medmo_data.schema import ACCESS, MODALITIES, TASKS, image, objects, turn

INFO = SourceInfo(
    name="folder", title="Your own folder of images + annotations", stages=(2,),
    tasks=("vqa", "caption", "report", "grounding", "detection", "classification"), modality="mixed",
    access="open", license="user-declared", image_format="png", status="ready",
    version="2",  # 2: JPEG and plain 8-bit PNG files stored as their own bytes
    notes="generic recipe; not one of the 45 MedMO sources",
)
BOX_FORMATS = ("xyxy", "xywh", "xyxy_1based", "cxcywh_norm", "xyxy_norm")
DEFAULT_PROMPTS = {"caption": "Describe this image.", "report": "Write the radiology report for this study."}
TEXT_TASKS = ("text_qa", "instruction", "reasoning", "summarization")
JPEG_SOI = b"\xff\xd8\xff"
NOT_JPEG = (".dcm", ".nii", ".nii.gz", ".png", ".tif", ".tiff", ".bmp")


def _box(raw: Any, fmt: str) -> tuple[list[float], bool]:
    """(bbox, normalized?) in XYXY; normalized boxes are scaled once the image size is known."""
    if not isinstance(raw, list):  # the string "1234" iterates to four digits: never a box
        raise ValueError(f"bbox must be a list of 4 numbers, got a {type(raw).__name__}")
    vals = [float(v) for v in raw]
    if len(vals) != 4:
        raise ValueError(f"bbox needs 4 numbers, got {raw!r}")
    if fmt == "xyxy":
        return vals, False
    if fmt == "xywh":
        return boxes.from_xywh(*vals), False
    if fmt == "xyxy_1based":
        return boxes.from_one_based(*vals), False
    if fmt == "cxcywh_norm":
        return boxes.from_yolo(*vals, 1, 1), True
    if fmt == "xyxy_norm":
        return vals, True
    raise ValueError(f"box_format {fmt!r} is not one of {BOX_FORMATS}")


def _is_jpeg(path: str) -> bool:
    """JPEG by content (SOI marker), read only for regular files whose names are not another known format.
    Opened non-blocking and checked again by fstat (the file may have been swapped since its lstat): a FIFO
    never blocks; the decoder rejects it by its own stat."""
    if path.lower().endswith(NOT_JPEG):
        return False
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except (OSError, ValueError):  # ValueError: a NUL in the name
        return False  # missing or unreadable: the decoder rejects it with the reason
    try:
        return stat.S_ISREG(os.fstat(fd).st_mode) and os.read(fd, 3) == JPEG_SOI
    except OSError:
        return False
    finally:
        os.close(fd)


def _mode(path: str, follow: bool) -> int | None:
    """The file's mode bits (of the link itself unless `follow`), None if it cannot be stat'ed."""
    try:
        return (os.stat(path) if follow else os.lstat(path)).st_mode
    except (OSError, ValueError):  # ValueError: a NUL in the name
        return None


class _Resolver:
    """Image paths resolved (symlinks followed) and kept inside the resolved input folder. Each folder an
    annotation names is resolved once per build; per image only its last component is checked for a
    symlink (one lstat instead of one per path component: realpath of a folder/name pair equals realpath
    of the folder, joined with the name, unless the name itself is a link). That lstat also says whether
    the image is a regular file, so a device or FIFO is never opened to sniff it."""

    def __init__(self, root: Path) -> None:
        self.root = str(root)  # already resolved
        self.inside = self.root.rstrip(os.sep) + os.sep
        self.folders: dict[str, str] = {}

    def __call__(self, rel: str) -> tuple[str, bool]:
        """(real path, is a regular file)."""
        folder, name = os.path.split(rel)
        mode = None
        if name in ("", ".", ".."):
            path = os.path.realpath(os.path.join(self.root, rel))
        else:
            real = self.folders.get(folder)
            if real is None:
                real = self.folders[folder] = os.path.realpath(os.path.join(self.root, folder))
            path = os.path.join(real, name)
            mode = _mode(path, follow=False)
            if mode is not None and stat.S_ISLNK(mode):
                path, mode = os.path.realpath(path), None
        if not path.startswith(self.inside):  # the root itself, or outside it
            raise ValueError(f"image path {rel!r} leaves the input folder")
        if mode is None:
            mode = _mode(path, follow=True)
        return path, mode is not None and stat.S_ISREG(mode)


def _image_source(resolve: _Resolver, rel: str, line: dict[str, Any]) -> ImageSource:
    path, regular = resolve(rel)
    window = line.get("window")
    offset = line.get("value_offset", 0.0)
    # A JPEG is stored as its own bytes in a `.jpg` member (re-encoded as JPEG only if resized); such
    # samples form their own shard series (`train-jpg`), since a series has one set of member names.
    # window, value_offset, axis, slice and frame are passed as given: the decoder checks them and rejects
    # the line with a specific reason (bad_window, bad_value_offset, ...).
    jpeg = window is None and not offset and regular and _is_jpeg(path)
    return ImageSource(path=path, window=tuple(window) if isinstance(window, list) else window,
                       slice_index=line.get("slice"), axis=line.get("axis", "axial"), frame=line.get("frame"),
                       value_offset=offset, member_format="jpg" if jpeg else None)


def sample(resolve: _Resolver, rid: str, line: dict[str, Any], options: dict[str, str]) -> RawSample | Reject:
    sid = clean(line.get("id")) or rid
    task = clean(line.get("task")) or "vqa"
    if task not in TASKS:
        return Reject(sid, "bad_field", f"{rid}: task {task!r} is not one of {TASKS}")
    modality = clean(line.get("modality")) or options.get("modality", "mixed")
    if modality not in MODALITIES:
        return Reject(sid, "bad_field", f"{rid}: modality {modality!r} is not one of {MODALITIES}")
    paths = line.get("images", [])
    if isinstance(paths, str):
        paths = [p for p in paths.split(";") if p.strip()]
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        return Reject(sid, "bad_field", f"{rid}: images must be a list of paths")
    try:
        sources = [_image_source(resolve, p.strip(), line) for p in paths]
    except ValueError as exc:
        return Reject(sid, "bad_path", f"{rid}: {exc}")
    if task not in TEXT_TASKS and not sources:
        return Reject(sid, "missing_image", f"{rid}: task {task} needs at least one image")
    parts = [image()] * len(sources)
    question, answer = clean(line.get("question")), clean(line.get("answer"))
    objs = []
    if task in ("grounding", "detection"):
        fmt = clean(line.get("box_format")) or "xyxy"
        try:
            for b in line.get("boxes") or []:
                bbox, norm = _box(b["bbox"], fmt)
                ob = {"image": int(b.get("image", 0)), "label": clean(b.get("label")), "bbox": bbox}
                if norm:
                    ob["normalized"] = True
                objs.append(ob)
        except (KeyError, TypeError, ValueError) as exc:
            return Reject(sid, "bad_box", f"{rid}: boxes: {exc}")
        labels = sorted({o["label"] for o in objs})
        prompt = question or f"Locate every {', '.join(labels) or 'finding'} in the image."
        msgs = [turn("user", *parts, f"{prompt} {HINT}"), turn("assistant", objects())]
        target: dict[str, Any] = {"labels": labels}
    else:
        if task in ("caption", "report"):
            answer = clean(line.get("caption")) or answer
            question = question or DEFAULT_PROMPTS[task]
        if not question or not answer:
            return Reject(sid, "empty_text", f"{rid}: question/answer (or caption) is empty")
        msgs = [turn("user", *parts, question), turn("assistant", answer)]
        target = {"answer": answer}
    split = clean(line.get("split")) or "train"
    return RawSample(id=sid, split=split, task=task, modality=modality, images=sources, messages=msgs,
                     objects=objs, target=target, meta={"line": rid})


def _csv_lines(path: Path) -> Iterator[tuple[str, dict[str, Any]] | Reject]:
    """CSV rows grouped by id into JSONL-shaped lines (one box per row)."""
    grouped: dict[str, tuple[str, dict[str, Any]]] = {}
    for item in iter_csv(path, required=["id", "image"]):
        if isinstance(item, Reject):
            yield item
            continue
        rid, row = item
        key = row["id"].strip() or rid
        if key not in grouped:
            line = {k: v for k, v in row.items() if k not in ("label", "bbox", "image") and v.strip()}
            line["images"] = row["image"]
            line["boxes"] = []
            grouped[key] = (rid, line)
        if row.get("bbox", "").strip():
            grouped[key][1]["boxes"].append({"label": row.get("label", ""), "bbox": row["bbox"].split()})
    yield from grouped.values()


def records(root: Path, options: dict[str, str]) -> Iterator[RawSample | Reject]:
    jl, cs = root / "annotations.jsonl", root / "annotations.csv"
    if jl.exists():
        lines: Iterator = iter_jsonl(jl)
    elif cs.exists():
        lines = _csv_lines(cs)
    else:
        raise SourceError(f"{root}: no annotations.jsonl or annotations.csv")
    resolve = _Resolver(root.resolve())
    for item in lines:
        if isinstance(item, Reject):
            yield item
            continue
        rid, line = item
        yield sample(resolve, rid, line, options)


def info_for(options: dict[str, str]) -> SourceInfo:
    """The licence and access the user declares for their data go into every record and the manifest."""
    access = options.get("access", "open")
    if access not in ACCESS:
        raise SourceError(f"option access={access!r}: must be one of {ACCESS}")
    return replace(INFO, license=options.get("license", INFO.license), access=access)
