"""The Medical Meadow recipes (shared reader medmo_data.families.meadow): wikidoc, medical_flashcards, mediqa, cord19,
pubmed_causal, and medical_meadow_medqa (MCQ)."""

from __future__ import annotations

import json
import tracemalloc

import pytest

from medmo_data.families import meadow
from medmo_data.recipe import SourceError, get_recipe
from tests.fixtures import meadow_cord19, meadow_wikidoc
from tests.helpers import build_fixture, by_id, read_samples, texts

Q = "Answer this question truthfully"


def _rejects(tmp_path, name):
    lines = (tmp_path / "out" / name / "rejects.jsonl").read_text().splitlines()
    return {r["id"]: r["reason"] for r in map(json.loads, lines)}


def test_wikidoc_real_rows_placeholders_long_and_bad_bytes(tmp_path):
    res = build_fixture("meadow_wikidoc", tmp_path)
    assert res.manifest["counts"] == {"read": 10, "written": 5, "rejected": 5}
    assert _rejects(tmp_path, "meadow_wikidoc") == {
        "0000003": "empty_text", "0000004": "empty_text", "0000005": "missing_field",
        "0000007": "malformed_json", "0000008": "non_utf8_text"}
    s = by_id(read_samples(tmp_path / "out" / "meadow_wikidoc"))
    assert sorted(s) == ["0000000", "0000001", "0000002", "0000006", "0000009"]
    rec = s["0000002"]["json"]
    # Real medAlpaca row: the constant instruction stays as the prompt's first line.
    assert rec["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": f"{Q}\n\nWhen to seek urgent medical care when I "
                                                              "have Allergy ?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Call for an appointment with your health care "
                                           "provider if:\nSevere symptoms of allergy occur. Treatment for allergies "
                                           "no longer works."}]}]
    assert (rec["split"], rec["task"], rec["modality"], rec["images"]) == ("train", "text_qa", "none", [])
    assert rec["target"]["answer"].startswith("Call for an appointment")
    assert rec["meta"] == {"file": "medical_meadow_wikidoc.json"}
    # A 200k-character input is kept whole (token budgets are mix's job); stray outer spaces are stripped.
    assert texts(s["0000006"]["json"], "user") == f"{Q}\n\n{meadow_wikidoc.LONG_INPUT}"
    assert texts(s["0000009"]["json"], "user") == f"{Q}\n\nWhat is an  atrial septal defect ?"
    assert texts(s["0000009"]["json"], "assistant") == "A hole."
    assert set(s["0000000"]) == {"__key__", "json"}  # text-only: no image members


def test_flashcards_from_hub_parquet_ids_run_across_shards(tmp_path):
    res = build_fixture("meadow_medical_flashcards", tmp_path)
    assert res.manifest["counts"] == {"read": 5, "written": 2, "rejected": 3}
    assert _rejects(tmp_path, "meadow_medical_flashcards") == {
        "0000001": "empty_text", "0000002": "empty_text", "0000003": "missing_field"}
    s = by_id(read_samples(tmp_path / "out" / "meadow_medical_flashcards"))
    assert texts(s["0000004"]["json"], "user") == f"{Q}\n\nWhich nerve innervates the deltoid?"
    assert texts(s["0000004"]["json"], "assistant") == "The axillary nerve."
    assert s["0000004"]["json"]["meta"] == {"file": "0001.parquet"}


def test_flashcards_prefers_the_release_json_name(tmp_path):
    root = tmp_path / "raw"
    (root / "sub").mkdir(parents=True)
    rows = [{"instruction": Q, "input": "What is X?", "output": "Y."}]
    (root / "sub" / "medical_meadow_wikidoc_medical_flashcards.json").write_text(json.dumps(rows))
    out = list(get_recipe("meadow_medical_flashcards").records(root, {}))
    assert [(r.id, texts({"messages": r.messages}, "user")) for r in out] == [("0000000", f"{Q}\n\nWhat is X?")]


def test_missing_release_is_a_source_error(tmp_path):
    (tmp_path / "raw").mkdir()
    with pytest.raises(SourceError, match="medical_meadow_mediqa.json"):
        list(get_recipe("meadow_mediqa").records(tmp_path / "raw", {}))


