import json

from medmo_data.build.distributor import BuildOptions, build
from medmo_data.recipe import get_recipe
from tests.fixtures import make
from tests.fixtures.medqa import FIVE, FOUR, Q
from tests.helpers import build_fixture, by_id, read_samples, texts


def test_medqa_four_options(tmp_path):
    res = build_fixture("medqa", tmp_path)
    m = res.manifest
    assert m["counts"] == {"read": 10, "written": 7, "rejected": 3}
    assert m["rejects_by_reason"] == {"bad_answer": 1, "malformed_json": 1, "non_utf8_text": 1}
    assert m["splits"] == {"test": 3, "train": 1, "val": 3}
    s = by_id(read_samples(tmp_path / "out" / "medqa"))
    rec = s["us4-train-1"]["json"]
    opts = "\n".join(f"{k}. {v}" for k, v in FOUR.items())
    assert texts(rec, "user") == f"{Q}\n\n{opts}\n\nAnswer with the letter of the correct option."
    assert texts(rec, "assistant") == "A. Electrocardiogram"
    assert rec["target"] == {"choices": FOUR, "answer": "A", "answer_text": "Electrocardiogram"}
    # Real test line 3 ends with a stray quote that is removed; it stays in test.
    t = s["us4-test-2"]["json"]
    assert t["split"] == "test" and texts(t, "user").split("\n\n")[0].endswith("symptoms?")
    # Nothing from US_qbank.jsonl.
    assert not any("QBANK" in texts(x["json"], "user") for x in s.values())


def test_medqa_five_options_letters(tmp_path):
    raw = make("medqa", tmp_path / "raw")
    build(get_recipe("medqa"), raw, BuildOptions(output=tmp_path / "out", recipe_options={"options": "5"}))
    s = by_id(read_samples(tmp_path / "out" / "medqa"))
    rec = s["us5-train-1"]["json"]
    assert rec["target"]["answer"] == "B" and rec["target"]["choices"] == FIVE
    assert json.loads(json.dumps(rec["target"]["choices"])) == FIVE  # option order kept A..E


def test_gbaker_hub_layout_root_jsonl(tmp_path):
    """GBaker/MedQA-USMLE-4-options main holds only phrases_no_exclude_{train,test}.jsonl at the root (+ README):
    that folder is read as the 4-option release, no dev file needed."""
    import pytest

    from medmo_data.recipe import SourceError

    arch = make("medqa", tmp_path / "arch") / "data_clean" / "questions" / "US" / "4_options"
    hub = tmp_path / "GBaker--MedQA-USMLE-4-options"
    hub.mkdir()
    for split in ("train", "test"):
        (hub / f"phrases_no_exclude_{split}.jsonl").write_bytes((arch / f"phrases_no_exclude_{split}.jsonl").read_bytes())
    (hub / "README.md").write_text("---\nlicense: cc-by-4.0\n---\n")
    res = build(get_recipe("medqa"), hub, BuildOptions(output=tmp_path / "out"))
    assert res.manifest["splits"] == {"test": 3, "train": 1}
    s = by_id(read_samples(tmp_path / "out" / "medqa"))
    assert texts(s["us4-train-1"]["json"], "assistant") == "A. Electrocardiogram"
    assert s["us4-test-2"]["json"]["split"] == "test"
    with pytest.raises(SourceError, match="options=5"):
        list(get_recipe("medqa").records(hub, {"options": "5"}))


def test_hub_patterns_fetch_the_real_files():
    """The repo's real file list (HF tree, main): the patterns select both JSONL files and the card only."""
    from huggingface_hub.utils import filter_repo_objects
    from medmo_data.recipes.medqa import HUB_PATTERNS

    real = [".gitattributes", "README.md", "phrases_no_exclude_test.jsonl", "phrases_no_exclude_train.jsonl"]
    assert sorted(filter_repo_objects(real, allow_patterns=HUB_PATTERNS)) == real[1:]
