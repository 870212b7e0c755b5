from tests.helpers import build_fixture, by_id, read_samples, texts


def test_vqa_med_2019(tmp_path):
    res = build_fixture("vqa_med_2019", tmp_path)
    m = res.manifest
    # 6 train lines (1 malformed, 1 image missing) + 2 val + 8 real test lines.
    assert m["counts"] == {"read": 16, "written": 14, "rejected": 2}
    assert m["rejects_by_reason"] == {"malformed_line": 1, "missing_image": 1}
    s = by_id(read_samples(tmp_path / "out" / "vqa_med_2019"))
    splits = {}
    for i, x in s.items():
        splits.setdefault(x["json"]["split"], set()).add(i)
    assert splits["train"] == {"train-modality-1", "train-modality-2", "train-plane-1", "train-organ-1"}
    assert splits["val"] == {"val-all-1", "val-all-3"}
    assert len(splits["test"]) == 8
    # Category comes from the per-category file; parentheses in answers are literal.
    tr = s["train-modality-1"]["json"]
    assert texts(tr, "user") == "what modality is used?"
    assert texts(tr, "assistant") == "ct w/contrast (iv)"
    assert tr["target"] == {"answer": "ct w/contrast (iv)", "answers": ["ct w/contrast (iv)"], "category": "modality"}
    assert s["val-all-1"]["json"]["target"]["category"] == ""
    # Real test lines: '#' alternatives split; the first is the answer.
    t = s["test-organ-8"]["json"]
    assert texts(t, "user") == "what is the organ system in this image?"
    assert texts(t, "assistant") == "heart and great vessels"
    assert t["target"]["answers"] == ["heart and great vessels", "lung, mediastinum, pleura", "spine and contents"]
    assert t["meta"] == {"image_id": "synpic43535", "category": "organ"}
    assert texts(s["test-modality-1"]["json"], "assistant") == "cta - ct angiography"
    assert all(len(x["json"]["images"]) == 1 for x in s.values())
    raw = (tmp_path / "raw" / "vqa_med_2019" / "VQAMed2019Test" / "VQAMed2019_Test_Images" / "synpic54082.jpg").read_bytes()
    assert s["test-modality-1"]["0.jpg"] == raw
