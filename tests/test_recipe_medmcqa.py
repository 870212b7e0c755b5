"""MedMCQA: 1-indexed raw `cop` vs 0-indexed HF `cop`, dev -> val (the benchmark), unlabeled test rejected."""

from __future__ import annotations

import json

from medmo_data.build.distributor import BuildOptions, build
from medmo_data.recipe import get_recipe
from tests.fixtures import medmcqa as fx
from tests.helpers import build_fixture, by_id, read_samples, texts

README_ID = "4e1715fe-0bc3-494e-b6eb-2d4617245aef"
CHOICES = {"A": "Leukemoid reaction", "B": "Leukopenia", "C": "Myeloid metaplasia", "D": "Neutrophilia"}


def _rejects(folder):
    return {r["id"]: r["reason"] for r in map(json.loads, (folder / "rejects.jsonl").read_text().splitlines())}


def test_raw_release_one_indexed(tmp_path):
    res = build_fixture("medmcqa", tmp_path)
    out = tmp_path / "out" / "medmcqa"
    assert res.manifest["counts"] == {"read": 9, "written": 3, "rejected": 6}
    assert _rejects(out) == {
        "a1b2c3d4-0000-4000-8000-000000000003": "bad_answer",   # cop 0 in a 1-indexed file
        "a1b2c3d4-0000-4000-8000-000000000004": "empty_text",
        "train.json:4": "malformed_json", "train.json:6": "non_utf8_text",
        "a1b2c3d4-0000-4000-8000-000000000006": "unlabeled", "a1b2c3d4-0000-4000-8000-000000000007": "unlabeled"}
    s = by_id(read_samples(out))
    rec = s[README_ID]["json"]
    # README example: "cop":1 -> opa "Leukemoid reaction" -> letter A; options keep opa..opd order.
    assert rec["target"]["choices"] == CHOICES
    assert (rec["target"]["answer"], rec["target"]["answer_text"]) == ("A", "Leukemoid reaction")
    assert texts(rec, "user") == (
        "A 40-year-old man presents with 5 days of productive cough and fever. Pseudomonas aeruginosa is isolated "
        "from a pulmonary abscess. CBC shows an acute effect characterized by marked leukocytosis (50,000 mL) and "
        "the differential count reveals a shift to left in granulocytes. Which of the following terms best "
        "describes these hematologic findings?\n\nA. Leukemoid reaction\nB. Leukopenia\nC. Myeloid metaplasia\n"
        "D. Neutrophilia\n\nAnswer with the letter of the correct option.")
    reply = texts(rec, "assistant")
    assert reply.startswith("A. Leukemoid reaction\n\nExplanation: Circulating levels of leukocytes")
    assert reply.endswith("Leukopenia is defined as an absolute decrease in the circulating WBC count.")
    assert rec["target"]["explanation"].startswith("Circulating levels") and rec["split"] == "train"
    assert rec["meta"] == {"subject": "Pathology", "topic": "Basic Concepts and Vascular changes of Acute "
                           "Inflammation", "choice_type": "single", "file": "train.json"}
    # cop 4 -> D; exp "None" is no explanation; a null topic becomes "".
    d = s["a1b2c3d4-0000-4000-8000-000000000002"]["json"]
    assert texts(d, "assistant") == "D. Axillary"
    assert d["target"]["explanation"] == "" and d["meta"]["topic"] == ""
    # dev.json is the benchmark: val, never train; nothing from test.json is written.
    assert {i: x["json"]["split"] for i, x in s.items()} == {
        README_ID: "train", "a1b2c3d4-0000-4000-8000-000000000002": "train",
        "a1b2c3d4-0000-4000-8000-000000000005": "val"}


def test_hub_parquet_zero_indexed_gives_the_same_answers(tmp_path):
    raw = tmp_path / "hub"
    fx.make_hub(raw)
    res = build(get_recipe("medmcqa"), raw, BuildOptions(output=tmp_path / "out"))
    out = tmp_path / "out" / "medmcqa"
    # HF has no malformed lines; cop 0-1=-1 row is out of range -> bad_answer; -1 on test -> unlabeled.
    assert res.manifest["counts"] == {"read": 7, "written": 3, "rejected": 4}
    assert sorted(_rejects(out).values()) == ["bad_answer", "empty_text", "unlabeled", "unlabeled"]
    s = by_id(read_samples(out))
    rec = s[README_ID]["json"]
    assert (rec["target"]["answer"], rec["target"]["answer_text"]) == ("A", "Leukemoid reaction")
    assert texts(s["a1b2c3d4-0000-4000-8000-000000000002"]["json"], "assistant") == "D. Axillary"
    assert s["a1b2c3d4-0000-4000-8000-000000000005"]["json"]["split"] == "val"


def test_labeled_test_row_goes_to_test_never_train(tmp_path):
    from medmo_data.recipes.medmcqa import sample

    row = dict(fx.rows()["dev"][0], cop=2)
    assert sample("t:1", "test", row, base=1, where="test.json").split == "test"
    assert sample("t:1", "test", dict(row, cop=-1), base=0, where="test.parquet").reason == "unlabeled"
