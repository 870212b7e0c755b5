import pytest

from medmo_data.render import render_messages
from tests.boxcheck import assert_boxes_on_objects, assert_show_grid
from tests.helpers import build_fixture, by_id, read_samples, texts

ROD = "yolo/labels/train/e_coli_01"
EMPTY = "yolo/labels/val/e_coli_02"
SPIRO = "darkfield/masks/spiro_01"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bacteria")
    res = build_fixture("bacteria", tmp)
    return res, by_id(read_samples(tmp / "out" / "bacteria")), tmp


def test_counts_and_rejects(built):
    res, s, _ = built
    assert res.manifest["counts"] == {"read": 6, "written": 3, "rejected": 3}
    assert res.manifest["rejects_by_reason"] == {"too_many_boxes": 1, "missing_image": 1, "no_objects": 1}
    assert {k: v["json"]["split"] for k, v in s.items()} == {ROD: "train", EMPTY: "val", SPIRO: "train"}


def test_yolo_boxes_and_edge(built):
    _, s, _ = built
    rec = s[ROD]["json"]
    got = [o["bbox"] for o in rec["objects"]]
    want = [[10, 10, 40, 20], [60, 40, 70, 80], [100, 50, 128, 60]]
    assert got == [pytest.approx(b, abs=1e-3) for b in want]
    assert got[2][2] == 128.0  # ends exactly on the right edge
    assert rec["target"] == {"labels": ["bacterium"], "count": 3}
    assert rec["meta"] == {"image": "e_coli_01.jpg", "annotation": "yolo", "boxes": 3}
    # the JPEG passes through untouched
    assert rec["images"][0]["derivation"]["pass_through"] is True
    assert render_messages(rec, "json")[1]["content"][0]["text"].startswith('[{"bbox_2d": [78, 104, 312, 208]')


def test_empty_label_file_is_a_negative(built):
    _, s, _ = built
    rec = s[EMPTY]["json"]
    assert rec["objects"] == [] and texts(rec, "assistant") == "None found."
    assert rec["target"] == {"labels": [], "count": 0}


def test_mask_touching_instances(built):
    _, s, _ = built
    rec = s[SPIRO]["json"]
    assert [o["bbox"] for o in rec["objects"]] == [[20.0, 10.0, 60.0, 30.0], [20.0, 30.0, 60.0, 50.0],
                                                   [80.0, 60.0, 110.0, 90.0]]


def test_cap_is_an_option(tmp_path):
    res = build_fixture("bacteria", tmp_path, recipe_options={"max_boxes": "2"})
    assert res.manifest["rejects_by_reason"] == {"too_many_boxes": 3, "missing_image": 1, "no_objects": 1}


def test_show_boxes_on_objects(built):
    _, s, tmp = built
    for sid in (ROD, SPIRO):
        assert_boxes_on_objects(s[sid]["json"], s[sid])
    assert_show_grid(tmp / "out" / "bacteria", tmp / "grid.png")


def test_class_names_from_data_yaml_are_said_as_words(tmp_path):
    """YOLO exports name classes as identifiers (`E_coli`); answers and target.labels use words."""
    from medmo_data.recipe import get_recipe
    from tests.fixtures import make

    raw = make("bacteria", tmp_path / "raw")
    (raw / "data.yaml").write_text("nc: 1\nnames: [E_coli]\n")
    out = {o.id: o for o in get_recipe("bacteria").records(raw, {}) if hasattr(o, "objects")}
    rec = out[ROD]
    assert {o["label"] for o in rec.objects} == {"E coli"} and rec.target["labels"] == ["E coli"]
