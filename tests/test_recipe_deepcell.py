import zipfile

import numpy as np
import pytest

from medmo_data.build.distributor import BuildOptions, build
from medmo_data.families import cells
from medmo_data.recipe import SourceError, get_recipe
from tests.boxcheck import assert_boxes_on_objects, assert_show_grid
from tests.helpers import build_fixture, by_id, read_samples


def boxes_of(rec):
    return [o["bbox"] for o in rec["objects"]]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("deepcell")
    res = build_fixture("deepcell", tmp)
    return res, by_id(read_samples(tmp / "out" / "deepcell")), tmp


def test_counts_splits_rejects(built):
    res, s, _ = built
    assert res.manifest["counts"] == {"read": 5, "written": 4, "rejected": 1}
    assert res.manifest["rejects_by_reason"] == {"no_objects": 1}
    assert {k: v["json"]["split"] for k, v in s.items()} == {"train-00000": "train", "train-00002": "train",
                                                              "val-00000": "val", "test-00000": "test"}


def test_whole_cell_boxes_touching(built):
    _, s, _ = built
    rec = s["train-00000"]["json"]
    # ids 1 and 2 share the edge x=30: two boxes, not one merged blob
    assert boxes_of(rec) == [[10.0, 12.0, 30.0, 40.0], [30.0, 12.0, 50.0, 40.0]]
    assert rec["task"] == "detection" and rec["target"] == {"labels": ["cell"], "count": 2}
    assert {o["label"] for o in rec["objects"]} == {"cell"}
    assert boxes_of(s["train-00002"]["json"])[3] == [40.0, 44.0, 62.0, 64.0]  # ends on the tile edge
    assert rec["meta"]["experiment"] == "exp0" and rec["meta"]["specimen"] == "tonsil"  # read, never unpickled
    assert rec["images"][0]["width"] == 64 and "membrane" in rec["messages"][0]["content"][1]["text"]


def test_nuclear_target_and_meta(tmp_path):
    res = build_fixture("deepcell", tmp_path, recipe_options={"target": "nuclear"})
    s = by_id(read_samples(tmp_path / "out" / "deepcell"))
    rec = s["train-00000"]["json"]
    assert boxes_of(rec) == [[15.0, 20.0, 25.0, 30.0], [35.0, 20.0, 45.0, 30.0]]
    assert rec["target"]["labels"] == ["nucleus"]
    assert rec["meta"]["experiment"] == "exp0" and rec["meta"]["specimen"] == "tonsil"
    assert res.manifest["counts"]["written"] == 4


def test_box_cap_counted(tmp_path):
    res = build_fixture("deepcell", tmp_path, recipe_options={"max_boxes": "3"})
    assert res.manifest["rejects_by_reason"] == {"no_objects": 1, "too_many_boxes": 1}
    rej = [line for line in (tmp_path / "out" / "deepcell" / "rejects.jsonl").read_text().splitlines()
           if "too_many_boxes" in line]
    assert "4 boxes > max_boxes 3" in rej[0]


def test_show_boxes_on_objects(built):
    _, s, tmp = built
    for sid in ("train-00000", "train-00002", "val-00000"):
        assert_boxes_on_objects(s[sid]["json"], s[sid])
    assert_show_grid(tmp / "out" / "deepcell", tmp / "grid.png")


def test_npz_rows_stream(tmp_path):
    a = np.arange(2 * 3 * 4, dtype=np.int16).reshape(2, 3, 4)
    np.savez_compressed(tmp_path / "t.npz", a=a)
    rows = list(cells.iter_npy_rows(tmp_path / "t.npz", "a"))
    assert len(rows) == 2 and (rows[1] == a[1]).all()
    assert cells.npz_shape(tmp_path / "t.npz", "a") == ((2, 3, 4), np.dtype("int16"))
    assert cells.npz_shape(tmp_path / "t.npz", "b") is None


def _build(recipe_name, raw, out):
    return build(get_recipe(recipe_name), raw, BuildOptions(output=out))


