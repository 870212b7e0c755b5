"""DICOM -> 8-bit pixels: modality LUT, VOI window, MONOCHROME1 inversion. No header value leaves here
except the few technical ones recorded in the derivation (photometric from its defined terms only, window
bounds, frame). Error details name the tag (keyword or (gggg,eeee)), never echo a value: pydicom's own
messages quote header values, so only their exception type and the tags they mention are kept.
"""

from __future__ import annotations

import io
import math
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .limits import MAX_PIXELS, MAX_SAMPLES
from .transform import (
    DecodeError,
    rescale_table,
    rescale_to_uint8,
    resolve_window,
    window_table,
)

# PS3.3 C.7.6.3.1.2: the defined terms. Any other value (free text a site put there) is not recorded.
PHOTOMETRIC = ("MONOCHROME1", "MONOCHROME2", "PALETTE COLOR", "RGB", "YBR_FULL", "YBR_FULL_422",
               "YBR_PARTIAL_422", "YBR_PARTIAL_420", "YBR_ICT", "YBR_RCT", "HSV", "ARGB", "CMYK")
_TAG = re.compile(r"\(([0-9A-Fa-f]{4}),\s*([0-9A-Fa-f]{4})\)")
_WORD = re.compile(r"\b[A-Z][a-z]+(?:[A-Z][a-z0-9]*)+\b")


def tags_only(exc: BaseException) -> str:
    """`Type: message` when the message quotes nothing; else `Type` plus the DICOM tags the message names,
    without the message (pydicom quotes header values: `Invalid value for VR CS: 'DOE^JOHN'`)."""
    from pydicom.datadict import keyword_for_tag, tag_for_keyword

    msg = str(exc)
    if not any(q in msg for q in "'\"`") and len(msg) <= 300:
        return f"{type(exc).__name__}: {msg}"
    names = [keyword_for_tag(int(g + e, 16)) or f"({g},{e})" for g, e in _TAG.findall(msg)]
    names += [w for w in _WORD.findall(msg) if tag_for_keyword(w) is not None]
    names = list(dict.fromkeys(names))
    return type(exc).__name__ + (f" about {', '.join(names)}" if names else "") + " (message not kept: it may " \
        "quote header values)"


def _read(src: str | Path | bytes):
    import pydicom
    from pydicom.errors import InvalidDicomError

    fp = io.BytesIO(src) if isinstance(src, bytes) else src
    try:
        return pydicom.dcmread(fp), False
    except InvalidDicomError:
        if isinstance(fp, io.BytesIO):
            fp.seek(0)
        try:
            # Files without the 128-byte preamble / file meta (old ACR-NEMA style) are still DICOM.
            return pydicom.dcmread(fp, force=True), True
        except Exception as exc:  # noqa: BLE001 - any parse failure is a corrupt file
            raise DecodeError("corrupt_dicom", tags_only(exc)) from exc
    except Exception as exc:  # noqa: BLE001
        raise DecodeError("corrupt_dicom", tags_only(exc)) from exc


def _first(v: Any) -> float:
    try:
        return float(v[0]) if hasattr(v, "__len__") and not isinstance(v, (str, bytes)) else float(v)
    except (TypeError, ValueError, IndexError) as exc:
        raise DecodeError("bad_window", "WindowCenter / WindowWidth value is not a number") from exc


def _modality_key(ds) -> tuple | None:
    """Names the modality mapping for table reuse: slope and intercept, or None (a LUT, or unreadable)."""
    if "ModalityLUTSequence" in ds:
        return None
    if "RescaleSlope" in ds and "RescaleIntercept" in ds:
        try:
            return ("rescale", float(ds.RescaleSlope), float(ds.RescaleIntercept))
        except (TypeError, ValueError):
            return None
    return ("identity",)


def burned_in(ds) -> bool:
    """BurnedInAnnotation says YES in any of its values (a multi-valued `YES\\NO` counts as YES)."""
    v = ds.get("BurnedInAnnotation")
    if v is None:
        return False
    values = v.value if hasattr(v, "value") else v
    if isinstance(values, (str, bytes)):
        values = re.split(r"\\", values.decode("latin-1") if isinstance(values, bytes) else values)
    return any(str(x).strip().upper() == "YES" for x in values)


