"""Windowing through a table (issue 19 item 2): the same bytes as the float64 formula on every stored value,
and no float copy of the slice."""

import io
import tracemalloc

import numpy as np
import pytest

from medmo_data.pixels.dicom import read_dicom
from medmo_data.pixels.transform import apply_window, rescale_table, rescale_to_uint8, window_table


def formula(v: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """The documented rule, written out independently: floor(255 * (clip(v) - lo) / (hi - lo) + 0.5)."""
    v = np.clip(v.astype(np.float64), lo, hi)
    return np.floor((v - lo) * 255.0 / (hi - lo) + 0.5).astype(np.uint8)


def every(dtype: str) -> np.ndarray:
    info = np.iinfo(dtype)
    return np.arange(info.min, info.max + 1, dtype=np.int64).astype(dtype)


WINDOWS = [(-160.0, 240.0), (-1350.0, 150.0), (0.0, 80.0), (-175.0, 275.0), (0.0, 4095.0), (39.5, 40.5),
           (-0.3, 0.7), (1e-3, 1e5)]
MAPPINGS = {"identity": (None, lambda s: s.astype(np.float64)),
            "ct": (("rescale", 1.0, -1024.0), lambda s: s.astype(np.float64) * 1.0 + -1024.0),
            "slope": (("rescale", 0.37, 12.5), lambda s: s.astype(np.float64) * 0.37 + 12.5),
            "deeplesion": (("offset", -32768.0), lambda s: s.astype(np.float64) + -32768.0)}


@pytest.mark.parametrize("dtype", ["int16", "uint16", "uint8", "int8"])
@pytest.mark.parametrize("mapping", sorted(MAPPINGS))
def test_every_stored_value_matches_formula(dtype, mapping):
    stored = every(dtype)
    key, fn = MAPPINGS[mapping]
    for lo, hi in WINDOWS:
        for invert in (False, True):
            want = formula(fn(stored), lo, hi)
            want = 255 - want if invert else want
            got = window_table(stored, lo, hi, fn, invert=invert, key=key)
            assert got.dtype == np.uint8 and np.array_equal(got, want), (dtype, mapping, lo, hi, invert)
            # the cached table gives the same again, on a 2-D slice in scrambled order
            img = np.random.default_rng(0).permutation(stored)[: (stored.size // 16) * 16].reshape(16, -1)
            assert np.array_equal(window_table(img, lo, hi, fn, invert=invert, key=key),
                                  255 - formula(fn(img), lo, hi) if invert else formula(fn(img), lo, hi))


def test_formula_matches_reference_window():
    v = np.linspace(-3000, 3000, 100_001)
    for lo, hi in WINDOWS:
        assert np.array_equal(apply_window(v, lo, hi), formula(v, lo, hi))


@pytest.mark.parametrize("dtype", ["int16", "uint16", "uint8"])
def test_minmax_rescale_uses_only_present_values(dtype):
    rng = np.random.default_rng(1)
    info = np.iinfo(dtype)
    img = rng.integers(max(info.min, -2000), min(info.max, 3000), size=(64, 48)).astype(dtype)
    fn = MAPPINGS["slope"][1]
    got, how = rescale_table(img, fn)
    want, want_how = rescale_to_uint8(fn(img), "minmax")
    assert np.array_equal(got, want) and how == want_how
    flat = np.full((8, 8), 7, dtype)  # one value: hi = lo + 1, as the formula does
    assert np.array_equal(rescale_table(flat)[0], rescale_to_uint8(flat)[0])


def test_no_table_for_wide_types_gives_formula():
    img = np.array([[-70000, 0, 70000]], dtype=np.int32)
    assert np.array_equal(window_table(img, -160, 240), formula(img, -160, 240))
    assert rescale_table(img) is None


def _ct_dicom(hu: np.ndarray) -> bytes:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = CTImageStorage, "1.2.3.4"
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = CTImageStorage, "1.2.3.4", "CT"
    ds.Rows, ds.Columns = hu.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.RescaleSlope, ds.RescaleIntercept, ds.WindowCenter, ds.WindowWidth = 1, -1024, 40, 400
    ds.PixelData = (hu.astype(np.int32) + 1024).astype(np.int16).tobytes()
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def test_dicom_slice_windowed_without_float_copies():
    hu = np.random.default_rng(2).integers(-1024, 2000, size=(512, 512)).astype(np.int16)
    data = _ct_dicom(hu)
    read_dicom(data)  # the table for this (rescale, window) is built once
    tracemalloc.start()
    try:
        out, deriv = read_dicom(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    lo, hi = 40 - 0.5 - 399 / 2, 40 - 0.5 + 399 / 2
    assert np.array_equal(out, formula(hu.astype(np.float64), lo, hi))
    assert deriv["window"] == {"source": "dicom_voi", "lo": lo, "hi": hi}
    # the file (512 KiB) + int16 pixels (512 KiB) + uint8 output (256 KiB); one float64 copy is 2 MiB
    assert peak < 1.9 * 2**20, peak
