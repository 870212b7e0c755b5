from medmo_data.families.reports import REPORT_PROMPTS, pick
from tests.helpers import build_fixture, by_id, read_samples, texts

REAL_FINDINGS = ("Cardiac size cannot be evaluated. Large left pleural effusion is new. Small right effusion is new. "
                 "The upper lungs are clear. Right lower lobe opacities are better seen in prior CT. There is no "
                 "pneumothorax. There are mild degenerative changes in the thoracic spine")


def test_mimic_cxr_studies_sections_and_splits(tmp_path):
    res = build_fixture("mimic_cxr", tmp_path)
    m = res.manifest
    assert m["counts"] == {"read": 7, "written": 4, "rejected": 3}
    assert m["rejects_by_reason"] == {"empty_report": 1, "missing_report": 1, "no_split": 1}
    assert m["access"] == "credentialed"
    s = by_id(read_samples(tmp_path / "out" / "mimic_cxr"))
    r = s["s50414267"]["json"]
    assert texts(r, "assistant") == f"{REAL_FINDINGS}\n\nLarge left pleural effusion"
    assert texts(r, "user") == ("Indication: ___ year old woman with ?pleural effusion // ?pleural effusion\n\n"
                                + pick(REPORT_PROMPTS, "s50414267"))
    assert r["meta"]["views"] == ["PA", "LATERAL"] and len(r["images"]) == 2
    # IMPRESSION only; numbered lines joined.
    assert texts(s["s53911762"]["json"], "assistant") == (
        "1. No acute cardiopulmonary process. 2. Endotracheal tube terminates 4 cm above the carina.")
    # "FINDINGS AND IMPRESSION:" is an impression.
    assert s["s53189527"]["json"]["target"] == {
        "report": "Heart size is normal. Lungs are clear. No pleural effusion or pneumothorax.", "findings": "",
        "impression": "Heart size is normal. Lungs are clear. No pleural effusion or pneumothorax."}
    # Report read from mimic-cxr-reports.zip; frontal (PA) before lateral although its dicom id sorts later.
    assert s["s58000003"]["json"]["meta"]["views"] == ["PA", "LATERAL"]
    assert texts(s["s58000003"]["json"], "assistant") == ("No focal consolidation. Mild cardiomegaly is stable."
                                                          "\n\nStable mild cardiomegaly.")
    assert {k: v["json"]["split"] for k, v in s.items()} == {"s50414267": "train", "s53189527": "val",
                                                             "s53911762": "test", "s58000003": "train"}
    assert "test-1img-000000.tar" in [sh["path"] for sh in m["shards"]]


def test_mimic_cxr_view_selection(tmp_path):
    res = build_fixture("mimic_cxr", tmp_path, recipe_options={"views": "PA"})
    # s53911762 (AP only) has no PA view left.
    assert res.manifest["rejects_by_reason"]["no_selected_view"] == 1
    s = by_id(read_samples(tmp_path / "out" / "mimic_cxr"))
    assert {k: v["json"]["meta"]["views"] for k, v in s.items()} == {
        "s50414267": ["PA"], "s53189527": ["PA"], "s58000003": ["PA"]}
