import io

import numpy as np
import pytest
from PIL import Image

from medmo_data.build.distributor import BuildOptions, build
from medmo_data.recipe import get_recipe
from tests.fixtures import make
from tests.fixtures._dicom import PHI
from tests.helpers import build_fixture, by_id, read_samples


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("folder")
    res = build_fixture("folder", tmp)
    return tmp, res, by_id(read_samples(tmp / "out" / "folder"))


def px(sample):
    return np.asarray(Image.open(io.BytesIO(sample["0.png"])))


def test_counts(built):
    _, res, s = built
    assert res.manifest["counts"] == {"read": 12, "written": 8, "rejected": 4}
    assert res.manifest["rejects_by_reason"] == {"bad_box": 1, "bad_path": 1, "malformed_json": 1,
                                                 "missing_image": 1}
    assert s["tif"]["json"]["split"] == "val" and s["jpg"]["json"]["split"] == "test"


def test_dicom_window_exact(built):
    _, _, s = built
    a = px(s["ct-1"])  # soft tissue window -160..240: -1000 HU -> 0, +60 HU -> round(220/400*255) = 140
    assert a[0, 0] == 0 and a[30, 30] == 140
    assert s["ct-1"]["json"]["objects"][0]["bbox"] == [20.0, 24.0, 44.0, 40.0]  # xywh 20,24,24,16
    assert np.array_equal(px(s["ct-1-rle"]), a)  # RLE-compressed copy decodes to the same pixels


def test_dicom_voi_and_monochrome1(built):
    _, _, s = built
    a = px(s["ct-mono1"])
    # header window C40/W400 (DICOM linear: -160 .. 239), then MONOCHROME1 inverted
    assert a[0, 0] == 255 and a[30, 30] == 255 - round((60 + 160) / 399 * 255)


def test_nifti_slice_and_yolo(built):
    _, _, s = built
    d = s["nii-mid"]["json"]["images"][0]["derivation"]
    assert d["slice_index"] == 5 and d["orientation"] == "RAS+"
    # YOLO cx,cy,w,h = .25,.333,.25,.333 of an 80x60 image -> 10,10,30,30
    assert s["png16"]["json"]["objects"][0]["bbox"] == pytest.approx([10.0, 10.0, 30.0, 30.0])


def test_no_phi_in_any_output_byte(built):
    tmp, _, _ = built
    blob = b"".join(p.read_bytes() for p in (tmp / "out" / "folder").iterdir() if p.is_file())
    for value in PHI.values():
        assert value.encode() not in blob
        assert value.split("^")[0].encode() not in blob


def test_declared_licence(tmp_path):
    raw = make("folder", tmp_path / "raw")
    res = build(get_recipe("folder"), raw, BuildOptions(output=tmp_path / "out", recipe_options={
        "license": "CC-BY-4.0", "access": "registered"}))
    assert res.manifest["license"] == "CC-BY-4.0" and res.manifest["access"] == "registered"
    rec = read_samples(tmp_path / "out" / "folder")[0]["json"]
    assert rec["license"] == "CC-BY-4.0" and rec["access"] == "registered"
