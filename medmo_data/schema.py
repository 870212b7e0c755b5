"""The `medmo/v1` sample record: vocabularies, typed parts and a validator that names the bad field.

A record is plain JSON (what sits in a shard's `json` member). `validate_record` checks one and raises
`SchemaError` whose message starts with the dotted path of the first field that is wrong, e.g.
`objects[2].bbox: x2 (10.0) must be > x1 (12.0)`.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = "medmo/v1"

TASKS = (
    "caption", "report", "vqa", "mcq", "grounding", "detection", "classification",
    "text_qa", "instruction", "reasoning", "summarization",
)
MODALITIES = (
    "ct", "mri", "xray", "ultrasound", "pathology", "microscopy", "fundus", "oct", "dermoscopy",
    "endoscopy", "pet", "spect", "clinical_photo", "mixed", "none",
)
SPLITS = ("train", "val", "test")
ACCESS = ("open", "registered", "credentialed")
ROLES = ("system", "user", "assistant")
PART_TYPES = ("image", "text", "objects")
IMAGE_EXTS = ("png", "jpg")
# Text an objects label may not contain: rendered as `label <box>[[...]]</box>` lines (or JSON `bbox_2d`
# items), a label holding any of these could forge or hide a box in the answer a model is trained on.
# Newlines and every other control / line-separator character are refused as well (see label_markup).
BOX_MARKUP = ("<box>", "</box>", "<ref>", "</ref>", "[[", "]]", "bbox_2d", "<|")


class SchemaError(ValueError):
    """A record breaks the schema; the message begins with the offending field's path."""

    def __init__(self, path: str, problem: str):
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


@dataclass
class Obj:
    """One box, in pixels of the STORED image `image` (XYXY, floats)."""

    image: int
    label: str
    bbox: list[float]

    def to_json(self) -> dict[str, Any]:
        return {"image": self.image, "label": self.label, "bbox": [float(v) for v in self.bbox]}


@dataclass
class ImageMeta:
    member: str
    width: int
    height: int
    source_width: int
    source_height: int
    derivation: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "member": self.member, "width": self.width, "height": self.height,
            "source_width": self.source_width, "source_height": self.source_height,
            "derivation": self.derivation,
        }


def text(s: str) -> dict[str, str]:
    return {"type": "text", "text": s}


def image() -> dict[str, str]:
    return {"type": "image"}


def objects() -> dict[str, str]:
    return {"type": "objects"}


def turn(role: str, *parts: dict[str, str] | str) -> dict[str, Any]:
    """A chat turn; bare strings become text parts."""
    return {"role": role, "content": [text(p) if isinstance(p, str) else p for p in parts]}


def label_markup(label: str) -> str | None:
    """The first BOX_MARKUP token or control / line-separator character in `label`, or None."""
    for token in BOX_MARKUP:
        if token in label:
            return token
    for ch in label:
        if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") and ch not in "\u200d":
            return ch
    return None


def _need(cond: bool, path: str, problem: str) -> None:
    if not cond:
        raise SchemaError(path, problem)


def _is_str(v: Any) -> bool:
    return isinstance(v, str)


def validate_bbox(bbox: Any, width: float, height: float, path: str) -> None:
    # `if not ...: raise`: the messages quote the box, formatted only when it fails
    if not (isinstance(bbox, list) and len(bbox) == 4):
        raise SchemaError(path, f"must be a list of 4 numbers, got {bbox!r}")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in bbox):
        raise SchemaError(path, f"must hold numbers, got {bbox!r}")
    x1, y1, x2, y2 = bbox
    if not all(math.isfinite(v) for v in bbox):
        raise SchemaError(path, f"non-finite coordinate in {bbox!r}")
    if not x2 > x1:
        raise SchemaError(path, f"x2 ({x2}) must be > x1 ({x1})")
    if not y2 > y1:
        raise SchemaError(path, f"y2 ({y2}) must be > y1 ({y1})")
    if not (x1 >= 0 and y1 >= 0):
        raise SchemaError(path, f"negative coordinate in {bbox!r}")
    if not (x2 <= width and y2 <= height):
        raise SchemaError(path, f"{bbox!r} outside the {width}x{height} image")


