from medmo_data.recipes.chexpert import QUESTION

from tests.helpers import build_fixture, by_id, read_samples, texts

F2 = "train/patient00002/study2/view1_frontal"


def test_chexpert_labels_as_classification_vqa(tmp_path):
    res = build_fixture("chexpert", tmp_path)
    m = res.manifest
    assert m["counts"] == {"read": 8, "written": 6, "rejected": 2}
    assert m["rejects_by_reason"] == {"bad_label": 1, "missing_image": 1}
    assert m["access"] == "registered"
    s = by_id(read_samples(tmp_path / "out" / "chexpert"))
    r = s[F2]["json"]
    assert texts(r, "user") == QUESTION
    assert texts(r, "assistant") == "Lung Opacity, Pleural Effusion"  # uncertain (-1.0) not positive by default
    assert r["target"]["uncertain"] == ["Cardiomegaly", "Edema"]
    assert r["target"]["labels"]["Fracture"] == 0 and r["target"]["labels"]["Pneumonia"] is None
    assert texts(s["train/patient00001/study1/view1_frontal"]["json"], "assistant") == "No Finding, Support Devices"
    assert texts(s["train/patient00004/study1/view1_frontal"]["json"], "assistant") == "No Finding"
    lat = s["train/patient00002/study2/view2_lateral"]["json"]["meta"]
    assert lat == {"patient": "patient00002", "study": "study2", "view": "Lateral", "ap_pa": ""}
    assert {k: v["json"]["split"] for k, v in s.items() if k.startswith("valid/")} == {
        "valid/patient64541/study1/view1_frontal": "val"}
    assert sum(v["json"]["split"] == "train" for v in s.values()) == 5


def test_chexpert_uncertain_policies(tmp_path):
    res = build_fixture("chexpert", tmp_path / "ones", recipe_options={"uncertain": "ones"})
    s = by_id(read_samples(tmp_path / "ones" / "out" / "chexpert"))
    assert texts(s[F2]["json"], "assistant") == "Cardiomegaly, Lung Opacity, Edema, Pleural Effusion"
    res = build_fixture("chexpert", tmp_path / "ex", recipe_options={"uncertain": "exclude"})
    assert res.manifest["rejects_by_reason"] == {"bad_label": 1, "missing_image": 1, "uncertain_label": 2}
