from medmo_data.recipe import get_recipe
from tests.fixtures import make
from tests.helpers import build_fixture, by_id, read_samples, texts


def test_pmc_oa(tmp_path):
    res = build_fixture("pmc_oa", tmp_path)
    m = res.manifest
    assert m["counts"] == {"read": 4, "written": 2, "rejected": 2}
    assert m["rejects_by_reason"] == {"empty_text": 1, "missing_image": 1}
    s = by_id(read_samples(tmp_path / "out" / "pmc_oa"))
    r = s["train-PMC212319_Fig3_4"]["json"]
    assert r["task"] == "caption" and r["split"] == "train"
    assert texts(r, "user") == "Describe this biomedical figure."
    assert texts(r, "assistant") == "A. Axial CT showing a hypodense liver lesion."
    assert r["meta"] == {"pmcid": "PMC212319", "image": "PMC212319_Fig3_4.jpg"}
    # A bare numeric pmcid field gets its PMC prefix.
    assert s["train-PMC7777777_F3_1"]["json"]["meta"]["pmcid"] == "PMC7777777"


def test_exclude_pmc_vqa_test_articles(tmp_path):
    raw = make("pmc_oa", tmp_path / "raw")
    vqa = make("pmc_vqa", tmp_path / "raw")  # its test_2.csv holds PMC7777777_F3.jpg
    out = list(get_recipe("pmc_oa").records(raw, {"exclude": str(vqa / "test_2.csv")}))
    rejected = {o.id: o.reason for o in out if not hasattr(o, "messages")}
    assert rejected == {"pmc_oa.jsonl:2": "benchmark_overlap", "pmc_oa.jsonl:4": "empty_text"}


def test_images_zip_read_in_place_same_bytes_as_unpacked(tmp_path):
    """The hub's images.zip holds caption_T060_filtered_top4_sep_v0_subfigures/<image>; read in place it gives
    the same shards as the tree public loaders unpack it into (images/caption_T060.../)."""
    import zipfile

    from medmo_data.build.distributor import BuildOptions, build
    from tests.fixtures._zips import shard_digests, unzip_to

    raw = make("pmc_oa", tmp_path / "raw")
    with zipfile.ZipFile(raw / "images.zip") as z:
        assert all(n.startswith("caption_T060_filtered_top4_sep_v0_subfigures/") for n in z.namelist())
    zipped = build(get_recipe("pmc_oa"), raw, BuildOptions(output=tmp_path / "a"))
    assert zipped.manifest["counts"]["written"] == 2
    unzip_to(raw / "images.zip", raw / "images", "")
    (raw / "images.zip").unlink()
    unpacked = build(get_recipe("pmc_oa"), raw, BuildOptions(output=tmp_path / "b"))
    assert unpacked.manifest["counts"] == zipped.manifest["counts"]
    assert shard_digests(tmp_path / "a" / "pmc_oa") == shard_digests(tmp_path / "b" / "pmc_oa")
