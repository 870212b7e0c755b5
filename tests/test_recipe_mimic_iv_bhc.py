import pytest
from medmo_data.recipes import mimic_iv_bhc as recipe

from medmo_data.recipe import SourceError
from tests.fixtures._text import rejects
from tests.fixtures.mimic_iv_bhc import BHC, LONG_NOTE, NOTE
from tests.helpers import build_fixture, by_id, read_samples, texts

PROMPT = "Write the brief hospital course for the following discharge note.\n\n"


def test_bhc_default_cuts_long_notes_at_a_section(tmp_path):
    m = build_fixture("mimic_iv_bhc", tmp_path).manifest
    assert m["counts"] == {"read": 10, "written": 5, "rejected": 5}
    out = tmp_path / "out" / "mimic_iv_bhc"
    assert rejects(out) == {"10000002-DS-5": "too_long", "10000002-DS-6": "empty_text",
                            "10000002-DS-7": "non_utf8_text", "mimic-iv-bhc.csv:11": "malformed_csv",  # physical line (a quoted target spans 2)
                            "10000002-DS-9": "malformed_csv"}
    s = by_id(read_samples(out))
    rec = s["10000001-DS-1"]["json"]
    assert rec["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": PROMPT + NOTE}]},
        {"role": "assistant", "content": [{"type": "text", "text": BHC}]},
    ]
    assert (rec["task"], rec["modality"], rec["access"]) == ("summarization", "none", "credentialed")
    assert rec["target"] == {"answer": BHC}
    assert rec["meta"] == {"subject_id": "10000001", "input_tokens": 120, "target_tokens": 25,
                           "input_chars": len(NOTE), "cut_sections": 0}
    assert texts(s["10000001-DS-2"]["json"], "assistant") == "Line one of the course.\nLine two: discharged."
    # Patient-level split: both notes of 10000001 in train, 10000009 in val, 10000000 in test.
    assert {i: x["json"]["split"] for i, x in s.items()} == {
        "10000001-DS-1": "train", "10000001-DS-2": "train", "10000009-DS-1": "val", "10000000-DS-3": "test",
        "10000002-DS-4": "train"}
    assert s["10000000-DS-3"]["json"]["meta"]["input_tokens"] == -1
    # The 150k-character note keeps its first 4 whole sections (<= 20000 chars), drops the other 27.
    long = s["10000002-DS-4"]["json"]
    kept = texts(long, "user")[len(PROMPT):]
    assert len(LONG_NOTE) > 131072 and len(kept) <= 20000
    assert kept == LONG_NOTE[:LONG_NOTE.index("<PERTINENT RESULTS>", len(kept))].rstrip()
    assert kept.count("<PERTINENT RESULTS>") == 4 and long["meta"]["cut_sections"] == 27


def test_bhc_reject_rule_and_custom_limit(tmp_path):
    m = build_fixture("mimic_iv_bhc", tmp_path, recipe_options={"long": "reject"}).manifest
    assert m["rejects_by_reason"]["too_long"] == 2
    m = build_fixture("mimic_iv_bhc", tmp_path / "big", recipe_options={"max_input_chars": "200000"}).manifest
    assert m["counts"]["written"] == 6
    s = by_id(read_samples(tmp_path / "big" / "out" / "mimic_iv_bhc"))
    assert texts(s["10000002-DS-4"]["json"], "user") == PROMPT + LONG_NOTE
    assert texts(s["10000002-DS-5"]["json"], "user").endswith("<SERVICE> MEDICINE")


def test_bhc_cut_rule_unit():
    note = "<SEX> F <SERVICE> MEDICINE <HISTORY OF PRESENT ILLNESS> long history here"
    assert recipe.cut_at_section(note, len(note)) == (note, 0)
    assert recipe.cut_at_section(note, 30) == ("<SEX> F <SERVICE> MEDICINE", 1)
    assert recipe.cut_at_section(note, 5) is None


def test_bhc_bad_options_and_missing_file(tmp_path):
    with pytest.raises(SourceError, match="long='trim'"):
        list(recipe.records(tmp_path, {"long": "trim"}))
    with pytest.raises(SourceError, match="not an integer"):
        list(recipe.records(tmp_path, {"max_input_chars": "lots"}))
    with pytest.raises(SourceError, match="mimic-iv-bhc.csv"):
        list(recipe.records(tmp_path, {}))