def validate_messages(messages: Any, n_images: int, has_objects: bool) -> int:
    """Raise SchemaError on bad turns; the number of objects parts."""
    # Checks are spelled `if not ...: raise` (not `_need(cond, f"...")`) in the per-turn and per-part
    # loops: the path and message strings are then only formatted for the record that fails.
    if not (isinstance(messages, list) and messages):
        raise SchemaError("messages", "must be a non-empty list")
    image_parts = 0
    object_parts = 0
    roles = []  # without the system turns
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            raise SchemaError(f"messages[{i}]", "must be an object")
        role = msg.get("role")
        if role not in ROLES:
            raise SchemaError(f"messages[{i}].role", f"must be one of {ROLES}, got {role!r}")
        if role != "system":
            roles.append(role)
        content = msg.get("content")
        if not (isinstance(content, list) and content):
            raise SchemaError(f"messages[{i}].content", "must be a non-empty list of parts")
        for j, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind not in PART_TYPES:
                raise SchemaError(f"messages[{i}].content[{j}].type", f"must be one of {PART_TYPES}")
            if kind == "text":
                if not isinstance(part.get("text"), str):
                    raise SchemaError(f"messages[{i}].content[{j}].text", "must be a string")
            elif kind == "image":
                image_parts += 1
            else:
                if role != "assistant":
                    raise SchemaError(f"messages[{i}].content[{j}].type", "objects parts belong in assistant turns")
                object_parts += 1
    if not roles or roles[0] != "user":
        raise SchemaError("messages", "first non-system turn must be the user's")
    if roles[-1] != "assistant":
        raise SchemaError("messages", "last turn must be the assistant's")
    for a, b in zip(roles, roles[1:], strict=False):
        if a == b:
            raise SchemaError("messages", "user and assistant turns must alternate")
    if image_parts != n_images:
        raise SchemaError("messages", f"{image_parts} image placeholders but {n_images} images")
    if object_parts and not has_objects:
        raise SchemaError("messages", "an objects part needs at least one object")
    return object_parts


def validate_record(rec: Any) -> None:
    """Raise SchemaError naming the first bad field of a `medmo/v1` record."""
    # `if not ...: raise` as in validate_messages: nothing is formatted for a good record
    if not isinstance(rec, dict):
        raise SchemaError("record", "must be a JSON object")
    if rec.get("schema") != SCHEMA_VERSION:
        raise SchemaError("schema", f"must be {SCHEMA_VERSION!r}")
    for key in ("id", "source", "license"):
        if not (_is_str(rec.get(key)) and rec[key] != ""):
            raise SchemaError(key, "must be a non-empty string")
    if rec.get("split") not in SPLITS:
        raise SchemaError("split", f"must be one of {SPLITS}, got {rec.get('split')!r}")
    if rec.get("task") not in TASKS:
        raise SchemaError("task", f"must be one of {TASKS}, got {rec.get('task')!r}")
    if rec.get("modality") not in MODALITIES:
        raise SchemaError("modality", f"must be one of {MODALITIES}, got {rec.get('modality')!r}")
    if rec.get("access") not in ACCESS:
        raise SchemaError("access", f"must be one of {ACCESS}, got {rec.get('access')!r}")
    images = rec.get("images")
    _need(isinstance(images, list), "images", "must be a list")
    for i, im in enumerate(images):
        p = f"images[{i}]"
        _need(isinstance(im, dict), p, "must be an object")
        member = im.get("member")  # "<i>.<ext>"
        head, _, ext = member.partition(".") if isinstance(member, str) else ("", "", "")
        if not (head == str(i) and ext in IMAGE_EXTS):
            raise SchemaError(f"{p}.member", f"must be '{i}.png' or '{i}.jpg', got {im.get('member')!r}")
        for k in ("width", "height", "source_width", "source_height"):
            v = im.get(k)
            if not (isinstance(v, int) and not isinstance(v, bool) and v > 0):
                raise SchemaError(f"{p}.{k}", f"must be a positive integer, got {v!r}")
        _need(isinstance(im.get("derivation"), dict), f"{p}.derivation", "must be an object")
    objs = rec.get("objects")
    _need(isinstance(objs, list), "objects", "must be a list")
    for i, ob in enumerate(objs):
        p = f"objects[{i}]"
        _need(isinstance(ob, dict), p, "must be an object")
        idx = ob.get("image")
        if not (isinstance(idx, int) and 0 <= idx < len(images)):
            raise SchemaError(f"{p}.image", f"must index one of the {len(images)} images, got {idx!r}")
        _need(_is_str(ob.get("label")) and ob["label"].strip() != "", f"{p}.label", "must be a non-empty string")
        bad = label_markup(ob["label"])
        if bad is not None:
            raise SchemaError(f"{p}.label", f"must not contain box markup or control characters, found {bad!r}")
        validate_bbox(ob.get("bbox"), images[idx]["width"], images[idx]["height"], f"{p}.bbox")
    object_parts = validate_messages(rec.get("messages"), len(images), bool(objs))
    if object_parts and rec["task"] not in ("grounding", "detection"):
        raise SchemaError("messages", "objects parts are for grounding/detection tasks")
    if not isinstance(rec.get("target"), dict):
        raise SchemaError("target", "must be an object")
    if not isinstance(rec.get("meta"), dict):
        raise SchemaError("meta", "must be an object")
