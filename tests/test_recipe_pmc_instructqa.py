"""PMC-InstructQA: release.json streamed; instruction layout; choice letters parsed into target."""

from __future__ import annotations

import json

from medmo_data.recipe import get_recipe
from tests.fixtures import pmc_instructqa as fx
from tests.helpers import build_fixture, by_id, read_samples, texts


def test_release_json(tmp_path):
    res = build_fixture("pmc_instructqa", tmp_path)
    out = tmp_path / "out" / "pmc_instructqa"
    assert res.manifest["counts"] == {"read": 7, "written": 4, "rejected": 3}
    rej = {r["id"]: r["reason"] for r in map(json.loads, (out / "rejects.jsonl").read_text().splitlines())}
    assert rej == {"0000004": "empty_text", "0000005": "missing_field", "0000006": "non_utf8_text"}
    s = by_id(read_samples(out))
    mcq = s["0000000"]["json"]
    assert mcq["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": fx.MCQ_INSTR + "\n\n###Question: Nerve supply of the "
                                      "deltoid muscle is\n###Options:\nA. Radial\nB. Ulnar\nC. Musculocutaneous\n"
                                      "D. Axillary"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "###Answer: OPTION D IS CORRECT."}]}]
    assert mcq["target"] == {"answer": "###Answer: OPTION D IS CORRECT.", "choice": "D", "source": "medmcqa"}
    assert (mcq["split"], mcq["task"], mcq["modality"]) == ("train", "instruction", "none")
    assert s["0000001"]["json"]["meta"] == {"source": "medqa_train", "sample_id": "1234"}
    assert s["0000002"]["json"]["target"]["choice"] == ""
    # Empty input: the instruction alone is the prompt.
    assert texts(s["0000003"]["json"], "user") == "What is the definition of hypokalemia?"


def test_json_lines_release_gives_the_same_samples(tmp_path):
    root = tmp_path / "raw"
    root.mkdir()
    (root / "release.json").write_text("\n".join(json.dumps(r) for r in fx.rows()[:4]) + "\n")
    got = list(get_recipe("pmc_instructqa").records(root, {}))
    assert [g.id for g in got] == ["0000000", "0000001", "0000002", "0000003"]
    assert got[0].target["choice"] == "D" and got[1].target["choice"] == "A"
