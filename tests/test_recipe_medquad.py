"""MedQuAD: the XML tree with every schema variant; pairs without answers are counted rejects."""

from __future__ import annotations

import json

import pytest

from medmo_data.recipe import SourceError, get_recipe
from tests.helpers import build_fixture, by_id, read_samples, texts


def _rejects(folder):
    return [(r["id"], r["reason"]) for r in map(json.loads, (folder / "rejects.jsonl").read_text().splitlines())]


def test_xml_tree_all_variants(tmp_path):
    res = build_fixture("medquad", tmp_path)
    out = tmp_path / "out" / "medquad"
    # The LiveQA judgments zip at the root (qrels and retrieved answers, not QA pairs) adds nothing.
    assert res.manifest["counts"] == {"read": 67, "written": 42, "rejected": 25}
    assert res.manifest["rejects_by_reason"] == {"no_answer": 13, "malformed_xml": 1, "non_utf8_text": 1,
                                                 "empty_text": 1, "duplicate_pair": 9}
    rej = _rejects(out)
    # 12 copyright-removed MPlusDrugs answers + the empty GARD answer; broken files are one reject each.
    assert sum(1 for i, r in rej if i.startswith("11_MPlusDrugs_QA/0000001/0000001-") and r == "no_answer") == 12
    assert ("2_GARD_QA/0002079/0002079-1", "no_answer") in rej
    assert ("5_NIDDK_QA/0000001", "malformed_xml") in rej
    assert ("8_NHLBI_QA_XML/0000001", "non_utf8_text") in rej
    assert ("5_NIDDK_QA/0000002/0000002-1", "empty_text") in rej
    s = by_id(read_samples(out))
    # Normal <Document>: entity decoded, space before "?" removed, focus/qtype/url in meta.
    ghr = s["3_GHR_QA/0000001/0000001-1"]["json"]
    assert texts(ghr, "user") == "What is (are) Aarskog-Scott syndrome?"
    assert "a widow's peak hairline" in texts(ghr, "assistant")
    assert ghr["meta"] == {"collection": "3_GHR_QA", "document": "0000001", "source": "GHR",
                           "focus": "Aarskog-Scott syndrome", "qtype": "information",
                           "url": "https://ghr.nlm.nih.gov/condition/aarskog-scott-syndrome"}
    assert (ghr["split"], ghr["task"], ghr["target"]["answer"]) == ("train", "text_qa", texts(ghr, "assistant"))
    # Lowercase NINDS schema (<doc docid corpus>/<qaPairs>/<pair>).
    ninds = s["6_NINDS_QA/0000007/0000007-1"]["json"]
    assert texts(ninds, "user") == "what is holmes-adie syndrome?"
    assert texts(ninds, "assistant").startswith("Holmes-Adie syndrome (HAS) is a neurological disorder affecting "
                                                "the pupil of the eye and the autonomic nervous system. It is")
    assert (ninds["meta"]["source"], ninds["meta"]["focus"]) == ("NINDS", "Holmes-Adie")
    # CDC <DiseaseFile fid>: "? ?" collapses; the answer keeps its paragraph break.
    cdc = s["9_CDC_QA/0000397/0000397-2"]["json"]
    assert texts(cdc, "user") == "Who is at risk for Parasites - Taeniasis?"
    assert cdc["meta"]["document"] == "0000397"
    assert "\n\nT. solium tapeworm infections" in texts(s["9_CDC_QA/0000397/0000397-1"]["json"], "assistant")
    # MedlinePlus bullets flattened into runs of blanks become lines.
    a1c = texts(s["4_MPlus_Health_Topics_QA/0000001/0000001-1"]["json"], "assistant")
    assert "levels have been:\n- A normal A1C level is below 5.7 percent\n- Prediabetes is between" in a1c
    assert texts(s["5_NIDDK_QA/0000002/0000002-2"]["json"], "assistant") == "Rest. Fluids.\n\n- Drink water\n- Sleep"


def test_subdocuments_reusing_qids_are_all_kept(tmp_path):
    """Real release: 0000013_2_1.xml ... 0000013_2_6.xml reuse 0000013_2.xml's qids (0000013_2-1 ...) for other
    questions. Keyed per (file, qid) every one is written; none is a duplicate_id."""
    build_fixture("medquad", tmp_path)
    out = tmp_path / "out" / "medquad"
    s = by_id(read_samples(out))
    cancer = {sid for sid in s if sid.startswith("1_CancerGov_QA/")}
    assert len(cancer) == 23
    firsts = {sid.split("/")[1]: texts(s[sid]["json"], "user") for sid in cancer if sid.endswith("/0000013_2-1")}
    assert firsts == {"0000013_2": "What is (are) Chronic Myeloproliferative Neoplasms?",
                      "0000013_2_1": "What is (are) Polycythemia Vera?",
                      "0000013_2_2": "What is (are) Primary Myelofibrosis?",
                      "0000013_2_3": "What is (are) Essential Thrombocythemia?",
                      "0000013_2_4": "What is (are) Chronic Neutrophilic Leukemia?",
                      "0000013_2_5": "What is (are) Chronic Eosinophilic Leukemia?",
                      "0000013_2_6": "What is (are) Chronic Myelogenous Leukemia?"}
    assert all(s[sid]["json"]["meta"]["document"] == "0000013_2" for sid in cancer)
    assert "duplicate_id" not in {r for _, r in _rejects(out)}


def test_true_duplicates_dropped_with_their_own_reason(tmp_path):
    """Real 0000153.xml repeats three pairs inside the file; its byte copy 0000999.xml repeats all six."""
    build_fixture("medquad", tmp_path)
    out = tmp_path / "out" / "medquad"
    dups = [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()
            if json.loads(line)["reason"] == "duplicate_pair"]
    assert sorted(d["id"] for d in dups if "/0000153/" in d["id"]) == [
        "5_NIDDK_QA/0000153/0000153-10", "5_NIDDK_QA/0000153/0000153-16", "5_NIDDK_QA/0000153/0000153-6"]
    assert sum(1 for d in dups if d["id"].startswith("5_NIDDK_QA/0000999/")) == 6
    assert dups[0]["detail"] == ("5_NIDDK_QA/0000153.xml: same question and answer as "
                                 "5_NIDDK_QA/0000153/0000153-5")
    s = by_id(read_samples(out))
    assert "5_NIDDK_QA/0000153/0000153-5" in s and not any(sid.startswith("5_NIDDK_QA/0000999/") for sid in s)
    # every pair with an answer is written or rejected with a reason whose detail names its file
    for line in (out / "rejects.jsonl").read_text().splitlines():
        assert ".xml" in json.loads(line)["detail"]


def test_hf_mirror_csv(tmp_path):
    root = tmp_path / "raw"
    root.mkdir()
    (root / "medDataset_processed.csv").write_text(
        'qtype,Question,Answer\nsusceptibility,Who is at risk for Lymphocytic Choriomeningitis (LCM)? ?,'
        '"LCMV infections can occur after exposure to fresh urine."\ninformation,What is X ?,\n', encoding="utf-8")
    out = list(get_recipe("medquad").records(root, {}))
    assert [getattr(o, "reason", None) for o in out] == [None, "no_answer"]
    assert texts({"messages": out[0].messages}, "user") == "Who is at risk for Lymphocytic Choriomeningitis (LCM)?"
    assert out[0].meta["qtype"] == "susceptibility"


def test_nothing_to_read_is_a_source_error(tmp_path):
    (tmp_path / "raw").mkdir()
    with pytest.raises(SourceError, match="no MedQuAD collection folders"):
        list(get_recipe("medquad").records(tmp_path / "raw", {}))
