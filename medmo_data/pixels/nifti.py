"""NIfTI volume -> one 2-D slice, in a known frame, windowed to 8 bit.

Volumes are reoriented to RAS+ (as `nibabel.as_closest_canonical` would, but one slice at a time), then
displayed in the
radiological convention: axial slices with anterior up and the patient's right on the image's left;
coronal with superior up, right on the left; sagittal with superior up, anterior on the left.
Slices are read through `dataobj`, never the whole volume.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from .limits import MAX_PIXELS, MAX_VOLUME_BYTES
from .transform import (
    DecodeError,
    rescale_table,
    rescale_to_uint8,
    resolve_window,
    window_table,
)

AXES = {"sagittal": 0, "coronal": 1, "axial": 2}


def load(path: str | Path):
    """The image with its data left on disk (proxy); nothing is read until a slice is asked for."""
    import nibabel as nib

    try:
        return nib.load(str(path))
    except Exception as exc:  # noqa: BLE001 - nibabel raises many types on bad files
        raise DecodeError("corrupt_nifti", f"{type(exc).__name__}: {exc}") from exc


def check_declared_size(img) -> None:
    """Refuse a header whose shape x dtype declares more than the caps (`decompression_bomb`), before any
    voxel is read: a .nii.gz slice of 12000 x 12000 would otherwise decode to GiBs."""
    shape = [int(n) for n in img.shape]
    try:
        itemsize = np.dtype(img.get_data_dtype()).itemsize
    except (TypeError, AttributeError):
        itemsize = 8
    planes = [math.prod(shape[:3]) // max(1, shape[i]) for i in range(3)]
    if max(planes) > MAX_PIXELS:
        raise DecodeError("decompression_bomb", f"shape {tuple(shape)} declares slices of {max(planes)} pixels, "
                          f"over {MAX_PIXELS}")
    if math.prod(shape) * itemsize > MAX_VOLUME_BYTES:
        raise DecodeError("decompression_bomb", f"shape {tuple(shape)} x {itemsize}-byte values exceeds "
                          f"{MAX_VOLUME_BYTES} bytes")


def canonical_plane(img, axis: int, index: int, volume: int = 0, unscaled: bool = False) -> np.ndarray:
    """Slice `index` along RAS+ axis `axis`, equal to `as_closest_canonical(img).dataobj[...]` for that slice,
    but reading only that slice from disk (as_closest_canonical would load the whole volume)."""
    import nibabel as nib

    ornt = nib.orientations.io_orientation(img.affine)  # per stored axis: (RAS axis, +1/-1)
    stored = [i for i in range(3) if int(ornt[i, 0]) == axis][0]
    n = img.shape[stored]
    sl: list[Any] = [slice(None)] * len(img.shape)
    sl[stored] = index if ornt[stored, 1] > 0 else n - 1 - index
    for extra in range(3, len(img.shape)):
        sl[extra] = volume if extra == 3 else 0
    src = img.dataobj.get_unscaled() if unscaled and hasattr(img.dataobj, "get_unscaled") else img.dataobj
    plane = np.asarray(src[tuple(sl)], dtype=np.float64)
    rest = [i for i in range(3) if i != stored]  # stored axes left in the plane, in stored order
    for k, i in enumerate(rest):
        if ornt[i, 1] < 0:
            plane = np.flip(plane, axis=k)
    if int(ornt[rest[0], 0]) > int(ornt[rest[1], 0]):
        plane = plane.T
    return plane


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
    if not isinstance(axis, str) or axis not in AXES:
        raise DecodeError("bad_axis", f"axis must be one of {sorted(AXES)}")
    img = img if img is not None else load(path)
    shape = img.shape
    if len(shape) < 3:
        raise DecodeError("bad_shape", f"NIfTI of shape {shape} is not a volume")
    check_declared_size(img)
    ax = AXES[axis]
    try:
        import nibabel as nib

        ornt = nib.orientations.io_orientation(img.affine)
        n = shape[[i for i in range(3) if int(ornt[i, 0]) == ax][0]]
        if index is None:
            index = n // 2
        if not 0 <= index < n:
            raise DecodeError("bad_slice", f"slice {index} outside 0..{n - 1} on the {axis} axis")
        values = canonical_plane(img, ax, index, volume, unscaled=rescale is not None)
    except DecodeError:
        raise
    except Exception as exc:  # noqa: BLE001 - truncated data raises from deep inside nibabel
        raise DecodeError("corrupt_nifti", f"{type(exc).__name__}: {exc}") from exc
    if values.ndim != 2:
        raise DecodeError("bad_shape", f"slice of shape {values.shape} is not 2-D")
    deriv: dict[str, Any] = {"format": "nifti", "orientation": "RAS+", "axis": axis, "slice_index": int(index),
                             "n_slices": int(n), "display": "radiological"}
    if rescale is not None:
        deriv["rescale"] = {"slope": float(rescale[0]), "intercept": float(rescale[1])}

    def rescaled(stored: np.ndarray) -> np.ndarray:  # element-wise: 16-bit slices go through one table
        return stored * rescale[0] + rescale[1] if rescale is not None else stored

    if window is not None:
        lo, hi = resolve_window(window)
        out = window_table(values, lo, hi, rescaled, key=("nifti", None if rescale is None else tuple(rescale)))
        deriv["window"] = {"source": window if isinstance(window, str) else "given", "lo": lo, "hi": hi}
    else:
        done = rescale_table(values, rescaled)
        out, how = done if done is not None else rescale_to_uint8(rescaled(values), "minmax")
        deriv["window"] = {"source": "minmax", "lo": how["lo"], "hi": how["hi"]}
    return _display(out, axis), deriv
