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


def test_hub_zips_read_in_place_same_bytes_as_unpacked(tmp_path):
    """The hub ships the figures only in images_2.zip (members figures/...) and images.zip (images/...):
    read in place they give the same shards as the unpacked folders."""
    from medmo_data.build.distributor import BuildOptions, build
    from tests.fixtures._zips import shard_digests, unzip_to

    raw = make("pmc_vqa", tmp_path / "raw")
    assert not (raw / "figures").exists() and not (raw / "images").exists()
    zipped = build(get_recipe("pmc_vqa"), raw, BuildOptions(output=tmp_path / "a"))
    assert zipped.manifest["counts"]["written"] == 4
    unzip_to(raw / "images_2.zip", raw / "figures", "figures/")
    unzip_to(raw / "images.zip", raw / "images", "images/")
    (raw / "images_2.zip").unlink()
    (raw / "images.zip").unlink()
    unpacked = build(get_recipe("pmc_vqa"), raw, BuildOptions(output=tmp_path / "b"))
    assert unpacked.manifest["counts"] == zipped.manifest["counts"]
    assert shard_digests(tmp_path / "a" / "pmc_vqa") == shard_digests(tmp_path / "b" / "pmc_vqa")


def test_csv_without_figures_is_a_source_error(tmp_path):
    import pytest

    from medmo_data.recipe import SourceError

    raw = make("pmc_vqa", tmp_path / "raw")
    (raw / "images_2.zip").unlink()
    with pytest.raises(SourceError, match="no figures/ folder or images_2.zip"):
        list(get_recipe("pmc_vqa").records(raw, {}))