def _int_tag(ds, keyword: str, default: int) -> int:
    v = ds.get(keyword, default)
    v = getattr(v, "value", v)
    if v is None or v == "":
        return default
    try:
        return int(v[0] if hasattr(v, "__len__") and not isinstance(v, (str, bytes)) else v)
    except (TypeError, ValueError, IndexError) as exc:
        raise DecodeError("corrupt_dicom", f"{keyword} is not an integer") from exc


def check_declared_size(ds) -> tuple[int, int, int, int]:
    """(rows, columns, frames, samples per pixel) from the header, refused as `decompression_bomb` when
    they declare more than the caps, before any pixel data is decoded (RLE, deflate, JPEG alike)."""
    rows, cols = _int_tag(ds, "Rows", 0), _int_tag(ds, "Columns", 0)
    frames, spp = _int_tag(ds, "NumberOfFrames", 1) or 1, _int_tag(ds, "SamplesPerPixel", 1) or 1
    if min(rows, cols, frames, spp) < 1:
        raise DecodeError("corrupt_dicom", "Rows, Columns, NumberOfFrames or SamplesPerPixel is not positive")
    if rows * cols > MAX_PIXELS:
        raise DecodeError("decompression_bomb", f"Rows x Columns declare {rows}x{cols}, over {MAX_PIXELS} pixels")
    if math.prod((rows, cols, frames, spp)) > MAX_SAMPLES:
        raise DecodeError("decompression_bomb", f"Rows x Columns x NumberOfFrames x SamplesPerPixel declare "
                          f"{rows}x{cols}x{frames}x{spp}, over {MAX_SAMPLES} values")
    return rows, cols, frames, spp


def read_dicom(src: str | Path | bytes, window: str | tuple[float, float] | None = None,
               frame: int | None = None, drop_burned_in: bool = False) -> tuple[np.ndarray, dict]:
    """`_read_dicom`, with any unexpected failure on a malformed header turned into a DecodeError."""
    try:
        return _read_dicom(src, window, frame, drop_burned_in)
    except DecodeError:
        raise
    except (ValueError, TypeError, AttributeError, KeyError, IndexError, OverflowError) as exc:
        raise DecodeError("corrupt_dicom", f"malformed header or pixel data: {tags_only(exc)}") from exc


