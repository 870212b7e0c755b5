from tests.helpers import build_fixture, by_id, read_samples, texts


def test_vqa_rad_osf_layout(tmp_path):
    res = build_fixture("vqa_rad", tmp_path)
    m = res.manifest
    assert m["counts"] == {"read": 10, "written": 9, "rejected": 1}
    assert m["rejects_by_reason"] == {"missing_image": 1}
    s = by_id(read_samples(tmp_path / "out" / "vqa_rad"))
    # Integer answer (qid 2392) becomes text; "CLOSED " with a space normalises.
    assert texts(s["2392"]["json"], "assistant") == "4"
    assert s["3371"]["json"]["target"]["answer_type"] == "closed"
    assert texts(s["1"]["json"], "user") == "Are regions of the brain infarcted?"
    # The test question and its linked paraphrase are both test; nothing else is.
    assert {i for i, x in s.items() if x["json"]["split"] == "test"} == {"9001", "9002"}
    # JPEG bytes pass through untouched.
    raw = (tmp_path / "raw" / "vqa_rad" / "VQA_RAD Image Folder" / "synpic54610.jpg").read_bytes()
    assert s["1"]["0.jpg"] == raw
    assert s["1"]["json"]["images"][0]["derivation"]["pass_through"] is True
