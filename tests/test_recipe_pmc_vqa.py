from medmo_data.recipe import get_recipe
from tests.fixtures import make
from tests.helpers import build_fixture, by_id, read_samples, texts


def test_pmc_vqa_both_releases(tmp_path):
    res = build_fixture("pmc_vqa", tmp_path)
    m = res.manifest
    assert m["counts"] == {"read": 8, "written": 4, "rejected": 4}
    assert m["rejects_by_reason"] == {"bad_answer_letter": 1, "missing_image": 1, "duplicate_qa": 1,
                                      "test_figure_overlap": 1}
    s = by_id(read_samples(tmp_path / "out" / "pmc_vqa"))
    assert {i: x["json"]["split"] for i, x in s.items()} == {
        "train_2-0": "train", "test_2-0": "test", "train-3": "train", "test-1": "test"}
    r = s["train_2-0"]["json"]
    assert r["task"] == "mcq"
    assert r["messages"][0]["content"][0] == {"type": "image"}
    assert texts(r, "user") == ("Which artery is occluded?\n\nA. Right Coronary Artery\nB. Left Anterior Descending\n"
                                "C. Left Circumflex\nD. Left Main\n\nAnswer with the letter of the correct option.")
    assert texts(r, "assistant") == "B. Left Anterior Descending"
    assert r["target"] == {"choices": {"A": "Right Coronary Artery", "B": "Left Anterior Descending",
                                       "C": "Left Circumflex", "D": "Left Main"},
                           "answer": "B", "answer_text": "Left Anterior Descending"}
    assert r["meta"] == {"figure": "PMC8253867_Fig2_41.jpg", "pmcid": "PMC8253867", "release": "v2"}
    v1 = s["train-3"]["json"]
    assert texts(v1, "assistant") == "B. Liver" and v1["meta"]["release"] == "v1"
    assert all(len(x["json"]["images"]) == 1 for x in s.values())


def test_release_and_explain_options(tmp_path):
    raw = make("pmc_vqa", tmp_path / "raw")
    out = [o for o in get_recipe("pmc_vqa").records(raw, {"release": "v2", "explain": "caption"})
           if hasattr(o, "messages")]
    assert [o.id for o in out] == ["train_2-0", "train_2-2", "test_2-0"]
    assert out[0].messages[-1]["content"][0]["text"] == (
        "B. Left Anterior Descending\n\nExplanation: Coronary angiography of the left system.")
