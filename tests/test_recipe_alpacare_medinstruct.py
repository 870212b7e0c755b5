import pytest
from medmo_data.recipes import alpacare_medinstruct as recipe

from medmo_data.recipe import SourceError
from tests.fixtures._text import build_hub_copy, rejects
from tests.fixtures.alpacare_medinstruct import LONG_OUTPUT, ROWS, make_hub
from tests.helpers import build_fixture, by_id, read_samples, texts


def test_alpacare_noinput_placeholder_is_dropped(tmp_path):
    m = build_fixture("alpacare_medinstruct", tmp_path).manifest
    assert m["counts"] == {"read": 7, "written": 5, "rejected": 2}
    out = tmp_path / "out" / "alpacare_medinstruct"
    assert rejects(out) == {"000004": "empty_text", "000006": "duplicate_text"}
    s = by_id(read_samples(out))
    first = s["000000"]["json"]
    assert first["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": ROWS[0]["instruction"]}]},
        {"role": "assistant", "content": [{"type": "text", "text": ROWS[0]["output"]}]},
    ]
    assert first["meta"] == {"file": "MedInstruct-52k.json", "has_input": False, "input_placeholder": True}
    assert (first["task"], first["license"]) == ("instruction", "CC-BY-NC-4.0")
    # A real input follows the instruction after a blank line.
    assert texts(s["000001"]["json"], "user") == ROWS[1]["instruction"] + "\n\n" + ROWS[1]["input"]
    # Padded/upper-case placeholder and a truly empty input both give the bare instruction.
    assert texts(s["000002"]["json"], "user") == ROWS[2]["instruction"]
    assert s["000003"]["json"]["meta"] == {"file": "MedInstruct-52k.json", "has_input": False,
                                           "input_placeholder": False}
    assert "<noinput>" not in str([x["json"]["messages"] for x in s.values()]).lower()
    assert texts(s["000005"]["json"], "assistant") == LONG_OUTPUT
    # The eval file beside the training file is never read.
    assert "EVAL-ONLY" not in str([x["json"] for x in s.values()])


def test_alpacare_hub_parquet(tmp_path):
    counts, s = build_hub_copy("alpacare_medinstruct", make_hub, tmp_path)
    assert counts == {"read": 6, "written": 5, "rejected": 1}
    assert texts(s["000000"]["json"], "user") == ROWS[0]["instruction"]


def test_alpacare_eval_file_alone_is_not_a_source(tmp_path):
    (tmp_path / "MedInstruct-test.jsonl").write_text("{}\n")
    with pytest.raises(SourceError, match="MedInstruct-52k.json"):
        list(recipe.records(tmp_path, {}))
