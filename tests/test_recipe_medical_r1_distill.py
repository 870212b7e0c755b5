import pytest
from medmo_data.recipes import medical_r1_distill as recipe

from medmo_data.recipe import SourceError
from tests.fixtures._text import rejects
from tests.fixtures.medical_r1_distill import ROWS, ZH
from tests.helpers import build_fixture, by_id, read_samples, texts


def test_r1_literal_and_plain_column_spellings(tmp_path):
    m = build_fixture("medical_r1_distill", tmp_path).manifest
    assert m["counts"] == {"read": 5, "written": 3, "rejected": 2}
    out = tmp_path / "out" / "medical_r1_distill"
    assert rejects(out) == {"en-000003": "empty_text", "en-000004": "missing_field"}
    s = by_id(read_samples(out))
    rec = s["en-000000"]["json"]
    assert rec["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": ROWS[0]["question"]}]},
        {"role": "assistant", "content": [{"type": "text", "text": "<think>\n" + ROWS[0]["reasoning (reasoning_content)"]
                                           + "\n</think>\n" + ROWS[0]["response (content)"]}]},
    ]
    assert rec["target"] == {"reasoning": ROWS[0]["reasoning (reasoning_content)"],
                             "answer": ROWS[0]["response (content)"]}
    assert (rec["task"], rec["modality"], rec["meta"]) == ("reasoning", "none",
                                                           {"config": "en", "file": "medical_r1_distill_sft.json"})
    assert texts(s["en-000001"]["json"], "assistant") == (
        "<think>\nPeaked T waves are the earliest ECG sign of high potassium.\n</think>\nHyperkalemia.")
    # R1's own <think> wrapper is removed, so tags never nest.
    assert texts(s["en-000002"]["json"], "assistant") == (
        "<think>\nHeparin is reversed by a positively charged protein.\n</think>\nProtamine sulfate.")
    assert s["en-000002"]["json"]["target"]["reasoning"] == "Heparin is reversed by a positively charged protein."


def test_r1_think_none_and_zh(tmp_path):
    build_fixture("medical_r1_distill", tmp_path, recipe_options={"think": "none", "config": "zh"})
    rec = read_samples(tmp_path / "out" / "medical_r1_distill")[0]["json"]
    assert rec["id"] == "zh-000000"
    assert texts(rec, "assistant") == ZH[0]["response (content)"]
    assert rec["target"]["reasoning"] == ZH[0]["reasoning (reasoning_content)"]


def test_r1_bad_option(tmp_path):
    with pytest.raises(SourceError, match="think='yes'"):
        list(recipe.records(tmp_path, {"think": "yes"}))
