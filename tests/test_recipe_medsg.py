import pytest

from medmo_data.render import render_messages
from tests.boxcheck import assert_show_grid, box_contrast
from tests.helpers import build_fixture, by_id, read_samples, texts

REF = "referring/AbdomenCT1K/CT_RightKidney/npy_imgs/casenum_00798_sliceid_13_CT_RightKidney"
DIFF = "Registered_Diff/BraTS/MRI_Tumor/npy_imgs/casenum_001_sliceid_60_MRI_Tumor#0"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("medsg")
    res = build_fixture("medsg", tmp)
    return res, by_id(read_samples(tmp / "out" / "medsg")), tmp


def test_counts_and_rejects(built):
    res, s, _ = built
    assert res.manifest["counts"] == {"read": 13, "written": 10, "rejected": 3}
    assert res.manifest["rejects_by_reason"] == {"image_count_mismatch": 1, "no_box": 1, "missing_image": 1}


def test_multi_turn_record_becomes_one_sample_per_question(built):
    _, s, _ = built
    got = [(s[f"{REF}#{k}"]["json"]["objects"][0]["image"], s[f"{REF}#{k}"]["json"]["objects"][0]["label"],
            s[f"{REF}#{k}"]["json"]["objects"][0]["bbox"]) for k in range(3)]
    assert got == [(2, "RightVentricle", [92.0, 150.0, 164.0, 224.0]), (1, "PharynxCancer", [136.0, 225.0, 152.0, 254.0]),
                   (0, "RightKidney", [213.0, 142.0, 248.0, 178.0])]
    rec = s[f"{REF}#0"]["json"]
    assert len(rec["images"]) == 3 and all(im["width"] == 336 for im in rec["images"])
    assert texts(rec, "user").startswith("Identify the bounding box of the region described by the following "
                                         "expression: RightVentricle. {box_format_hint}")
    assert render_messages(rec, "pixel")[1]["content"][0]["text"] == \
        "It's in the third image. Picture 3: RightVentricle <box>[[92, 150, 164, 224]]</box>"


def test_box_goes_to_last_image_without_ordinal(built):
    _, s, _ = built
    rec = s[DIFF]["json"]
    assert rec["objects"] == [{"image": 1, "label": "difference", "bbox": [100.0, 120.0, 180.0, 200.0]}]
    assert rec["modality"] == "mri" and rec["meta"]["task"] == "Registered_Diff"


def test_bench_is_test_only(built):
    _, s, _ = built
    assert {sid for sid, x in s.items() if x["json"]["split"] == "test"} == {"MedSG-Bench/Task4/0"}
    rec = s["MedSG-Bench/Task4/0"]["json"]
    assert texts(rec, "user").startswith("The kidney is at [50, 60, 110, 130] (pixel coordinates) in the first image.")
    assert rec["meta"]["query_boxes"] == 1 and rec["objects"][0]["bbox"] == [56.0, 64.0, 118.0, 136.0]


def test_bench_can_be_skipped(tmp_path):
    res = build_fixture("medsg", tmp_path, recipe_options={"bench": "skip"})
    assert res.manifest["counts"] == {"read": 11, "written": 9, "rejected": 2}


def test_show_boxes_on_objects(built):
    # show draws image 0's boxes: the samples whose box is on the first image
    _, s, _ = built
    for sid in (f"{REF}#2", "referring/4C2021/CT_PharynxCancer/npy_imgs/casenum_001_sliceid_268_CT_PharynxCancer#0"):
        (inside, outside), = box_contrast(s[sid]["json"], s[sid])
        assert inside > outside + 60
    _, _, tmp = built
    assert_show_grid(tmp / "out" / "medsg", tmp / "grid.png")
