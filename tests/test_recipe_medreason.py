import pytest
from medmo_data.recipes import medreason as recipe

from medmo_data.recipe import SourceError
from tests.fixtures._text import rejects
from tests.fixtures.medreason import MEDQA_OPTIONS, REASONING, ROWS
from tests.helpers import build_fixture, by_id, read_samples, texts


def test_medreason_drops_benchmark_sets_and_keeps_options(tmp_path):
    m = build_fixture("medreason", tmp_path).manifest
    assert m["counts"] == {"read": 12, "written": 5, "rejected": 7}
    out = tmp_path / "out" / "medreason"
    assert rejects(out) == {
        "ours_quality_33000.jsonl:4": "malformed_json", "MMLU-3": "benchmark_overlap",
        "pubmedqa_labeled-21645374": "benchmark_overlap", "MedXpertQA-1001": "benchmark_overlap",
        "LastHumanity-5": "benchmark_overlap", "medqa-9": "empty_text",
        "ours_quality_33000.jsonl:12": "non_utf8_text"}
    s = by_id(read_samples(out))
    assert sorted(s) == ["huatuo-88", "medmcqa-1201", "medmcqa-1202", "medqa-7", "pubmedqa_artificial-4411"]
    rec = s["medqa-7"]["json"]
    assert rec["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": ROWS[0]["question"] + "\n\n" + MEDQA_OPTIONS}]},
        {"role": "assistant", "content": [{"type": "text",
                                           "text": f"<think>\n{REASONING}\n</think>\nParvovirus B19 infection"}]},
    ]
    # Options keep their released order; the answer text names the 4th option, letter D.
    assert rec["target"] == {"reasoning": REASONING, "answer": "Parvovirus B19 infection",
                             "choices": {"A": "Benign genetic carrier condition", "B": "Folate deficiency",
                                         "C": "Iron deficiency", "D": "Parvovirus B19 infection",
                                         "E": "Vitamin B12 deficiency"},
                             "answer_letter": "D"}
    assert (rec["task"], rec["modality"], rec["meta"]) == ("reasoning", "none",
                                                           {"dataset_name": "medqa", "id_in_dataset": "7"})
    # MedMCQA "text. Explanation: ..." resolves to the option it starts with (B, not the longer D).
    assert s["medmcqa-1201"]["json"]["target"]["answer_letter"] == "B"
    assert s["pubmedqa_artificial-4411"]["json"]["target"]["answer_letter"] == "A"
    # An answer that names no option keeps its text but no letter; open questions have no choices.
    assert s["medmcqa-1202"]["json"]["target"]["answer_letter"] == ""
    huatuo = s["huatuo-88"]["json"]
    assert texts(huatuo, "user") == ROWS[2]["question"]
    assert (huatuo["target"]["choices"], huatuo["target"]["answer_letter"]) == ({}, "")


def test_medreason_think_plain(tmp_path):
    build_fixture("medreason", tmp_path, recipe_options={"think": "plain"})
    s = by_id(read_samples(tmp_path / "out" / "medreason"))
    assert texts(s["huatuo-88"]["json"], "assistant") == f"{REASONING}\n\n{ROWS[2]['answer']}"


def test_medreason_option_parsing(tmp_path):
    assert recipe.parse_options("Answer Choices:\nA. Iron\nB. Folate\n  deficiency") == {
        "A": "Iron", "B": "Folate deficiency"}
    assert recipe.parse_options("A. x\nC. y") == {}
    assert recipe.answer_letter("(B) Lupus nephritis", {"A": "IgA", "B": "Lupus nephritis"}) == "B"
    with pytest.raises(SourceError, match="think='maybe'"):
        list(recipe.records(tmp_path, {"think": "maybe"}))
    with pytest.raises(SourceError, match="ours_quality_33000.jsonl"):
        list(recipe.records(tmp_path, {}))