def _read_dicom(src: str | Path | bytes, window: str | tuple[float, float] | None,
                frame: int | None, drop_burned_in: bool) -> tuple[np.ndarray, dict]:
    """Decode one DICOM frame to uint8 (HxW grey or HxWx3 colour) and describe how.

    window: None = the file's VOI (LUT sequence first, then Window Center/Width), else min/max;
    a name from NAMED_WINDOWS or (lo, hi) in modality units (HU for CT) overrides the file.
    frame: index for multi-frame files (default: the middle frame).
    """
    from pydicom.pixels import apply_modality_lut, apply_voi_lut, convert_color_space

    ds, forced = _read(src)
    if drop_burned_in and burned_in(ds):
        raise DecodeError("burned_in_annotation", "header says the image carries burned-in annotations")
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        raise DecodeError("no_pixel_data", "the file holds no pixel data")
    rows, cols, n_frames, spp = check_declared_size(ds)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2") or "MONOCHROME2").strip().upper()
    if photometric not in PHOTOMETRIC:
        raise DecodeError("bad_photometric", "PhotometricInterpretation is not one of the defined terms")
    if frame is None:
        frame = n_frames // 2
    if not 0 <= frame < n_frames:
        raise DecodeError("bad_frame", f"frame {frame} outside 0..{n_frames - 1}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arr = ds.pixel_array
    except Exception as exc:  # noqa: BLE001 - decoder plugins raise many types
        raise DecodeError("undecodable_pixels", tags_only(exc)) from exc
    if n_frames > 1 and arr.ndim >= 3 and arr.shape[0] == n_frames:
        arr = arr[frame]
    # One frame must be Rows x Columns (x samples): pixel data holding more (read as extra frames by
    # pydicom) or less is not an image we can place boxes on.
    expected = (rows, cols) if spp == 1 else (rows, cols, spp)
    if arr.shape != expected:
        raise DecodeError("bad_shape", f"pixel data decodes to shape {arr.shape}, header declares "
                          f"Rows x Columns{' x SamplesPerPixel' if spp > 1 else ''} = {expected}"
                          + (f" in each of {n_frames} frames" if n_frames > 1 else ""))
    # Big-endian files decode to '>i2'; PIL and our maths want native order.
    arr = arr.astype(arr.dtype.newbyteorder("="), copy=False)
    deriv: dict[str, Any] = {"format": "dicom", "photometric": photometric, "frame_index": frame,
                             "n_frames": n_frames}
    if forced:
        deriv["read_without_meta"] = True
    if spp == 3 or arr.ndim == 3:
        if photometric.startswith("YBR") and ds.file_meta.get("TransferSyntaxUID", None) is not None \
                and not ds.file_meta.TransferSyntaxUID.is_compressed:
            arr = convert_color_space(arr, photometric, "RGB")
        if arr.dtype != np.uint8:
            arr, how = rescale_to_uint8(arr, "minmax")
            deriv["rescale"] = how
        deriv["color"] = "RGB"
        return np.ascontiguousarray(arr), deriv
    if photometric == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        rgb = apply_color_lut(arr, ds)
        rgb, how = rescale_to_uint8(rgb, "minmax")
        deriv.update(color="RGB", rescale=how)
        return rgb, deriv
    # Stored value -> output byte through one table per (modality rescale, window, inversion): no float
    # copy of the slice; each table entry is the float64 formula on that stored value (transform.lookup).
    invert = photometric == "MONOCHROME1"
    mod_key = _modality_key(ds)
    deriv["modality_lut"] = bool("RescaleSlope" in ds or "ModalityLUTSequence" in ds)

    def modality(s: np.ndarray) -> np.ndarray:
        return apply_modality_lut(s, ds)

    if window is not None:
        lo, hi = resolve_window(window)
        out = window_table(arr, lo, hi, modality, invert, mod_key)
        deriv["window"] = {"source": window if isinstance(window, str) else "given", "lo": lo, "hi": hi}
    elif "VOILUTSequence" in ds:
        bits = int(ds.VOILUTSequence[0].LUTDescriptor[2]) or 16
        out = window_table(arr, 0.0, float(2**bits - 1),
                           lambda s: apply_voi_lut(modality(s), ds, index=0, prefer_lut=True), invert)
        deriv["window"] = {"source": "dicom_voi_lut"}
    elif "WindowCenter" in ds and "WindowWidth" in ds:
        try:  # pydicom converts DS text on access: a value that is no number raises here
            center, width = ds.WindowCenter, ds.WindowWidth
        except (TypeError, ValueError) as exc:
            raise DecodeError("bad_window", "WindowCenter / WindowWidth value is not a number") from exc
        c, w = _first(center), _first(width)
        if w < 1:
            raise DecodeError("bad_window", f"window width {w} < 1")
        # DICOM PS3.3 C.11.2.1.2 LINEAR: the ramp runs from c - 0.5 - (w-1)/2 to c - 0.5 + (w-1)/2.
        lo, hi = c - 0.5 - (w - 1) / 2, c - 0.5 + (w - 1) / 2
        out = window_table(arr, lo, hi if hi > lo else lo + 1, modality, invert, mod_key)
        deriv["window"] = {"source": "dicom_voi", "lo": lo, "hi": hi}
    else:
        done = rescale_table(arr, modality, invert)
        if done is None:  # no table fits (32-bit or float pixels): the formula on the whole slice
            out, how = rescale_to_uint8(modality(arr), "minmax")
            out = 255 - out if invert else out
        else:
            out, how = done
        deriv["window"] = {"source": "minmax", "lo": how["lo"], "hi": how["hi"]}
    if invert:
        deriv["inverted"] = True
    if out.ndim != 2:
        raise DecodeError("bad_shape", f"grey image decoded to shape {out.shape}")
    return out, deriv