def test_mediqa_question_then_documents_as_summarization(tmp_path):
    res = build_fixture("meadow_mediqa", tmp_path)
    assert res.manifest["counts"] == {"read": 3, "written": 2, "rejected": 1}
    assert _rejects(tmp_path, "meadow_mediqa") == {"0000001": "empty_text"}
    s = by_id(read_samples(tmp_path / "out" / "meadow_mediqa"))
    rec = s["0000002"]["json"]
    assert rec["task"] == "summarization"
    assert texts(rec, "user") == ("How is tinnitus diagnosed?\n\nTinnitus is ringing in the ears.\n"
                                  "Diagnosis relies on history and audiometry.")
    assert texts(rec, "assistant") == "By history, examination and a hearing test."
    assert len(texts(s["0000000"]["json"], "user")) > 25_000


def test_cord19_rows_and_rejects(tmp_path):
    res = build_fixture("meadow_cord19", tmp_path)
    assert res.manifest["counts"] == {"read": 5, "written": 2, "rejected": 3}
    assert _rejects(tmp_path, "meadow_cord19") == {
        "0000002": "empty_text", "0000003": "empty_text", "0000004": "malformed_record"}
    rec = by_id(read_samples(tmp_path / "out" / "meadow_cord19"))["0000001"]["json"]
    assert rec["task"] == "summarization"
    assert texts(rec, "user") == ("Please summerize the given abstract to a title\n\n"
                                  + meadow_cord19.row(2)["input"].strip())
    assert texts(rec, "assistant") == "Spike-ACE2 binding across 2 cell lines"


def _peak_rows(root) -> tuple[int, int]:
    tracemalloc.start()
    try:
        n = sum(1 for _ in meadow.records(root, ("medical_meadow_cord19.json",), task="summarization"))
        return n, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_cord19_memory_flat_on_a_large_streamed_array(tmp_path, monkeypatch):
    """Peak memory is bounded by the read chunk plus one row, not by the array (64 KiB chunks here so that
    both files span many chunks; the default is 1 MiB)."""
    from medmo_data.formats import json_stream

    monkeypatch.setattr(json_stream, "CHUNK", 64 * 1024)
    small, big = tmp_path / "small", tmp_path / "big"
    small.mkdir()
    big.mkdir()
    meadow_cord19.make_large(small / "medical_meadow_cord19.json", 2_000)
    meadow_cord19.make_large(big / "medical_meadow_cord19.json", 20_000)
    n1, p1 = _peak_rows(small)
    n2, p2 = _peak_rows(big)
    assert (n1, n2) == (2_000, 20_000)
    assert p2 < 1.5 * p1
    assert p2 < (big / "medical_meadow_cord19.json").stat().st_size / 4


def test_pubmed_causal_labels_and_typo(tmp_path):
    res = build_fixture("meadow_pubmed_causal", tmp_path)
    assert res.manifest["counts"] == {"read": 5, "written": 4, "rejected": 1}
    assert _rejects(tmp_path, "meadow_pubmed_causal") == {"0000004": "unknown_label"}
    s = by_id(read_samples(tmp_path / "out" / "meadow_pubmed_causal"))
    assert [s[f"000000{i}"]["json"]["target"]["code"] for i in range(4)] == [1, 2, 3, 0]
    rec = s["0000003"]["json"]
    assert rec["target"] == {"answer": "This no relationship.", "label": "no_relationship", "code": 0}
    assert texts(rec, "assistant") == "This no relationship."
    assert texts(s["0000000"]["json"], "user") == (
        "Question: Is this describing a (1) directly correlative relationship, (2) conditionally causative "
        "relationship, (3) causative relationship, or (0) no relationship.\n\nA McMahon score of at least 6 "
        "calculated on admission allows for a more sensitive, specific and timely identification of patients "
        "who may benefit from high-volume fluid resuscitation.")
    assert rec["task"] == "instruction"


