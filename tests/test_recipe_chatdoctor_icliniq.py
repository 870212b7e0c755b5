from tests.fixtures._text import build_hub_copy, rejects
from tests.fixtures.chatdoctor_icliniq import ROWS, make_hub
from tests.helpers import build_fixture, by_id, read_samples, texts

INSTRUCTION = "If you are a doctor, please answer the medical questions based on the patient's description."


def test_icliniq_uses_the_doctor_answer_only(tmp_path):
    m = build_fixture("chatdoctor_icliniq", tmp_path).manifest
    assert m["counts"] == {"read": 5, "written": 2, "rejected": 3}
    out = tmp_path / "out" / "chatdoctor_icliniq"
    assert rejects(out) == {"000002": "empty_text", "000003": "missing_field", "000004": "duplicate_text"}
    s = by_id(read_samples(out))
    rec = s["000000"]["json"]
    assert texts(rec, "user") == INSTRUCTION + "\n\n" + ROWS[0]["input"]
    assert texts(rec, "assistant") == ROWS[0]["answer_icliniq"]
    assert rec["target"] == {"answer": ROWS[0]["answer_icliniq"]}
    assert (rec["task"], rec["split"], rec["modality"]) == ("text_qa", "train", "none")
    assert texts(s["000001"]["json"], "user").endswith("rash on both cheeks since yesterday.")
    # Model-written answers never reach a sample.
    assert not any("MODEL-" in str(x["json"]) for x in s.values())


def test_icliniq_hub_parquet(tmp_path):
    counts, s = build_hub_copy("chatdoctor_icliniq", make_hub, tmp_path)
    assert counts == {"read": 3, "written": 2, "rejected": 1}
    assert texts(s["000001"]["json"], "assistant") == ROWS[1]["answer_icliniq"]
