"""ImageSource -> pixels. Dispatches to the DICOM, NIfTI and raster (PNG/JPEG/TIFF/array) decoders.

Returns a `Decoded`: 8-bit pixels (plus the original file when it can pass through: a JPEG as it is, an
8-bit grey/RGB PNG with only its image chunks), the source size, and a derivation dict recorded in the
sample's `images[i]`.
"""

from __future__ import annotations

import io
import math
import os
import re
import stat
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from medmo_data.recipe import ImageSource

from .dicom import read_dicom
from .limits import MAX_FILE_BYTES, MAX_PIXELS, MAX_SAMPLES
from .nifti import AXES, read_nifti_slice
from .transform import (
    DecodeError,
    rescale_table,
    rescale_to_uint8,
    resolve_window,
    window_table,
)

_DICOM_MAGIC = b"DICM"
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
_NIFTI_SUFFIXES = (".nii", ".nii.gz")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_IMAGE_CHUNKS = (b"IHDR", b"IDAT", b"IEND")  # all a grey/RGB PNG needs; text, EXIF, ICC, time dropped


def png_image_chunks(data: bytes) -> tuple[bytes, int] | None:
    """An 8-bit grey or RGB, non-interlaced PNG reduced to IHDR + IDAT + IEND (the pixels, none of the
    metadata a text or EXIF chunk may carry) and how many chunks were dropped; None for any other PNG.
    Chunk bytes, CRCs included, are copied unchanged, so the pixels decode exactly as from the file."""
    if not data.startswith(_PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None
    depth, colour, _, _, interlace = data[24:29]
    if depth != 8 or colour not in (0, 2) or interlace != 0:
        return None
    keep, dropped, pos = [_PNG_SIGNATURE], 0, 8
    while pos + 12 <= len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        kind, end = data[pos + 4:pos + 8], pos + 12 + length
        if end > len(data):
            return None
        if kind in _PNG_IMAGE_CHUNKS:
            if kind == b"IHDR" and zlib.crc32(data[pos + 4:end - 4]) != int.from_bytes(data[end - 4:end], "big"):
                return None
            keep.append(data[pos:end])
        else:
            dropped += 1
        pos = end
        if kind == b"IEND":
            return (data if not dropped and pos == len(data) else b"".join(keep)), dropped
    return None


@dataclass
class Decoded:
    pixels: np.ndarray  # uint8 HxW or HxWx3
    width: int
    height: int
    derivation: dict[str, Any] = field(default_factory=dict)
    original: bytes | None = None  # the file's own encoding of these pixels, stored as-is if no resize is needed
    original_format: str | None = None  # its member extension: "jpg" or "png"
    # The decoder's own image of exactly `pixels`, for reading only (fingerprints of a passed-through file):
    # never encoded, since a format plugin's image carries the file's info (comment, ICC) into a save.
    decoded: Image.Image | None = None

    def image(self) -> Image.Image:
        return Image.fromarray(self.pixels, "L" if self.pixels.ndim == 2 else "RGB")


# Modes whose Pillow buffer is exactly the array np.asarray makes (one block of rows, no padding, this
# byte order): 8-bit grey, and 16-bit grey stored little-endian (Pillow's I;16). RGB is stored as RGBX.
_VIEWABLE = {"L": np.dtype(np.uint8), "I;16": np.dtype("<u2"), "I;16L": np.dtype("<u2")}


def pixel_view(img: Image.Image, dtype: Any = None) -> np.ndarray:
    """`np.asarray(img, dtype=dtype)`, as a read-only view of Pillow's own buffer (its Arrow export, no
    copy) where one exists: np.asarray copies through `tobytes`, which costs 0.4 of a 512^2 JPEG decode
    and 0.2 of a 16-bit PNG's. Other modes (RGB is stored as RGBX), an image allocated in several memory
    blocks, or a Pillow without Arrow export: the copy."""
    want = _VIEWABLE.get(img.mode)
    if want is not None and want.isnative and (dtype is None or np.dtype(dtype) == want) \
            and hasattr(img, "__arrow_c_array__"):
        import pyarrow as pa

        try:
            arr = pa.array(img)
        except ValueError:  # "rows are not contiguous": a large image allocated in several blocks
            arr = None
        n = img.width * img.height
        if arr is not None and arr.offset == 0 and len(arr) == n and arr.type.bit_width == 8 * want.itemsize:
            return np.frombuffer(arr.buffers()[1], want, n).reshape(img.height, img.width)
    return np.asarray(img, dtype=dtype)


def check_file(path: str, cap: int | None = MAX_FILE_BYTES) -> int:
    """Size of a regular file, checked without opening it: a FIFO or device would block or never end,
    and a file over `cap` is refused rather than read whole (None: the reader never reads it whole)."""
    try:
        st = os.stat(path)
    except FileNotFoundError as exc:
        raise DecodeError("missing_image", "file does not exist") from exc
    except OSError as exc:
        raise DecodeError("unreadable_image", f"cannot stat the file: {exc.strerror or type(exc).__name__}") from exc
    if not stat.S_ISREG(st.st_mode):
        raise DecodeError("not_a_regular_file", "a FIFO, socket, device or folder, not an image file")
    if cap is not None and st.st_size > cap:
        raise DecodeError("file_too_large", f"{st.st_size} bytes exceeds the {cap}-byte cap")
    return st.st_size


def _read_bytes(src: ImageSource) -> bytes:
    if src.data is not None:
        if len(src.data) > MAX_FILE_BYTES:
            raise DecodeError("file_too_large", f"{len(src.data)} bytes exceeds the {MAX_FILE_BYTES}-byte cap")
        return src.data
    size = check_file(src.path)  # type: ignore[arg-type]
    try:
        with open(src.path, "rb") as f:  # type: ignore[arg-type]
            # read(cap + 1) would allocate the whole cap for every file: read the stat's size (+1 to see
            # growth), and only a file that grew after the stat reads on, still capped.
            data = f.read(size + 1)
            if len(data) > size:
                data += f.read(MAX_FILE_BYTES + 1 - len(data))
    except FileNotFoundError as exc:
        raise DecodeError("missing_image", "file does not exist") from exc
    except OSError as exc:
        raise DecodeError("unreadable_image", f"{exc.strerror or exc}") from exc
    if len(data) > MAX_FILE_BYTES:
        raise DecodeError("file_too_large", f"more than the {MAX_FILE_BYTES}-byte cap")
    return data


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and math.isfinite(v)


def check_source(src: ImageSource) -> None:
    """Reject an ImageSource whose options come from bad metadata before anything is read."""
    if src.window is not None:
        resolve_window(src.window)
    if not _is_number(src.value_offset):
        raise DecodeError("bad_value_offset", f"value_offset must be one finite number, got a "
                          f"{type(src.value_offset).__name__}")
    if not isinstance(src.axis, str) or src.axis not in AXES:
        raise DecodeError("bad_axis", f"axis must be one of {sorted(AXES)}")
    for name in ("slice_index", "frame"):
        v = getattr(src, name)
        if v is not None and (not isinstance(v, (int, np.integer)) or isinstance(v, bool)):
            raise DecodeError(f"bad_{name.split('_')[0]}", f"{name} must be an integer, got a {type(v).__name__}")
    if src.rescale is not None and not (isinstance(src.rescale, (list, tuple)) and len(src.rescale) == 2
                                        and all(_is_number(v) for v in src.rescale)):
        raise DecodeError("bad_rescale", "rescale must be (slope, intercept), two finite numbers")
    if src.mode not in (None, "L", "RGB"):
        raise DecodeError("bad_mode", "mode must be L or RGB")
    if src.normalize not in (None, "minmax", "percentile"):
        raise DecodeError("bad_normalize", "normalize must be minmax or percentile")


def _check_array(arr: np.ndarray) -> None:
    if arr.size > MAX_SAMPLES:
        raise DecodeError("decompression_bomb", f"array of {arr.size} values exceeds {MAX_SAMPLES}")


def _kind(src: ImageSource, head: bytes) -> str:
    if src.kind != "auto":
        return src.kind
    name = (src.path or "").lower()
    if name.endswith(_NIFTI_SUFFIXES):
        return "nifti"
    if name.endswith(".dcm") or head[128:132] == _DICOM_MAGIC:
        return "dicom"
    return "raster"


def _finish_grey(values: np.ndarray, src: ImageSource, deriv: dict[str, Any]) -> np.ndarray:
    """Windowing / rescaling for numeric (non-uint8 or explicitly windowed) grey pixels: through one table
    per (offset, window) for 8/16-bit stored values (transform.lookup), else the float64 formula."""
    offset = src.value_offset

    def shifted(stored: np.ndarray) -> np.ndarray:
        v = stored.astype(np.float64, copy=False)
        return v + offset if offset else v

    if offset:
        deriv["value_offset"] = offset
    if src.window is not None:
        lo, hi = resolve_window(src.window)
        deriv["window"] = {"source": src.window if isinstance(src.window, str) else "given", "lo": lo, "hi": hi}
        return window_table(values, lo, hi, shifted, key=("offset", float(offset)))
    method = src.normalize or "minmax"
    done = rescale_table(values, shifted) if method == "minmax" else None
    out, how = done if done is not None else rescale_to_uint8(shifted(values), method)
    deriv["rescale"] = how
    return out


def _from_array(arr: np.ndarray, src: ImageSource, deriv: dict[str, Any]) -> np.ndarray:
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[:, :, :3]
    if arr.ndim == 2:
        if arr.dtype == np.uint8 and src.window is None and not src.value_offset and src.normalize is None:
            return arr
        return _finish_grey(arr, src, deriv)
    if arr.ndim == 3 and arr.shape[2] == 3:
        if arr.dtype == np.uint8:
            return arr
        out, how = rescale_to_uint8(arr, src.normalize or "minmax")
        deriv["rescale"] = how
        return out
    raise DecodeError("bad_shape", f"pixels of shape {arr.shape} are neither HxW nor HxWx3")


def _raster(data: bytes, src: ImageSource) -> Decoded:
    deriv: dict[str, Any] = {}
    bio = io.BytesIO(data)
    try:
        img = Image.open(bio)
        w, h = img.size
        if w * h > MAX_PIXELS:
            raise DecodeError("decompression_bomb", f"declared size {w}x{h} exceeds {MAX_PIXELS} pixels")
        fmt = (img.format or "").upper()
        deriv["format"] = fmt.lower() or "raster"
        if fmt == "TIFF":
            import tifffile

            with tifffile.TiffFile(io.BytesIO(data)) as tf:  # every page's declared size, before decoding
                declared = math.prod(tf.series[0].shape) if tf.series else 0
            if declared > MAX_SAMPLES:
                raise DecodeError("decompression_bomb", f"TIFF declares {declared} values, over {MAX_SAMPLES}")
            arr = tifffile.imread(io.BytesIO(data))
            if arr.ndim == 3 and arr.shape[0] < 5 and arr.shape[-1] > 4:
                arr = arr[0]  # first page / channel plane of a multi-page TIFF
                deriv["page"] = 0
        elif fmt == "JPEG" and img.mode in ("L", "RGB") and src.mode in (None, img.mode) \
                and src.window is None and not src.normalize:
            img.load()  # decodes fully: a truncated JPEG fails here, not in a training run
            return Decoded(pixel_view(img), w, h, deriv, original=data, original_format="jpg", decoded=img)
        elif fmt == "PNG" and img.mode in ("L", "RGB") and src.mode in (None, img.mode) and src.window is None \
                and not src.normalize and not src.value_offset and (png := png_image_chunks(data)) is not None:
            img.load()  # full decode: a truncated or corrupt stream is rejected here
            if png[1]:
                deriv["png_chunks_dropped"] = png[1]
            return Decoded(pixel_view(img), w, h, deriv, original=png[0], original_format="png", decoded=img)
        else:
            img.load()
            if img.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = pixel_view(img, np.int32 if img.mode == "I" else np.uint16)
            elif img.mode in ("RGBA", "LA", "P", "CMYK", "YCbCr", "1", "F"):
                target = "L" if img.mode in ("LA", "1") else ("F" if img.mode == "F" else "RGB")
                arr = np.asarray(img.convert(target))
                deriv["converted_from"] = img.mode
            else:
                arr = np.asarray(img)
    except DecodeError:
        raise
    except Image.DecompressionBombError as exc:
        raise DecodeError("decompression_bomb", str(exc)) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, KeyError, IndexError, TypeError) as exc:
        # PIL names the BytesIO "at 0x7f..": drop the address, rejects.jsonl is the same on every run.
        raise DecodeError("corrupt_image", _ADDRESS.sub("", f"{type(exc).__name__}: {exc}")) from exc
    pixels = _from_array(np.asarray(arr), src, deriv)
    return Decoded(pixels=pixels, width=pixels.shape[1], height=pixels.shape[0], derivation=deriv)


