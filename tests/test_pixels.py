import io
import struct
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from medmo_data.pixels.decode import decode
from medmo_data.pixels.dicom import read_dicom
from medmo_data.pixels.nifti import evenly_spaced, read_nifti_slice
from medmo_data.pixels.transform import DecodeError, apply_window, fit_longest_side, rescale_to_uint8
from medmo_data.recipe import ImageSource
from tests.fixtures._dicom import pydicom_test_files, write_ct

DCM = {p.name: p for p in pydicom_test_files()}
NII_DIR = Path(nib.__file__).parent / "tests" / "data"


def test_window_by_hand():
    v = np.array([-1000, -160, 40, 239, 240, 1000], dtype=np.float64)
    assert apply_window(v, -160, 240).tolist() == [0, 0, 128, 254, 255, 255]  # 200/400*255 = 127.5 -> 128


def test_rescale_minmax():
    out, how = rescale_to_uint8(np.array([[100, 200], [300, 500]], dtype=np.uint16))
    assert out.tolist() == [[0, 64], [128, 255]] and how == {"method": "minmax", "lo": 100.0, "hi": 500.0}


def test_fit_longest_side():
    assert fit_longest_side(2000, 1000, 1280) == (1280, 640)
    assert fit_longest_side(500, 300, 1280) == (500, 300)


def test_big_endian_and_compressed_match_uncompressed():
    ref, _ = read_dicom(DCM["MR_small.dcm"])
    for name in ("MR_small_bigendian.dcm", "MR_small_jp2klossless.dcm", "MR_small_RLE.dcm",
                 "MR_small_jpeg_ls_lossless.dcm"):
        out, deriv = read_dicom(DCM[name])
        assert np.array_equal(out, ref), name
    # Window C600 W1600 from the header: lo = 600 - 0.5 - 799.5 = -200
    assert deriv["window"] == {"source": "dicom_voi", "lo": -200.0, "hi": 1399.0}


