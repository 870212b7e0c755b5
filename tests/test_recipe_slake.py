import json

import pytest
from medmo_data.recipes.slake import read_detection

from medmo_data.render import render_messages
from tests.boxcheck import assert_boxes_on_objects, assert_show_grid
from tests.helpers import build_fixture, by_id, read_samples, texts


@pytest.fixture(scope="module")
def en(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("slake_en")
    res = build_fixture("slake", tmp)
    return res, by_id(read_samples(tmp / "out" / "slake")), tmp


def test_counts_and_rejects(en):
    res, s, _ = en
    assert res.manifest["counts"] == {"read": 17, "written": 14, "rejected": 3}
    assert res.manifest["rejects_by_reason"] == {"missing_field": 1, "missing_detection": 1, "no_objects": 1}


def test_vqa_samples(en):
    _, s, _ = en
    rec = s["q3"]["json"]
    assert texts(rec, "user") == "Does the picture contain liver?"
    assert texts(rec, "assistant") == "Yes"
    assert rec["target"] == {"answer": "Yes", "answer_type": "closed"}
    assert rec["modality"] == "mri" and rec["meta"]["content_type"] == "Organ"
    assert s["q152"]["json"]["modality"] == "xray"
    assert {sid for sid in s if sid.startswith("q")} == {"q0", "q1", "q2", "q3", "q1804", "q152", "q9000", "q9835",
                                                          "q9836", "q11934", "q11935"}
    # JPEG bytes pass through
    assert s["q0"]["json"]["images"][0]["derivation"]["pass_through"] is True


def test_xywh_boxes(en):
    _, s, _ = en
    rec = s["det-xmlab1"]["json"]
    assert rec["task"] == "grounding" and rec["split"] == "test"  # a Chinese question on xmlab1 is in test.json
    assert rec["objects"] == [{"image": 0, "label": "Liver", "bbox": [20.0, 30.0, 60.0, 55.0]},
                              {"image": 0, "label": "Spleen", "bbox": [80.0, 20.0, 96.0, 50.0]}]
    assert rec["target"] == {"labels": ["Liver", "Spleen"]}
    msgs = render_messages(rec, "qwen3")
    assert "0 to 1000" in msgs[0]["content"][1]["text"]
    assert msgs[1]["content"][0]["text"] == "Liver <box>[[156, 268, 469, 491]]</box>\nSpleen <box>[[625, 179, 750, 446]]</box>"


def _test_json_images(raw) -> set[str]:
    return {r["img_name"] for r in json.loads((raw / "test.json").read_text(encoding="utf-8")) if "img_name" in r}


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_no_test_image_in_train_in_any_language(tmp_path, lang):
    """Real release: xmlab102 has English questions in test.json and a Chinese one in train.json; xmlab1 the
    reverse. Whatever language is built, no image any test.json lists reaches a train sample."""
    build_fixture("slake", tmp_path, recipe_options={"lang": lang})
    samples = read_samples(tmp_path / "out" / "slake")
    test_images = _test_json_images(tmp_path / "raw" / "slake")
    assert {"xmlab1/source.jpg", "xmlab102/source.jpg"} <= test_images
    train_images = {x["json"]["meta"]["img_name"] for x in samples if x["json"]["split"] == "train"}
    assert train_images and not train_images & test_images
    for x in samples:  # every sample on a test image is a test sample, questions and grounding alike
        if x["json"]["meta"]["img_name"] in test_images:
            assert x["json"]["split"] == "test", x["json"]["id"]


def test_image_level_split_integrity(en):
    res, s, _ = en
    by_split: dict[str, set[str]] = {}
    for x in s.values():
        by_split.setdefault(x["json"]["split"], set()).add(x["json"]["meta"]["img_name"])
    assert by_split["test"] == {"xmlab1/source.jpg", "xmlab102/source.jpg"}
    assert by_split["val"] == {"xmlab0/source.jpg"}
    assert by_split["train"] == {"xmlab120/source.jpg", "xmlab295/source.jpg"}
    assert s["det-xmlab102"]["json"]["split"] == "test"
    # questions filed in train.json on a test image move to test and say where they were filed
    assert s["q0"]["json"]["split"] == "test" and s["q0"]["json"]["meta"]["filed_split"] == "train"
    assert s["q9000"]["json"]["split"] == "test"
    assert s["q11934"]["json"]["meta"]["filed_split"] == "test"


def test_chinese_selectable(tmp_path):
    res = build_fixture("slake", tmp_path, recipe_options={"lang": "zh"})
    s = by_id(read_samples(tmp_path / "out" / "slake"))
    assert set(s) == {"q6709", "q8293", "q8294", "q4951", "q12995", "q20000",
                      "det-xmlab295", "det-xmlab47", "det-xmlab102", "det-xmlab1"}
    assert res.manifest["rejects_by_reason"] == {"missing_field": 1}
    assert texts(s["q6709"]["json"], "assistant") == "较少"
    assert {sid for sid, x in s.items() if x["json"]["split"] == "train"} == {"q6709", "det-xmlab295"}
    # q4951 is filed in train.json, but xmlab102's English questions are in test.json
    assert s["q4951"]["json"]["split"] == "test" and s["det-xmlab102"]["json"]["split"] == "test"


def test_show_boxes_on_objects(en):
    _, s, tmp = en
    for sid in ("det-xmlab1", "det-xmlab102", "det-xmlab295"):
        assert_boxes_on_objects(s[sid]["json"], s[sid])
    assert_show_grid(tmp / "out" / "slake", tmp / "grid.png")


def test_read_detection_rejects_corners():
    with pytest.raises(ValueError, match="x, y, w, h"):
        read_detection(b'[{"Liver": [1, 2, 3]}]')


def test_hub_imgs_zip_read_in_place_same_bytes(tmp_path):
    """The hub ships `imgs.zip` (members imgs/xmlabN/...): reading it in place gives the unpacked bytes."""
    import hashlib
    import shutil
    import zipfile

    from medmo_data.build.distributor import BuildOptions, build
    from medmo_data.recipe import get_recipe
    from tests.fixtures import make

    raw = make("slake", tmp_path / "raw")
    ref = build(get_recipe("slake"), raw, BuildOptions(output=tmp_path / "a"))
    with zipfile.ZipFile(raw / "imgs.zip", "w") as z:
        for p in sorted((raw / "imgs").rglob("*")):
            if p.is_file():
                z.write(p, p.relative_to(raw).as_posix())
    shutil.rmtree(raw / "imgs")
    zipped = build(get_recipe("slake"), raw, BuildOptions(output=tmp_path / "b"))
    assert zipped.manifest["counts"] == ref.manifest["counts"]

    def digests(folder):
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.tar"))}
    assert digests(tmp_path / "b" / "slake") == digests(tmp_path / "a" / "slake")
