"""PubMedQA: PQA-L (the benchmark) only in test; PQA-A/PQA-U to train minus PQA-L PMIDs; dict keyed by PMID."""

from __future__ import annotations

import json

from medmo_data.build.distributor import BuildOptions, build
from medmo_data.recipe import get_recipe
from tests.fixtures import REAL
from tests.fixtures import pubmedqa as fx
from tests.helpers import build_fixture, by_id, read_samples, texts

OPTIONS = "\n\nA. yes\nB. no\nC. maybe\n\nAnswer with the letter of the correct option."


def _rejects(folder):
    return {r["id"]: r["reason"] for r in map(json.loads, (folder / "rejects.jsonl").read_text().splitlines())}


def test_release_layout_splits_and_decontamination(tmp_path):
    res = build_fixture("pubmedqa", tmp_path)
    out = tmp_path / "out" / "pubmedqa"
    assert res.manifest["counts"] == {"read": 14, "written": 7, "rejected": 7}
    assert _rejects(out) == {
        "21645374": "benchmark_overlap", "12377809": "benchmark_overlap", "30000004": "bad_answer",
        "30000005": "empty_text", "pqa_a:30000006": "non_utf8_text", "pqa_a:30000007": "malformed_json",
        "40000002": "empty_text"}
    s = by_id(read_samples(out))
    splits = {i: x["json"]["split"] for i, x in s.items()}
    # Every PQA-L entry is test (the benchmark), nothing of it in train; PQA-A/U are train.
    assert splits == {"21645374": "test", "16418930": "test", "26037986": "test", "25957366": "test",
                      "30000001": "train", "30000008": "train", "40000001": "train"}
    assert {i: s[i]["json"]["meta"]["official_test"] for i in ("21645374", "16418930", "26037986", "25957366")} \
        == {"21645374": True, "16418930": True, "26037986": True, "25957366": False}


def test_real_pqal_entry_messages(tmp_path):
    build_fixture("pubmedqa", tmp_path)
    s = by_id(read_samples(tmp_path / "out" / "pubmedqa"))
    real = json.loads((REAL / "pubmedqa" / "ori_pqal_sample.json").read_text())
    e = real["26037986"]
    rec = s["26037986"]["json"]
    context = "\n".join(f"{lab}: {c}" for lab, c in zip(e["LABELS"], e["CONTEXTS"], strict=True))
    assert context.startswith("AIMS: Emergency surgery is associated with poorer outcomes")
    assert texts(rec, "user") == f"Context:\n{context}\n\nQuestion: {e['QUESTION']}{OPTIONS}"
    # maybe -> C; the long answer is the explanation, kept apart in target.
    assert texts(rec, "assistant") == f"C. maybe\n\nExplanation: {e['LONG_ANSWER']}"
    assert rec["target"] == {"choices": {"A": "yes", "B": "no", "C": "maybe"}, "answer": "C",
                             "answer_text": "maybe", "explanation": e["LONG_ANSWER"]}
    assert rec["task"] == "mcq" and rec["modality"] == "none"
    # YEAR null -> "" ; labels: yes -> A, no -> B.
    assert s["25957366"]["json"]["meta"] == {"pmid": "25957366", "subset": "pqa_l", "year": "",
                                             "official_test": False}
    assert s["21645374"]["json"]["target"]["answer"] == "A"
    assert s["16418930"]["json"]["target"]["answer"] == "B"


def test_unlabeled_is_text_qa_with_the_same_target_keys(tmp_path):
    build_fixture("pubmedqa", tmp_path)
    rec = by_id(read_samples(tmp_path / "out" / "pubmedqa"))["40000001"]["json"]
    assert rec["task"] == "text_qa"
    assert texts(rec, "user") == ("Context:\nMETHODS: Serum vitamin D was measured in 300 adults.\n\n"
                                  "Question: Is vitamin D linked to mood?")
    assert texts(rec, "assistant") == "Low vitamin D was associated with depressive symptoms."
    assert rec["target"] == {"choices": {"A": "yes", "B": "no", "C": "maybe"}, "answer": "", "answer_text": "",
                             "explanation": "Low vitamin D was associated with depressive symptoms."}


def test_hub_parquet_layout_matches_raw(tmp_path):
    hub = tmp_path / "hub"
    fx.make_hub(hub)
    res = build(get_recipe("pubmedqa"), hub, BuildOptions(output=tmp_path / "out"))
    out = tmp_path / "out" / "pubmedqa"
    # No test_ground_truth.json in the hub copy: decontamination uses the PQA-L PMIDs read first.
    assert res.manifest["counts"] == {"read": 12, "written": 4 + 5, "rejected": 3}
    assert _rejects(out) == {"21645374": "benchmark_overlap", "30000004": "bad_answer", "30000005": "empty_text"}
    s = by_id(read_samples(out))
    assert {i for i, x in s.items() if x["json"]["split"] == "test"} == {
        "21645374", "16418930", "26037986", "25957366"}
    raw_tmp = tmp_path / "rawbuild"
    build_fixture("pubmedqa", raw_tmp)
    r = by_id(read_samples(raw_tmp / "out" / "pubmedqa"))
    assert s["26037986"]["json"]["messages"] == r["26037986"]["json"]["messages"]
    # 12377809 is official test, but this miniature pqa_labeled lacks it (the real one has all 1,000).
    assert s["12377809"]["json"]["split"] == "train"
