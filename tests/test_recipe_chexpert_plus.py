from tests.helpers import build_fixture, by_id, read_samples, texts


def test_chexpert_plus_reports(tmp_path):
    res = build_fixture("chexpert_plus", tmp_path)
    m = res.manifest
    assert m["counts"] == {"read": 6, "written": 4, "rejected": 2}
    assert m["rejects_by_reason"] == {"empty_report": 1, "missing_image": 1}
    s = by_id(read_samples(tmp_path / "out" / "chexpert_plus"))
    f = s["train/patient00001/study1/view1_frontal"]
    assert texts(f["json"], "assistant") == ("The lungs are clear. No pleural effusion. Heart size is normal.\n\n"
                                             "1. No acute cardiopulmonary process.")
    assert texts(f["json"], "user").startswith("Clinical history: Shortness of breath.\n\n")
    assert f["json"]["images"][0]["derivation"] != {} and "0.png" in f  # 16-bit PNG decoded
    # Both views of the study carry the same report.
    assert texts(s["train/patient00001/study1/view2_lateral"]["json"], "assistant") == texts(f["json"], "assistant")
    # Impression only in section_end_of_impression; ALL CAPS kept; history from section_history.
    r = s["train/patient00002/study3/view1_frontal"]["json"]
    assert texts(r, "assistant") == "RIGHT LOWER LOBE PNEUMONIA."
    assert texts(r, "user").startswith("Clinical history: FEVER\n\n")
    assert s["valid/patient64541/study1/view1_frontal"]["json"]["split"] == "val"
    assert m["splits"] == {"train": 3, "val": 1}
