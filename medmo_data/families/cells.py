"""Cell microscopy -> detection samples (DeepCell, Cell Tracking Challenge, Bacteria).

- Boxes come from instance-label masks (`boxes.from_instance_mask`: one box per id > 0, so touching cells
  stay apart) or from YOLO files (`medmo_data.families.yolo`); all cells of one image make ONE detection sample.
- The per-sample box cap: a sample with more than `max_boxes` boxes is a `Reject("too_many_boxes")`, so
  the manifest counts every image lost to the cap (MedMO dropped them silently: cap 100, 30 or 40).
- Empty images: `empty="reject"` (`no_objects`; a mask with no ids is an unannotated frame, not proof of
  an empty field) or `empty="negative"` (a text answer `None found.`; for label files where an empty file
  is the annotator saying "nothing here").
- `composite` turns float multi-channel tiles into 8-bit RGB, each channel by its own percentiles.
- `iter_npy_rows` streams the first-axis rows of an array inside an `.npz`, so a 5 GB TissueNet split
  never sits in memory.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

from medmo_data.formats.archive import open_zip
from medmo_data.pixels import boxes
from medmo_data.pixels.transform import rescale_to_uint8
from medmo_data.recipe import ImageSource, RawSample, Reject, SourceError
from medmo_data.render import HINT, NO_OBJECTS
from medmo_data.schema import image, objects, turn

DEFAULT_MAX_BOXES = 100


def max_boxes_option(options: Mapping[str, Any], default: int = DEFAULT_MAX_BOXES) -> int:
    value = int(options.get("max_boxes", default))
    if value < 1:
        raise ValueError(f"max_boxes must be >= 1, got {value}")
    return value


def read_mask(path: Path, data: bytes | None = None) -> np.ndarray:
    """An instance-label image (16-bit TIFF or PNG, by `path`'s suffix) as an integer array, from `data` when
    given (a zip member) else from `path`; raises ValueError when unreadable."""
    src = io.BytesIO(data) if data is not None else path
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            arr = tifffile.imread(src)
        else:
            from PIL import Image

            with Image.open(src) as img:
                arr = np.asarray(img)
    except FileNotFoundError:
        raise
    except Exception as exc:  # noqa: BLE001 - tifffile and PIL raise many types on bad files
        raise ValueError(f"{path}: unreadable mask ({type(exc).__name__}: {exc})") from exc
    if arr.dtype.kind not in "iub":
        raise ValueError(f"{path}: mask dtype {arr.dtype} is not an integer label image")
    return arr


def load_mask_2d(path: Path, sid: str, volume_reason: str = "bad_shape", data: bytes | None = None
                 ) -> np.ndarray | Reject:
    """A 2-D instance mask, or the Reject that says why it cannot be one (unreadable, or a volume)."""
    try:
        mask = read_mask(path, data)
    except ValueError as exc:
        return Reject(sid, "corrupt_mask", str(exc))
    if mask.ndim != 2:
        return Reject(sid, volume_reason, f"{path.name}: mask of shape {mask.shape} is not 2-D")
    return mask


def mask_objects(mask: np.ndarray, label: str, image_index: int = 0) -> list[dict[str, Any]]:
    """One object per instance id of a 2-D label image, in id order."""
    return [{"image": image_index, "label": label, "bbox": b} for _, b in boxes.from_instance_mask(mask)]


def detection_prompt(noun: str, what: str) -> str:
    return f"Detect every {noun} in this {what}. {HINT}"


def detection_sample(sid: str, split: str, images: Sequence[ImageSource], objs: list[dict[str, Any]],
                     prompt: str, max_boxes: int, meta: dict[str, Any], empty: str = "reject"
                     ) -> RawSample | Reject:
    """One detection sample for all objects of an image, or a counted Reject (cap / empty)."""
    n = len(objs)
    if n > max_boxes:
        return Reject(sid, "too_many_boxes", f"{n} boxes > max_boxes {max_boxes}")
    if n == 0 and empty == "reject":
        return Reject(sid, "no_objects", "no annotated instance")
    answer = turn("assistant", objects()) if objs else turn("assistant", NO_OBJECTS)
    return RawSample(
        id=sid, split=split, task="detection", images=list(images),
        messages=[turn("user", *([image()] * len(images)), prompt), answer],
        objects=objs, target={"labels": sorted({o["label"] for o in objs}), "count": n},
        meta={**meta, "boxes": n},
    )


def composite(channels: Sequence[np.ndarray | None]) -> np.ndarray:
    """HxWx3 uint8 from up to three float/int planes (None = black), each scaled by its 0.5-99.5 percentiles."""
    shape = next(c.shape for c in channels if c is not None)
    out = np.zeros((*shape, 3), dtype=np.uint8)
    for k, ch in enumerate(channels):
        if ch is not None:
            out[:, :, k], _ = rescale_to_uint8(ch, "percentile")
    return out


def npy_header(member) -> tuple[tuple[int, ...], np.dtype]:
    version = np.lib.format.read_magic(member)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(member)
    else:
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(member)
    if fortran:
        raise ValueError("Fortran-ordered array cannot be streamed by rows")
    if dtype.hasobject:
        raise ValueError("object arrays cannot be streamed")
    return shape, dtype


def open_npz(src: Path | IO[bytes], label: str = "") -> zipfile.ZipFile:
    """An .npz on disk, or one copied out of a release zip (a seekable temporary file, named by `label`);
    a file that is not an .npz stops the build with its name."""
    if isinstance(src, Path):
        return open_zip(src)
    try:
        return zipfile.ZipFile(src)
    except zipfile.BadZipFile as exc:
        raise SourceError(f"{label}: not a readable .npz ({exc})") from exc


def npz_shape(src: Path | IO[bytes], key: str, label: str = "") -> tuple[tuple[int, ...], np.dtype] | None:
    """Shape and dtype of `key` in an .npz, read from its header only; None if the key is absent."""
    with open_npz(src, label) as zf:
        if f"{key}.npy" not in zf.namelist():
            return None
        with zf.open(f"{key}.npy") as member:
            return npy_header(member)


def iter_npy_rows(src: Path | IO[bytes], key: str, label: str = "") -> Iterator[np.ndarray]:
    """Rows `arr[i]` of array `key` in an .npz, read one at a time (compressed or not)."""
    with open_npz(src, label) as zf, zf.open(f"{key}.npy") as member:
        shape, dtype = npy_header(member)
        row_shape = shape[1:]
        row_bytes = int(np.prod(row_shape, dtype=np.int64)) * dtype.itemsize
        for i in range(shape[0]):
            buf = member.read(row_bytes)
            if len(buf) != row_bytes:
                raise ValueError(f"{label or src}: {key}.npy ends inside row {i}")
            yield np.frombuffer(buf, dtype=dtype).reshape(row_shape)
