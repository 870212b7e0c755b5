"""RawSample -> final `medmo/v1` record + encoded image members.

Decode each image, cap its longest side, move the boxes with the pixels, encode (or pass JPEG bytes
through untouched), then validate the whole record. Any failure raises `SampleRejected(reason, detail)`.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from typing import Any

import numpy as np
from PIL import Image

from medmo_data.mix.fingerprint import fingerprint
from medmo_data.pixels import boxes
from medmo_data.pixels.decode import Decoded, decode, read_source
from medmo_data.pixels.transform import DecodeError, fit_longest_side, resize
from medmo_data.recipe import ImageSource, RawSample, SourceInfo
from medmo_data.schema import SCHEMA_VERSION, SchemaError, label_markup, validate_record

from .image_memo import ImageMemo, NormalizedImage, memoizable, source_options


class SampleRejected(Exception):
    """`file`: the image the reason is about (written to rejects.jsonl relative to the input, or hashed)."""

    def __init__(self, reason: str, detail: str = "", file: str | None = None):
        self.reason = reason
        self.detail = detail
        self.file = file
        super().__init__(f"{reason}: {detail}")


@dataclass(frozen=True)
class NormalizeOptions:
    max_side: int | None = 1280  # longest side of stored images; the largest stage resolution
    png_level: int = 4  # zlib level: 1 is ~2x faster than 6 for ~17% larger files (bench/)
    jpeg_quality: int = 95
    drop_burned_in: bool = False


def _encode(img: Image.Image, fmt: str, opts: NormalizeOptions) -> bytes:
    buf = io.BytesIO()
    if fmt == "jpg":
        img.save(buf, format="JPEG", quality=opts.jpeg_quality, subsampling=0 if opts.jpeg_quality >= 90 else 2)
    else:
        img.save(buf, format="PNG", compress_level=opts.png_level)
    return buf.getvalue()


def _check_text(value: Any, path: str) -> None:
    """Every string must encode as UTF-8 (surrogate-escaped bytes from a bad file cannot)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise SampleRejected("non_utf8_text", f"{path}: {exc.reason}") from exc
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_text(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_text(v, f"{path}[{i}]")


def _is_box(bbox: Any) -> bool:
    return isinstance(bbox, (list, tuple)) and len(bbox) == 4 and all(
        isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and math.isfinite(v)
        for v in bbox)


def process_image(dec: Decoded, fmt: str, opts: NormalizeOptions) -> NormalizedImage:
    """Encoded member bytes, its images[] fields, the x/y scale applied to boxes, and its fingerprints."""
    w, h = dec.width, dec.height
    nw, nh = fit_longest_side(w, h, opts.max_side)
    deriv = dict(dec.derivation)
    passed = dec.original is not None and fmt == dec.original_format and (nw, nh) == (w, h)
    if passed:
        img = dec.decoded or dec.image()  # read by the fingerprints only
    else:
        img = dec.image()
        if (nw, nh) != (w, h):
            img = resize(img, (nw, nh))
            deriv["resized"] = {"from": [w, h], "to": [nw, nh], "filter": "lanczos"}
    # Fingerprints before the encoder: the pixels are still in cache (zlib's tables evict them), ~0.1 ms
    # per 512^2 slice. Unresized pixels are hashed from the decoder's array: same bytes as np.asarray(img).
    same = (nw, nh) == (w, h) and dec.pixels.dtype == np.uint8
    exact, dhash, thumb = fingerprint(img, dec.pixels if same else None)
    fp = {"hash": exact, "dhash": dhash, "thumb": thumb}
    if passed:
        data = dec.original
        deriv["pass_through"] = True
    else:
        data = _encode(img, fmt, opts)
    return NormalizedImage(data, fmt, nw, nh, w, h, deriv, (nw / w, nh / h), fp)


def normalize_image(src: ImageSource, fmt: str, opts: NormalizeOptions, memo: ImageMemo | None) -> NormalizedImage:
    """One image of a record, from `memo` when this task already normalized the same bytes the same way."""
    if memo is None or not memoizable(src):
        return process_image(decode(src, drop_burned_in=opts.drop_burned_in), fmt, opts)
    data = read_source(src)  # the checks and errors decode() starts with, before any key is made
    key = memo.key(data, (source_options(src), fmt, opts))
    if key is not None and (done := memo.get(key, data)) is not None:
        return done
    done = process_image(decode(src, drop_burned_in=opts.drop_burned_in, data=data), fmt, opts)
    if key is not None:
        memo.put(key, data, done)
    return done


Normalized = tuple[dict[str, Any], dict[str, bytes], list[dict[str, Any]]]


# One encoder for every call: json.dumps with these options builds a new JSONEncoder each time (same output).
_JSON = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False)


def dump_json(obj: Any) -> bytes:
    """The one JSON encoding of the project's files: UTF-8, sorted keys, compact, strict (no NaN)."""
    return _JSON.encode(obj).encode()


