import json

import pytest

from medmo_data.recipe import SourceError, get_recipe
from tests.fixtures import make
from tests.helpers import build_fixture, by_id, read_samples, texts


def test_mimic_cxr_vqa(tmp_path):
    res = build_fixture("mimic_cxr_vqa", tmp_path)
    m = res.manifest
    assert m["counts"] == {"read": 6, "written": 4, "rejected": 2}
    assert m["rejects_by_reason"] == {"empty_answer": 1, "missing_image": 1}
    s = by_id(read_samples(tmp_path / "out" / "mimic_cxr_vqa"))
    assert {i: x["json"]["split"] for i, x in s.items()} == {
        "train-13280": "train", "train-20001": "train", "val-30001": "val", "test-40001": "test"}
    r = s["train-13280"]["json"]
    assert texts(r, "user") == "Are there signs of both pleural effusion and lung cancer in the left lower lung zone?"
    assert texts(r, "assistant") == "yes"
    assert r["access"] == "credentialed"
    assert r["meta"]["subject_id"] == "10000001" and r["meta"]["content_type"] == "attribute"
    # Multi-answer lists are joined with ", " as MedMO did, in the released (alphabetical) order.
    multi = s["train-20001"]["json"]
    assert texts(multi, "assistant") == "atelectasis, lung opacity, pleural effusion"
    assert multi["target"]["answers"] == ["atelectasis", "lung opacity", "pleural effusion"]
    assert texts(s["val-30001"]["json"], "assistant") == "f"
    assert all(len(x["json"]["images"]) == 1 for x in s.values())


def test_empty_answer_option_and_data_object(tmp_path):
    raw = make("mimic_cxr_vqa", tmp_path / "raw")
    ds = raw / "mimiccxrvqa" / "dataset"
    recs = json.loads((ds / "train.json").read_text())
    (ds / "train.json").unlink()
    (ds / "train_clean_full.json").write_text(json.dumps({"data": recs}))  # MedMO's own wrapping
    out = list(get_recipe("mimic_cxr_vqa").records(raw, {"empty_answer": "none"}))
    empty = next(o for o in out if getattr(o, "id", "") == "train-20002")
    assert empty.messages[-1]["content"][0]["text"] == "none"
    assert empty.target["answers"] == []
    assert len([o for o in out if o.__class__.__name__ == "RawSample"]) == 6


def test_missing_images_folder_is_a_source_error(tmp_path):
    raw = make("mimic_cxr_vqa", tmp_path / "raw")
    with pytest.raises(SourceError, match="images"):
        list(get_recipe("mimic_cxr_vqa").records(raw, {"images": str(tmp_path / "nowhere")}))
