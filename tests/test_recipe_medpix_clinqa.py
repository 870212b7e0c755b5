import json

from tests.fixtures.medpix_clinqa import REAL_DIR
from tests.helpers import build_fixture, by_id, read_samples, texts


def test_medpix_clinqa_and_medpix_captions(tmp_path):
    res = build_fixture("medpix_clinqa", tmp_path)
    m = res.manifest
    assert m["counts"] == {"read": 10, "written": 6, "rejected": 4}
    assert m["rejects_by_reason"] == {"empty_text": 2, "missing_image": 1, "no_split": 1}
    s = by_id(read_samples(tmp_path / "out" / "medpix_clinqa"))
    q = s["clinqa-000000"]["json"]
    assert (q["task"], texts(q, "user"), texts(q, "assistant")) == (
        "vqa", "What is the most likely diagnosis given the findings?",
        "Left upper lobe collapse caused by an obstructing small cell lung carcinoma.")
    assert q["meta"]["mode"] == "clinical" and q["split"] == "train"
    # A ClinQA row on a MedPix 2.0 test case goes to test.
    assert s["clinqa-000001"]["json"]["split"] == "test"
    real = [json.loads(x) for x in (REAL_DIR / "descriptions_train.head3.jsonl").read_text().splitlines()]
    c = s["MPX1024_synpic40275"]["json"]
    assert (c["task"], c["modality"], c["split"]) == ("caption", "ct", "train")
    assert texts(c, "assistant") == real[0]["Description"]["Caption"]
    assert texts(s["MPX1012_synpic22949"]["json"], "assistant") == "pelvis"
    # Double spaces of the real caption are kept as published.
    assert "calcifications  noted" in texts(s["MPX1009_synpic46283"]["json"], "assistant")
    assert s["MPX1009_synpic46283"]["json"]["split"] == "test"
