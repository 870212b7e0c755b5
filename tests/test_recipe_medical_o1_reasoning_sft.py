import pytest
from medmo_data.recipes import medical_o1_reasoning_sft as recipe

from medmo_data.recipe import SourceError
from tests.fixtures._text import rejects
from tests.fixtures.medical_o1_reasoning_sft import LONG_COT, ZH, real_rows
from tests.helpers import build_fixture, by_id, read_samples, texts

REAL = real_rows()


def test_o1_en_think_tags_default(tmp_path):
    m = build_fixture("medical_o1_reasoning_sft", tmp_path).manifest
    assert m["counts"] == {"read": 7, "written": 3, "rejected": 4}
    out = tmp_path / "out" / "medical_o1_reasoning_sft"
    assert rejects(out) == {"en-000002": "empty_text", "en-000003": "missing_field",
                            "en-000004": "malformed_json", "en-000005": "non_utf8_text"}
    s = by_id(read_samples(out))
    rec = s["en-000000"]["json"]
    assert rec["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": REAL[0]["Question"]}]},
        {"role": "assistant", "content": [{"type": "text", "text": "<think>\n" + REAL[0]["Complex_CoT"].strip()
                                           + "\n</think>\n" + REAL[0]["Response"].strip()}]},
    ]
    assert rec["target"] == {"reasoning": REAL[0]["Complex_CoT"].strip(), "answer": REAL[0]["Response"].strip()}
    assert (rec["task"], rec["modality"], rec["split"], rec["images"]) == ("reasoning", "none", "train", [])
    assert rec["meta"] == {"config": "en", "file": "medical_o1_sft.json"}
    # The demo file's MCQ fields (options, answer_idx, the original question) never reach the sample.
    assert "answer_idx" not in str(rec) and REAL[0]["question"][:60] not in str(rec)
    assert s["en-000006"]["json"]["target"]["reasoning"] == LONG_COT


@pytest.mark.parametrize("think", ["plain", "none"])
def test_o1_think_styles(tmp_path, think):
    build_fixture("medical_o1_reasoning_sft", tmp_path, recipe_options={"think": think})
    s = by_id(read_samples(tmp_path / "out" / "medical_o1_reasoning_sft"))
    cot, resp = REAL[1]["Complex_CoT"].strip(), REAL[1]["Response"].strip()
    want = f"{cot}\n\n{resp}" if think == "plain" else resp
    assert texts(s["en-000001"]["json"], "assistant") == want
    assert s["en-000001"]["json"]["target"] == {"reasoning": cot, "answer": resp}


def test_o1_zh_config(tmp_path):
    m = build_fixture("medical_o1_reasoning_sft", tmp_path, recipe_options={"config": "zh"}).manifest
    assert m["counts"] == {"read": 1, "written": 1, "rejected": 0}
    rec = read_samples(tmp_path / "out" / "medical_o1_reasoning_sft")[0]["json"]
    assert rec["id"] == "zh-000000"
    assert texts(rec, "assistant") == f"<think>\n{ZH[0]['Complex_CoT']}\n</think>\n{ZH[0]['Response']}"


def test_o1_bad_options_and_missing_config_file(tmp_path):
    with pytest.raises(SourceError, match="think='xml'"):
        list(recipe.records(tmp_path, {"think": "xml"}))
    with pytest.raises(SourceError, match="config='fr'"):
        list(recipe.records(tmp_path, {"config": "fr"}))
    with pytest.raises(SourceError, match="unknown option"):
        list(recipe.records(tmp_path, {"lang": "en"}))
    with pytest.raises(SourceError, match="medical_o1_sft_mix.json"):
        list(recipe.records(tmp_path, {"config": "en_mix"}))