def test_medqa_options_from_the_python_repr(tmp_path):
    res = build_fixture("medical_meadow_medqa", tmp_path)
    assert res.manifest["counts"] == {"read": 7, "written": 4, "rejected": 3}
    assert _rejects(tmp_path, "medical_meadow_medqa") == {
        "0000002": "answer_mismatch", "0000003": "answer_mismatch", "0000004": "malformed_options"}
    s = by_id(read_samples(tmp_path / "out" / "medical_meadow_medqa"))
    rec = s["0000000"]["json"]
    assert rec["task"] == "mcq"
    # "??" undone; options lettered in source order; the answer letter + text in the reply and the target.
    assert texts(rec, "user") == (
        "A 65-year-old man with hypertension has sudden left arm weakness. Which of the following is the most "
        "likely cause of this patient's symptoms?\n\nA. Berry aneurysm rupture\nB. Bridging vein tear\n"
        "C. Cerebellar bleeding\nD. Hypertensive encephalopathy\nE. Lipohyalinosis\n\n"
        "Answer with the letter of the correct option.")
    assert texts(rec, "assistant") == "E. Lipohyalinosis"
    assert rec["target"] == {"choices": {"A": "Berry aneurysm rupture", "B": "Bridging vein tear",
                                         "C": "Cerebellar bleeding", "D": "Hypertensive encephalopathy",
                                         "E": "Lipohyalinosis"}, "answer": "E", "answer_text": "Lipohyalinosis"}
    # An option holding an apostrophe is repr'd with double quotes; a question without "?" gets one "?".
    rec2 = s["0000001"]["json"]
    assert rec2["target"]["answer"] == "A" and rec2["target"]["answer_text"] == "Crohn's disease"
    assert texts(rec2, "user").startswith("A 24-year-old woman has transmural inflammation with skip lesions on "
                                          "colonoscopy. What is the diagnosis?\n\nA. Crohn's disease\n")
    assert "decontaminate against MedQA test" in get_recipe("medical_meadow_medqa").info.notes


@pytest.mark.parametrize("newline", ["\n", "\\n"])
def test_medqa_real_doubled_marks_undone(newline):
    """Real inputs: `...disease?? \n{` and `...condition? ? \n{` (medalpaca appended "? " to a question that
    ended in "?" or "? "): one "?" is left, whether the separator is a newline or a literal backslash-n."""
    import json

    from medmo_data.recipes.medical_meadow_medqa import parse_input

    from tests.fixtures import REAL

    real = json.loads((REAL / "medical_meadow" / "medical_meadow_medqa.quoted_inputs.json").read_text("utf-8"))
    q1, c1 = parse_input(real[0]["input"].replace("\n", newline))
    assert q1.endswith("acute pancreatitis. Which of the following is the most likely etiology for this "
                       "patient\u2019s disease?") and not q1.startswith("Q:")
    assert c1["C"] == "Scorpion sting" and len(c1) == 5
    q2, c2 = parse_input(real[1]["input"].replace("\n", newline))
    assert q2.endswith("will be helpful in confirming the diagnosis of this condition?")
    assert "? ?" not in q2 and "??" not in q2 and "\\n" not in q2
    assert c2["E"] == "Hyperuricemia, hyperkalemia, hyperphosphatemia, lactic acidosis, and oxalate crystals"


def test_medqa_real_rows_built(tmp_path):
    build_fixture("medical_meadow_medqa", tmp_path)
    s = by_id(read_samples(tmp_path / "out" / "medical_meadow_medqa"))
    user = texts(s["0000006"]["json"], "user")
    assert "diagnosis of this condition?\n\nA. Hyperkalemia" in user and "? ?" not in user
    assert texts(s["0000005"]["json"], "assistant") == "C. Scorpion sting"


def test_medqa_parse_input_exact_release_whitespace():
    from medmo_data.recipes.medical_meadow_medqa import parse_input

    q, c = parse_input("Q:Which is right?? \n{'A': 'x', 'B': \"it's y\", 'C': 'z'},")
    assert (q, c) == ("Which is right?", {"A": "x", "B": "it's y", "C": "z"})
    with pytest.raises(ValueError, match="not a Python literal"):
        parse_input("Q:Broken? \n{'A': 'x', 'B': __import__('os')},")