def compact_encoder(sort_keys: bool, allow_nan: bool) -> Callable[[Any], str]:
    """`JSONEncoder(ensure_ascii=False, separators=(",", ":"), ...).encode` for values without cycles,
    without its set-up on every call (~2 us, most of encoding a small dict): the C encoder is built once.
    No circular check: a cycle recurses until RecursionError instead of raising ValueError."""
    enc = json.JSONEncoder(ensure_ascii=False, sort_keys=sort_keys, separators=(",", ":"),
                           allow_nan=allow_nan)
    if c_make_encoder is None:  # an interpreter without the _json accelerator
        return enc.encode
    c_enc = c_make_encoder(None, enc.default, encode_basestring, None, ":", ",", sort_keys, False, allow_nan)
    return lambda obj: "".join(c_enc(obj, 0))


_encode_record = compact_encoder(sort_keys=True, allow_nan=False)


def _record_json(rec: dict[str, Any]) -> bytes:
    """dump_json(rec) without its per-call set-up (a cycle is a RecursionError: the walk in normalize then
    raises it). The C encoder runs as deep in the stack as dump_json's did, so a record nested near the
    recursion limit still gets the same outcome."""
    return _encode_record(rec).encode()


def normalize(raw: RawSample, info: SourceInfo, opts: NormalizeOptions, memo: ImageMemo | None = None) -> Normalized:
    """The record, its members {"json": encoded record, "0.png": bytes, ...} and per-image fingerprints.

    A string that is not UTF-8 outranks every other reason, as when it was checked first. Encoding the
    record fails on one, so the walk that names its path runs only when anything failed (it was ~7% of a
    text sample's build CPU)."""
    try:
        return _normalize(raw, info, opts, memo)
    except Exception:
        _check_text(raw.id, "id")
        _check_text(raw.messages, "messages")
        _check_text(raw.target, "target")
        _check_text(raw.meta, "meta")
        raise


def _normalize(raw: RawSample, info: SourceInfo, opts: NormalizeOptions, memo: ImageMemo | None) -> Normalized:
    members: dict[str, bytes] = {}
    metas: list[dict[str, Any]] = []
    scales: list[tuple[float, float, int, int]] = []
    fps: list[dict[str, Any]] = []
    for i, src in enumerate(raw.images):
        try:
            done = normalize_image(src, src.member_format or info.image_format, opts, memo)
        except DecodeError as exc:
            raise SampleRejected(exc.reason, f"image {i}: {exc.detail}", src.path) from exc
        meta = done.meta(i)
        members[meta["member"]] = done.data
        fps.append(done.fingerprint)
        metas.append(meta)
        scales.append((*done.scale, done.source_width, done.source_height))
    objs = []
    for j, ob in enumerate(raw.objects):
        idx = ob.get("image", 0)
        if not isinstance(idx, int) or not 0 <= idx < len(scales):
            raise SampleRejected("bad_box", f"objects[{j}].image {idx!r} names no image")
        sx, sy, w, h = scales[idx]
        bbox = ob.get("bbox")
        if not _is_box(bbox):  # "1234" or {"x": ...} is no box, even if it iterates to four values
            got = repr(list(bbox))[:80] if isinstance(bbox, (list, tuple)) else f"a {type(bbox).__name__}"
            raise SampleRejected("bad_box", f"objects[{j}].bbox must be a list of four finite numbers, got {got}")
        if ob.get("normalized"):
            # Fractions of the source image (YOLO and other relative frames): size is known only now.
            bbox = boxes.scale(bbox, w, h)
        try:
            box = boxes.check(bbox, w, h)
        except boxes.BoxError as exc:
            raise SampleRejected("bad_box", f"objects[{j}].bbox: {exc}") from exc
        label = ob.get("label")
        if not isinstance(label, str) or not label.strip():
            raise SampleRejected("unknown_label", f"objects[{j}].label {label!r}")
        if markup := label_markup(label):
            raise SampleRejected("label_markup", f"objects[{j}].label holds {markup!r}, which would forge box "
                                 "text when rendered")
        nw, nh = metas[idx]["width"], metas[idx]["height"]
        objs.append({"image": idx, "label": label, "bbox": boxes.clip(boxes.scale(box, sx, sy), nw, nh)})
    rec = {
        "schema": SCHEMA_VERSION,
        "id": raw.id,
        "source": info.name,
        "split": raw.split,
        "task": raw.task,
        "modality": raw.modality or info.modality,
        "messages": raw.messages,
        "images": metas,
        "objects": objs,
        "target": raw.target,
        "license": info.license,
        "access": info.access,
        "meta": raw.meta,
    }
    try:
        validate_record(rec)
        members["json"] = _record_json(rec)  # encoded once, here: a NaN or a surrogate anywhere rejects it
    except SchemaError as exc:
        raise SampleRejected("schema", str(exc)) from exc
    except ValueError as exc:
        raise SampleRejected("schema", f"record is not strict JSON: {exc}") from exc
    return rec, members, fps