def test_ct_modality_lut_and_named_window(tmp_path):
    stored = np.array([[0, 1024], [1084, 2024]], dtype=np.int16)  # HU -1024, 0, 60, 1000
    p = write_ct(tmp_path / "a.dcm", stored, slope=1.0, intercept=-1024.0)
    out, d = read_dicom(p, window="soft_tissue")
    assert out.tolist() == [[0, 102], [140, 255]]  # (0+160)/400*255=102, (60+160)/400*255=140.25
    p2 = write_ct(tmp_path / "b.dcm", stored // 2, slope=2.0, intercept=-1024.0)  # same HU via slope 2
    out2, _ = read_dicom(p2, window=(-160, 240))
    assert out2.tolist() == out.tolist()


def test_burned_in_flag(tmp_path):
    p = write_ct(tmp_path / "b.dcm", np.zeros((4, 4), np.int16), burned_in=True)
    with pytest.raises(DecodeError) as e:
        read_dicom(p, drop_burned_in=True)
    assert e.value.reason == "burned_in_annotation"
    read_dicom(p)  # kept unless asked


@pytest.mark.parametrize("path", pydicom_test_files(), ids=lambda p: p.name)
def test_every_pydicom_file_decodes_or_rejects(path):
    try:
        dec = decode(ImageSource(path=str(path)))
    except DecodeError as exc:
        assert exc.reason and exc.detail  # a clear reason, never a crash
        return
    assert dec.pixels.dtype == np.uint8 and dec.pixels.ndim in (2, 3)
    assert dec.width > 0 and dec.height > 0


NIFTIS = sorted(list(NII_DIR.glob("*.nii")) + list(NII_DIR.glob("*.nii.gz")))


@pytest.mark.parametrize("path", NIFTIS, ids=lambda p: p.name)
def test_every_nibabel_file_decodes_or_rejects(path):
    try:
        dec = decode(ImageSource(path=str(path)))
    except DecodeError as exc:
        assert exc.reason in ("bad_shape", "corrupt_nifti", "bad_slice", "empty_image")
        return
    assert dec.pixels.dtype == np.uint8 and dec.pixels.ndim == 2


def test_nifti_reorientation(tmp_path):
    # An LPS-ordered volume (x flipped, y flipped) must give the same displayed slice as its RAS twin.
    vol = np.zeros((4, 5, 3), dtype=np.float32)
    vol[0, 1, 1] = 100  # voxel near +x (patient right in RAS) and anterior-ish
    ras = nib.Nifti1Image(vol, np.diag([1, 1, 1, 1]))
    lps = nib.Nifti1Image(vol[::-1, ::-1, :].copy(), np.array(
        [[-1, 0, 0, 3], [0, -1, 0, 4], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=float))
    nib.save(ras, tmp_path / "ras.nii")
    nib.save(lps, tmp_path / "lps.nii.gz")
    a, da = read_nifti_slice(tmp_path / "ras.nii", index=1, window=(0, 100))
    b, _ = read_nifti_slice(tmp_path / "lps.nii.gz", index=1, window=(0, 100))
    assert np.array_equal(a, b)
    # Displayed: rows = y reversed (anterior up), columns = x reversed (patient right on the left).
    assert a.shape == (5, 4) and a[5 - 1 - 1, 4 - 1 - 0] == 255
    assert da["slice_index"] == 1 and da["orientation"] == "RAS+"
    assert evenly_spaced(10, 3) == [2, 5, 7]


def test_png16_hu_offset():
    arr = np.array([[32768 - 1000, 32768 + 40]], dtype=np.uint16)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    dec = decode(ImageSource(data=buf.getvalue(), value_offset=-32768, window=(-160, 240)))
    assert dec.pixels.tolist() == [[0, 128]]


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_header_only(w: int, h: int) -> bytes:
    """A tiny file that declares a huge image (a decompression bomb's header)."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + _chunk(b"IEND", b""))


def test_decompression_bomb_and_garbage():
    with pytest.raises(DecodeError) as e:
        decode(ImageSource(data=_png_header_only(60000, 60000)))
    assert e.value.reason == "decompression_bomb"
    for data, reason in ((b"", "empty_file"), (b"not an image at all", "corrupt_image")):
        with pytest.raises(DecodeError) as e:
            decode(ImageSource(data=data))
        assert e.value.reason == reason


def test_canonical_plane_matches_as_closest_canonical_for_every_orientation():
    import itertools

    from medmo_data.pixels.nifti import canonical_plane

    vol = np.arange(3 * 4 * 5, dtype=np.float32).reshape(3, 4, 5)
    for perm in itertools.permutations(range(3)):
        for flips in itertools.product((1, -1), repeat=3):
            aff = np.zeros((4, 4))
            aff[3, 3] = 1
            for stored, (ras, f) in enumerate(zip(perm, flips, strict=True)):
                aff[ras, stored] = f * (stored + 1.0)  # anisotropic spacing
            img = nib.Nifti1Image(vol, aff)
            canon = np.asarray(nib.as_closest_canonical(img).dataobj)
            for ax in range(3):
                for k in range(canon.shape[ax]):
                    want = np.take(canon, k, axis=ax)
                    assert np.array_equal(canonical_plane(img, ax, k), want), (perm, flips, ax, k)


@pytest.mark.parametrize("window,ok", [
    ("lung", (-1350.0, 150.0)), ((-160, 240), (-160.0, 240.0)), ([0, 1.5], (0.0, 1.5)),
    ("lungz", None), ((1, 2, 3), None), ({"lo": 0, "hi": 1}, None), ((100, -100), None), ((5, 5), None),
    ((float("nan"), 1), None), ((0, float("inf")), None), (("0", "100"), None), ((True, 5), None), (7, None),
])
def test_windows_are_checked(window, ok):
    from medmo_data.pixels.transform import resolve_window

    if ok is not None:
        assert resolve_window(window) == ok
        return
    with pytest.raises(DecodeError) as e:
        resolve_window(window)
    assert e.value.reason == "bad_window"


@pytest.mark.parametrize("field,value,reason", [
    ("value_offset", [1.0], "bad_value_offset"), ("value_offset", float("nan"), "bad_value_offset"),
    ("axis", "oblique", "bad_axis"), ("axis", ["axial"], "bad_axis"), ("slice_index", "3", "bad_slice"),
    ("frame", 1.0, "bad_frame"), ("rescale", (1.0,), "bad_rescale"), ("mode", "CMYK", "bad_mode"),
    ("normalize", "zscore", "bad_normalize"),
])
def test_image_options_checked_before_reading(field, value, reason):
    src = ImageSource(path="/nonexistent.png", **{field: value})
    with pytest.raises(DecodeError) as e:
        decode(src)
    assert e.value.reason == reason


def test_unknown_nifti_axis_is_a_decode_error(tmp_path):
    nib.save(nib.Nifti1Image(np.zeros((3, 4, 5), np.float32), np.eye(4)), tmp_path / "v.nii")
    with pytest.raises(DecodeError) as e:
        read_nifti_slice(tmp_path / "v.nii", axis="oblique")
    assert e.value.reason == "bad_axis"


def test_declared_sizes_refused_before_decode(tmp_path, monkeypatch):
    """Small files declaring huge images: nothing is decoded (pixel_array / dataobj never run)."""
    import pydicom

    from tests.bad_inputs import declares, dicom_bytes, nifti_declaring

    def never(*a, **k):
        raise AssertionError("decoded a bomb")

    monkeypatch.setattr(pydicom.Dataset, "pixel_array", property(never))
    px = np.zeros((4, 4), np.int16)
    for data in (declares(dicom_bytes(px), 12000, 12000), declares(dicom_bytes(px, rle=True), 12000, 12000),
                 declares(dicom_bytes(px), 3000, 3000, frames=100)):
        with pytest.raises(DecodeError) as e:
            decode(ImageSource(data=data))
        assert e.value.reason == "decompression_bomb"
    (tmp_path / "b.nii.gz").write_bytes(nifti_declaring((12000, 12000, 3)))
    with pytest.raises(DecodeError) as e:
        decode(ImageSource(path=str(tmp_path / "b.nii.gz")))
    assert e.value.reason == "decompression_bomb"


def test_file_cap_and_special_files_never_read(tmp_path):
    import os

    from medmo_data.pixels.limits import MAX_FILE_BYTES

    big = tmp_path / "big.png"
    with open(big, "wb") as f:
        f.truncate(MAX_FILE_BYTES + 1)  # sparse
    with pytest.raises(DecodeError) as e:
        decode(ImageSource(path=str(big)))
    assert e.value.reason == "file_too_large"
    os.mkfifo(tmp_path / "p.dcm")  # opening it would block forever
    for p in (tmp_path / "p.dcm", tmp_path):
        with pytest.raises(DecodeError) as e:
            decode(ImageSource(path=str(p)))
        assert e.value.reason == "not_a_regular_file"


def test_more_pixel_data_than_rows_x_columns_is_bad_shape():
    from tests.bad_inputs import _extra_frames

    with pytest.raises(DecodeError) as e:
        read_dicom(_extra_frames(np.full((8, 8), 5, np.int16)))
    assert e.value.reason == "bad_shape"


def test_dicom_errors_name_the_tag_never_the_value(tmp_path):
    from tests.bad_inputs import dicom_bytes

    px = np.zeros((4, 4), np.int16)
    bad_window = dicom_bytes(px, center=12345678.0).replace(b"12345678", b"MRN4471X")
    for data, reason, tag in ((dicom_bytes(px, photometric="DOE^JOHN"), "bad_photometric",
                               "PhotometricInterpretation"), (bad_window, "bad_window", "WindowCenter")):
        with pytest.raises(DecodeError) as e:
            read_dicom(data)
        assert e.value.reason == reason and tag in e.value.detail
        assert "DOE" not in e.value.detail and "MRN" not in e.value.detail


@pytest.mark.parametrize("value,dropped", [("YES", True), (["NO", "YES"], True), (["YES", "NO"], True),
                                           ("NO", False), (["NO", "NO"], False), ("yes ", True)])
def test_burned_in_any_yes_drops(tmp_path, value, dropped):
    from tests.fixtures._dicom import ct_dataset

    ds = ct_dataset(np.zeros((4, 4), np.int16))
    ds.BurnedInAnnotation = value
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    if dropped:
        with pytest.raises(DecodeError) as e:
            read_dicom(buf.getvalue(), drop_burned_in=True)
        assert e.value.reason == "burned_in_annotation"
    else:
        read_dicom(buf.getvalue(), drop_burned_in=True)