def test_tissuenet_zip_read_in_place(tmp_path):
    """`tissuenet_v1.1.zip` as downloaded (split files at the top, a README beside them) gives the unpacked
    build's shards; with both the zip and its unpacked files present each split is read once."""
    from tests.fixtures import make
    from tests.fixtures._zips import shard_digests

    raw = make("deepcell", tmp_path / "raw")
    unpacked = _build("deepcell", raw, tmp_path / "a")
    with zipfile.ZipFile(raw / "tissuenet_v1.1.zip", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("Readme.md", "TissueNet v1.1")  # the zip's own readme, named as users quote it
        for p in sorted(raw.glob("*.npz")):
            z.write(p, p.name)
    both = _build("deepcell", raw, tmp_path / "b")
    for p in raw.glob("*.npz"):
        p.unlink()
    packed = _build("deepcell", raw, tmp_path / "c")
    assert packed.manifest["counts"] == unpacked.manifest["counts"] == both.manifest["counts"]
    assert packed.manifest["counts"]["written"] == 4
    digests = shard_digests(tmp_path / "a" / "deepcell")
    assert shard_digests(tmp_path / "c" / "deepcell") == digests == shard_digests(tmp_path / "b" / "deepcell")
    rec = by_id(read_samples(tmp_path / "c" / "deepcell"))["train-00000"]["json"]
    assert rec["meta"]["file"] == "tissuenet_v1.1_train.npz" and rec["meta"]["experiment"] == "exp0"


def test_dynamic_nuclear_net_zip(tmp_path):
    """DynamicNuclearNet (one channel, nuclei only) from its folder and from
    `DynamicNuclearNet-segmentation-v1_0.zip` left packed: grey tiles, nucleus boxes, the same bytes."""
    from tests.fixtures import deepcell as fx
    from tests.fixtures._zips import shard_digests, zip_folder

    raw = tmp_path / "raw"
    folder = fx.make_dynamic_nuclear_net(raw)
    res = _build("deepcell", raw, tmp_path / "a")
    s = by_id(read_samples(tmp_path / "a" / "deepcell"))
    assert sorted(s) == ["test-00000", "train-00000", "val-00000"] and res.manifest["counts"]["written"] == 3
    rec = s["train-00000"]["json"]
    assert boxes_of(rec) == [[15.0, 20.0, 25.0, 30.0], [35.0, 20.0, 45.0, 30.0]]
    assert rec["target"]["labels"] == ["nucleus"] and "stained nuclei" in rec["messages"][0]["content"][1]["text"]
    zip_folder(folder, raw / "DynamicNuclearNet-segmentation-v1_0.zip", "DynamicNuclearNet-segmentation-v1_0/")
    _build("deepcell", raw, tmp_path / "b")
    assert shard_digests(tmp_path / "b" / "deepcell") == shard_digests(tmp_path / "a" / "deepcell")
    with pytest.raises(SourceError, match="only target=nuclear"):
        list(get_recipe("deepcell").records(raw, {"target": "whole_cell"}))


def test_both_releases_in_one_folder(tmp_path):
    """TissueNet and DynamicNuclearNet under one input: ids name the file, so no tile is lost as a duplicate."""
    from tests.fixtures import deepcell as fx
    from tests.fixtures import make

    raw = make("deepcell", tmp_path / "raw")
    fx.make_dynamic_nuclear_net(raw)
    ids = [r.id for r in get_recipe("deepcell").records(raw, {"target": "nuclear"})]
    assert len(ids) == len(set(ids)) == 8
    assert "DynamicNuclearNet-segmentation-v1_0/train-00000" in ids and "tissuenet_v1.1_train-00002" in ids


def test_npz_member_copy_is_capped(tmp_path, monkeypatch):
    from tests.fixtures import make

    recipe = get_recipe("deepcell").module
    raw = make("deepcell", tmp_path / "raw")
    with zipfile.ZipFile(raw / "tissuenet_v1.1.zip", "w") as z:
        for p in sorted(raw.glob("*.npz")):
            z.write(p, p.name)
            p.unlink()
    with zipfile.ZipFile(raw / "bad.zip", "w") as z:  # a split name that is not an .npz: named, not a crash
        z.writestr("x_val.npz", b"not a zip")
    with pytest.raises(SourceError, match=r"bad.zip:x_val.npz: not a readable .npz"):
        list(recipe.records(raw, {}))
    (raw / "bad.zip").unlink()
    monkeypatch.setattr(recipe, "MAX_NPZ_BYTES", 1000)
    with pytest.raises(SourceError, match=r"tissuenet_v1.1.zip:tissuenet_v1.1_test.npz: over 1000 bytes"):
        list(recipe.records(raw, {}))
