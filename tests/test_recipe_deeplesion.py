import io

import numpy as np
import pytest
from PIL import Image

from medmo_data.pixels.transform import apply_window
from tests.helpers import build_fixture, by_id, read_samples


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dl")
    res = build_fixture("deeplesion", tmp)
    return res, by_id(read_samples(tmp / "out" / "deeplesion"))


def test_counts_and_rejects(built):
    res, _ = built
    m = res.manifest
    # 9 real rows -> 8 key slices (one slice has two lesions) + 3 broken rows.
    assert m["counts"] == {"read": 11, "written": 8, "rejected": 3}
    assert m["rejects_by_reason"] == {"corrupt_image": 1, "malformed_csv": 1, "missing_image": 1}
    assert m["splits"] == {"test": 4, "train": 2, "val": 2}


def test_two_lesions_one_sample_boxes_exact(built):
    _, s = built
    rec = s["000091_03_01_093"]["json"]
    assert rec["split"] == "test"
    # "237.344, 224.926, 256.32, 241.319" and "235.948, 231.555, 265.168, 253.91", 1-based -> minus 1.
    assert [o["bbox"] for o in rec["objects"]] == [
        pytest.approx([236.344, 223.926, 255.32, 240.319]), pytest.approx([234.948, 230.555, 264.168, 252.91])]
    assert [o["label"] for o in rec["objects"]] == ["abdomen", "abdomen"]
    assert rec["target"] == {"labels": ["abdomen"]}


def test_unlabeled_train_rows_and_types(built):
    _, s = built
    assert s["000089_01_01_037"]["json"]["objects"][0]["label"] == "lesion"  # type -1
    assert s["000097_01_01_116"]["json"]["objects"][0]["label"] == "pelvis"  # type 8
    assert s["000098_04_02_135"]["json"]["objects"][0]["label"] == "lung"  # type 5


def test_hu_windowing_pixels(built):
    _, s = built
    sample = s["000090_01_01_115"]  # window -160, 240
    px = np.asarray(Image.open(io.BytesIO(sample["0.png"])))
    assert px.shape == (512, 512)
    expected_lesion = round((100 + 160) / 400 * 255)  # 166
    assert px[0, 0] == 0  # -1000 HU is below the window
    x1, y1, x2, y2 = (int(v) for v in sample["json"]["objects"][0]["bbox"])
    assert px[(y1 + y2) // 2, (x1 + x2) // 2] == expected_lesion
    assert apply_window(np.array([100.0]), -160, 240)[0] == expected_lesion
    d = sample["json"]["images"][0]["derivation"]
    assert d["window"] == {"source": "given", "lo": -160.0, "hi": 240.0}
    assert d["value_offset"] == -32768.0


def test_lung_window_row(built):
    _, s = built
    px = np.asarray(Image.open(io.BytesIO(s["000098_04_02_135"]["0.png"])))
    # window -1500..500: air -1000 HU -> round(500/2000*255) = 64
    assert px[0, 0] == 64


def test_release_zips_read_in_place_same_bytes(tmp_path):
    """The NIH box ships Images_png_01.zip ... Images_png_56.zip (members Images_png/<folder>/<slice>.png):
    read in place, split over two zips here, they give the unpacked build's shards byte for byte."""
    import shutil
    import zipfile

    from medmo_data.build.distributor import BuildOptions, build
    from medmo_data.recipe import get_recipe
    from tests.fixtures import make
    from tests.fixtures._zips import shard_digests

    raw = make("deeplesion", tmp_path / "raw")
    ref = build(get_recipe("deeplesion"), raw, BuildOptions(output=tmp_path / "a"))
    files = sorted(p for p in (raw / "Images_png").rglob("*") if p.is_file())
    for k, part in enumerate((files[::2], files[1::2]), 1):
        with zipfile.ZipFile(raw / f"Images_png_{k:02d}.zip", "w") as z:
            for p in part:
                z.write(p, p.relative_to(raw).as_posix())
    shutil.rmtree(raw / "Images_png")
    zipped = build(get_recipe("deeplesion"), raw, BuildOptions(output=tmp_path / "b"))
    assert zipped.manifest["counts"] == ref.manifest["counts"]
    assert zipped.manifest["rejects_by_reason"] == ref.manifest["rejects_by_reason"]
    assert shard_digests(tmp_path / "a" / "deeplesion") == shard_digests(tmp_path / "b" / "deeplesion")
