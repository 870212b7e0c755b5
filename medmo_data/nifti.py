"""NIfTI volume -> one 2-D slice, in a known frame, windowed to 8 bit.

Volumes are reoriented to RAS+ (`nibabel.as_closest_canonical`) before slicing, then displayed in the
radiological convention: axial slices with anterior up and the patient's right on the image's left;
coronal with superior up, right on the left; sagittal with superior up, anterior on the left.
Slices are read through `dataobj`, never the whole volume.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .pixels import DecodeError, apply_window, rescale_to_uint8, resolve_window

AXES = {"sagittal": 0, "coronal": 1, "axial": 2}


def load_canonical(path: str | Path):
    import nibabel as nib

    try:
        img = nib.load(str(path))
        return nib.as_closest_canonical(img)
    except Exception as exc:  # noqa: BLE001 - nibabel raises many types on bad files
        raise DecodeError("corrupt_nifti", f"{type(exc).__name__}: {exc}") from exc


def evenly_spaced(n: int, k: int) -> list[int]:
    """k slice indices spread over 0..n-1, avoiding the first and last slice (e.g. 3 of 10 -> 2, 4, 7)."""
    if n <= 0:
        return []
    k = min(k, n)
    return [int((i + 1) * n / (k + 1)) for i in range(k)]


def _display(plane: np.ndarray, axis: str) -> np.ndarray:
    # plane is indexed (first, second) in RAS+ order of the two remaining axes. Transposing puts the
    # second axis on rows; flipping both makes it grow upwards (anterior/superior up) and puts +x
    # (patient's right) or +y (anterior, sagittal) on the image's left.
    del axis  # same rule for all three planes
    return np.ascontiguousarray(plane.T[::-1, ::-1])


def read_nifti_slice(path: str | Path, index: int | None = None, axis: str = "axial",
                     window: str | tuple[float, float] | None = None, volume: int = 0,
                     rescale: tuple[float, float] | None = None, img=None) -> tuple[np.ndarray, dict]:
    """One slice (index in canonical RAS+ voxel order along `axis`; default middle) as uint8.

    rescale=(slope, intercept) replaces the header's scaling (CT-RATE's broken headers): values =
    stored * slope + intercept. window: named or (lo, hi); None = min/max of the slice.
    """
    if axis not in AXES:
        raise ValueError(f"axis must be one of {sorted(AXES)}, got {axis!r}")
    img = img if img is not None else load_canonical(path)
    shape = img.shape
    if len(shape) < 3:
        raise DecodeError("bad_shape", f"NIfTI of shape {shape} is not a volume")
    ax = AXES[axis]
    n = shape[ax]
    if index is None:
        index = n // 2
    if not 0 <= index < n:
        raise DecodeError("bad_slice", f"slice {index} outside 0..{n - 1} on the {axis} axis")
    sl: list[Any] = [slice(None)] * len(shape)
    sl[ax] = index
    for extra in range(3, len(shape)):
        sl[extra] = volume if extra == 3 else 0
    try:
        if rescale is not None:
            raw = np.asarray(img.dataobj.get_unscaled()[tuple(sl)], dtype=np.float64) \
                if hasattr(img.dataobj, "get_unscaled") else np.asarray(img.dataobj[tuple(sl)], dtype=np.float64)
            values = raw * rescale[0] + rescale[1]
        else:
            values = np.asarray(img.dataobj[tuple(sl)], dtype=np.float64)
    except Exception as exc:  # noqa: BLE001 - truncated data raises from deep inside nibabel
        raise DecodeError("corrupt_nifti", f"{type(exc).__name__}: {exc}") from exc
    if values.ndim != 2:
        raise DecodeError("bad_shape", f"slice of shape {values.shape} is not 2-D")
    deriv: dict[str, Any] = {"format": "nifti", "frame": "RAS+", "axis": axis, "slice_index": int(index),
                             "n_slices": int(n), "display": "radiological"}
    if rescale is not None:
        deriv["rescale"] = {"slope": float(rescale[0]), "intercept": float(rescale[1])}
    if window is not None:
        lo, hi = resolve_window(window)
        out = apply_window(values, lo, hi)
        deriv["window"] = {"source": window if isinstance(window, str) else "given", "lo": lo, "hi": hi}
    else:
        out, how = rescale_to_uint8(values, "minmax")
        deriv["window"] = {"source": "minmax", "lo": how["lo"], "hi": how["hi"]}
    return _display(out, axis), deriv
