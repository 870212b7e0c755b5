from medmo_data.recipe import get_recipe
from tests.fixtures import make
from tests.helpers import build_fixture, by_id, read_samples, texts


def test_pubmed_vision(tmp_path):
    res = build_fixture("pubmed_vision", tmp_path)
    m = res.manifest
    assert m["counts"] == {"read": 5, "written": 3, "rejected": 2}
    assert m["rejects_by_reason"] == {"missing_image": 1, "image_count_mismatch": 1}
    s = by_id(read_samples(tmp_path / "out" / "pubmed_vision"))
    a = s["alignment-PMC1_f1"]["json"]
    assert a["task"] == "vqa" and a["modality"] == "ct"
    assert a["messages"][0]["content"] == [{"type": "image"}, {"type": "text", "text": "What does the axial CT show?"}]
    assert texts(a, "assistant") == "A spiculated nodule in the right upper lobe."
    assert a["meta"] == {"subset": "alignment", "modality_label": "Computed Tomography", "body_part": "Chest"}
    two = s["alignment-PMC2_f3"]
    assert two["json"]["modality"] == "clinical_photo"
    assert [p["type"] for p in two["json"]["messages"][0]["content"]] == ["image", "image", "text"]
    assert len(two["json"]["images"]) == 2 and "1.jpg" in two
    inst = s["instruction-PMC1_f1"]["json"]
    assert inst["task"] == "instruction"
    assert [msg["role"] for msg in inst["messages"]] == ["user", "assistant", "user", "assistant"]
    assert texts(inst, "assistant") == "The nodule needs follow-up; discuss a biopsy.Right upper lobe."
    # Two-image samples go to their own shard series.
    assert sorted({sh["path"].split("/")[-1].split("-0")[0] for sh in m["shards"]}) == ["train", "train-2img"]


def test_subset_option(tmp_path):
    raw = make("pubmed_vision", tmp_path / "raw")
    out = list(get_recipe("pubmed_vision").records(raw, {"subset": "alignment"}))
    assert {o.id for o in out} == {"alignment-PMC1_f1", "alignment-PMC2_f3", "alignment-PMC3_f2"}


def test_hub_zips_read_in_place_same_bytes(tmp_path):
    """From the hub id the images come only as images_N.zip: read in place (looked up by file name, as
    `unzip -j` flattens them) they give the same shards as the unzipped images/ folder."""
    from medmo_data.build.distributor import BuildOptions, build
    from medmo_data.recipe import get_recipe
    from tests.fixtures import make
    from tests.fixtures._zips import shard_digests
    from tests.fixtures.pubmed_vision import make_hub

    flat = make("pubmed_vision", tmp_path / "flat")
    hub = make_hub(tmp_path / "hub" / "pubmed_vision")
    assert not (hub / "images").exists() and sorted(p.name for p in hub.glob("images_*.zip")) == [
        "images_0.zip", "images_1.zip"]
    a = build(get_recipe("pubmed_vision"), flat, BuildOptions(output=tmp_path / "a"))
    b = build(get_recipe("pubmed_vision"), hub, BuildOptions(output=tmp_path / "b"))
    assert a.manifest["counts"] == b.manifest["counts"] and b.manifest["counts"]["written"] > 0
    assert shard_digests(tmp_path / "a" / "pubmed_vision") == shard_digests(tmp_path / "b" / "pubmed_vision")