def _apply_mode(dec: Decoded, mode: str | None) -> Decoded:
    if mode is None:
        return dec
    px = dec.pixels
    if mode == "L" and px.ndim == 3:
        dec.pixels = np.asarray(Image.fromarray(px, "RGB").convert("L"))
        dec.derivation["converted_to"] = "L"
        dec.decoded = None
    elif mode == "RGB" and px.ndim == 2:
        dec.pixels = np.repeat(px[:, :, None], 3, axis=2)
        dec.derivation["converted_to"] = "RGB"
        dec.decoded = None
    return dec


def read_source(src: ImageSource) -> bytes:
    """The bytes `decode` reads for a file or bytes source (not an array or NIfTI volume), with the same
    checks first and the same errors, so a caller can look at them before decoding."""
    check_source(src)
    data = _read_bytes(src)
    if not data:
        raise DecodeError("empty_file", "zero bytes")
    return data


def decode(src: ImageSource, drop_burned_in: bool = False, data: bytes | None = None) -> Decoded:
    """Decode one image source; raises DecodeError with a manifest reason on any failure. `data`: the
    source's bytes as `read_source` returned them, when the caller has read them already."""
    check_source(src)
    if src.array is not None:
        deriv: dict[str, Any] = {"format": "array"}
        arr = np.asarray(src.array)
        _check_array(arr)
        px = _from_array(arr, src, deriv)
        return _apply_mode(Decoded(px, px.shape[1], px.shape[0], deriv), src.mode)
    if src.kind == "nifti" or (src.kind == "auto" and (src.path or "").lower().endswith(_NIFTI_SUFFIXES)):
        if src.path is None:
            raise DecodeError("bad_source", "NIfTI sources must be files")
        check_file(src.path, cap=None)  # read one slice at a time; the declared volume is capped instead
        px, deriv = read_nifti_slice(src.path, src.slice_index, src.axis, src.window, rescale=src.rescale)
        return _apply_mode(Decoded(px, px.shape[1], px.shape[0], deriv), src.mode)
    if data is None:
        data = _read_bytes(src)
    if not data:
        raise DecodeError("empty_file", "zero bytes")
    kind = _kind(src, data[:132])
    if kind == "dicom":
        px, deriv = read_dicom(data, src.window, src.frame, drop_burned_in)
        dec = Decoded(px, px.shape[1], px.shape[0], deriv)
    elif kind in ("raster", "png16"):
        dec = _raster(data, src)
    else:
        raise DecodeError("bad_source", f"unknown image kind {kind!r}")
    return _apply_mode(dec, src.mode)
