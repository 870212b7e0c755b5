import pytest

from tests.boxcheck import assert_boxes_on_objects, assert_show_grid
from tests.helpers import build_fixture, by_id, read_samples

F0 = "Fluo-N2DH-SIM+/01/man_seg000"
F2 = "Fluo-N2DH-SIM+/01/man_seg002"
TOUCH = "Fluo-N2DH-SIM+/02/man_seg000"
SLICE = "Fluo-N3DH-SIM+/01/man_seg_000_003"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ctc")
    res = build_fixture("ctc", tmp)
    return res, by_id(read_samples(tmp / "out" / "ctc")), tmp


def test_frames_with_ground_truth_only(built):
    res, s, _ = built
    assert res.manifest["counts"] == {"read": 7, "written": 4, "rejected": 3}
    assert res.manifest["rejects_by_reason"] == {"no_objects": 1, "missing_image": 1, "volume_mask": 1}
    assert set(s) == {F0, F2, TOUCH, SLICE}  # t003 has no mask: never a sample


def test_boxes_from_seg_not_tra(built):
    _, s, _ = built
    assert [o["bbox"] for o in s[F0]["json"]["objects"]] == [[5.0, 5.0, 25.0, 20.0], [50.0, 30.0, 75.0, 60.0]]
    assert [o["bbox"] for o in s[F2]["json"]["objects"]] == [[8.0, 40.0, 30.0, 64.0]]  # ends on the bottom edge
    # touching cells (shared column x=40) stay two boxes
    assert [o["bbox"] for o in s[TOUCH]["json"]["objects"]] == [[20.0, 10.0, 40.0, 30.0], [40.0, 10.0, 60.0, 30.0]]
    rec = s[SLICE]["json"]
    assert [o["bbox"] for o in rec["objects"]] == [[30.0, 20.0, 50.0, 44.0]]
    assert rec["meta"] == {"dataset": "Fluo-N3DH-SIM+", "sequence": "01", "frame": 0, "slice": 3, "truth": "gold",
                           "boxes": 1}
    assert "fluorescence microscopy frame" in rec["messages"][0]["content"][1]["text"]


def test_16bit_frames_normalised(built):
    _, s, _ = built
    im = s[F0]["json"]["images"][0]
    assert im["derivation"]["format"] == "tiff" and im["derivation"]["rescale"]["method"] == "percentile"
    assert (im["width"], im["height"]) == (80, 64)


def test_holdout_sequence_split(tmp_path):
    build_fixture("ctc", tmp_path, recipe_options={"holdout": "02"})
    s = by_id(read_samples(tmp_path / "out" / "ctc"))
    assert {k: v["json"]["split"] for k, v in s.items()} == {F0: "train", F2: "train", TOUCH: "val", SLICE: "train"}


def test_cap(tmp_path):
    res = build_fixture("ctc", tmp_path, recipe_options={"max_boxes": "1"})
    assert res.manifest["rejects_by_reason"]["too_many_boxes"] == 2


def test_show_boxes_on_objects(built):
    _, s, tmp = built
    for sid in (F0, F2, TOUCH, SLICE):
        assert_boxes_on_objects(s[sid]["json"], s[sid])
    assert_show_grid(tmp / "out" / "ctc", tmp / "grid.png")


def test_download_zips_read_in_place(tmp_path):
    """celltrackingchallenge.net ships one zip per dataset holding `<Dataset>/01/t000.tif`, `01_GT/SEG/...`
    (`unzip Fluo-N2DH-SIM+.zip` makes the folder). Left zipped, both datasets give the unpacked build's shards byte for byte."""
    from medmo_data.build.distributor import BuildOptions, build
    from medmo_data.recipe import get_recipe
    from tests.fixtures import make
    from tests.fixtures._zips import shard_digests, zip_folder

    raw = make("ctc", tmp_path / "raw")
    unpacked = build(get_recipe("ctc"), raw, BuildOptions(output=tmp_path / "a"))
    for ds in ("Fluo-N2DH-SIM+", "Fluo-N3DH-SIM+"):
        zip_folder(raw / ds, raw / f"{ds}.zip", f"{ds}/")
    assert sorted(p.name for p in raw.iterdir()) == ["Fluo-N2DH-SIM+.zip", "Fluo-N3DH-SIM+.zip"]
    zipped = build(get_recipe("ctc"), raw, BuildOptions(output=tmp_path / "b"))
    assert zipped.manifest["counts"] == unpacked.manifest["counts"]
    assert zipped.manifest["rejects_by_reason"] == unpacked.manifest["rejects_by_reason"]
    a, b = (by_id(read_samples(tmp_path / d / "ctc")) for d in "ab")
    assert set(a) == set(b) == {F0, F2, TOUCH, SLICE}
    for sid in a:
        ja, jb = a[sid]["json"], b[sid]["json"]
        assert ja["objects"] == jb["objects"] and ja["meta"] == jb["meta"] and ja["images"] == jb["images"]
        assert a[sid]["0.png"] == b[sid]["0.png"]
    assert shard_digests(tmp_path / "b" / "ctc") == shard_digests(tmp_path / "a" / "ctc")
