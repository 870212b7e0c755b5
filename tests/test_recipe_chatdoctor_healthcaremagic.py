import json

import pytest
from medmo_data.recipes import chatdoctor_healthcaremagic as recipe

from medmo_data.recipe import SourceError
from tests.fixtures import REAL
from tests.fixtures._text import build_hub_copy, rejects
from tests.fixtures.chatdoctor_healthcaremagic import INSTRUCTION, LONG_INPUT, make_hub
from tests.helpers import build_fixture, by_id, read_samples, texts

REAL_ROWS = json.loads((REAL / "chatdoctor" / "genmedgpt5k_chatdoctor5k.first3.json").read_text())


def test_healthcaremagic_json_release(tmp_path):
    m = build_fixture("chatdoctor_healthcaremagic", tmp_path).manifest
    assert m["counts"] == {"read": 9, "written": 5, "rejected": 4}
    assert m["rejects_by_reason"] == {"duplicate_text": 1, "empty_text": 1, "malformed_json": 1,
                                      "non_utf8_text": 1}
    s = by_id(read_samples(tmp_path / "out" / "chatdoctor_healthcaremagic"))
    assert sorted(s) == ["000000", "000001", "000002", "000003", "000004"]
    first = s["000000"]["json"]
    assert first["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": INSTRUCTION + "\n\nDoctor, I have been experiencing "
                                      "sudden and frequent panic attacks. I don't know what to do."}]},
        {"role": "assistant", "content": [{"type": "text", "text": REAL_ROWS[0]["output"]}]},
    ]
    assert first["task"] == "text_qa" and first["modality"] == "none" and first["split"] == "train"
    assert first["images"] == [] and set(s["000000"]) == {"__key__", "json"}
    assert first["target"] == {"answer": REAL_ROWS[0]["output"]}
    assert first["meta"] == {"file": "HealthCareMagic-100k.json", "has_input": True, "input_placeholder": False}
    # Trailing space of the real input is stripped; boilerplate text stays as the source wrote it.
    assert texts(s["000002"]["json"], "user").endswith("\n\nHi, Doctor. I think I might have Turner syndrome.")
    assert texts(s["000003"]["json"], "assistant").startswith("Hi, Thank you for posting your query. Welcome")
    assert not texts(s["000003"]["json"], "assistant").endswith(" ")
    # A 68k-character patient message is kept whole.
    assert texts(s["000004"]["json"], "user") == INSTRUCTION + "\n\n" + LONG_INPUT
    assert rejects(tmp_path / "out" / "chatdoctor_healthcaremagic") == {
        "000005": "duplicate_text", "000006": "empty_text", "000007": "malformed_json", "000008": "non_utf8_text"}


def test_healthcaremagic_hub_parquet_gives_same_samples(tmp_path):
    counts, hub = build_hub_copy("chatdoctor_healthcaremagic", make_hub, tmp_path)
    assert counts == {"read": 8, "written": 6, "rejected": 2}
    assert hub["000000"]["json"]["messages"][1]["content"][0]["text"] == REAL_ROWS[0]["output"]
    assert hub["000001"]["json"]["meta"]["file"] == "train-00000-of-00001.parquet"
    # The hub copy stores the same row as valid UTF-8 text (index 7: the non-object is absent there).
    assert texts(hub["000007"]["json"], "user").endswith("My café job makes my back hurt.")


def test_healthcaremagic_rejects_options_and_missing_release(tmp_path):
    with pytest.raises(SourceError, match="unknown option"):
        list(recipe.records(tmp_path, {"think": "tags"}))
    with pytest.raises(SourceError, match="HealthCareMagic-100k.json"):
        list(recipe.records(tmp_path, {}))
