from medmo_data.build.distributor import BuildOptions, build
from medmo_data.recipe import get_recipe
from tests.fixtures import rocov2 as fx
from tests.helpers import build_fixture, by_id, read_samples, texts


def test_rocov2_zenodo_layout(tmp_path):
    res = build_fixture("rocov2", tmp_path)
    m = res.manifest
    assert m["counts"] == {"read": 5, "written": 3, "rejected": 2}
    assert m["rejects_by_reason"] == {"empty_text": 1, "missing_image": 1}
    s = by_id(read_samples(tmp_path / "out" / "rocov2"))
    r = s["ROCOv2_2023_train_000001"]["json"]
    assert texts(r, "assistant") == "Head CT demonstrating left temporal lobe hemorrhage (arrow)."
    assert r["meta"]["cuis"] == ["C0040405", "C0019080"]
    assert s["ROCOv2_2023_valid_000001"]["json"]["split"] == "val"  # image from valid_images/valid/
    assert s["ROCOv2_2023_test_000001"]["json"]["split"] == "test"


def test_rocov2_hub_parquet(tmp_path):
    raw = tmp_path / "raw" / "rocov2"
    fx.make_hub(raw)
    res = build(get_recipe("rocov2"), raw, BuildOptions(output=tmp_path / "out"))
    assert res.manifest["counts"] == {"read": 4, "written": 4, "rejected": 0}
    s = by_id(read_samples(tmp_path / "out" / "rocov2"))
    assert s["ROCOv2_2023_validation_000001"]["json"]["split"] == "val"
    assert s["ROCOv2_2023_train_000001"]["json"]["meta"]["cuis"] == ["C0040405", "C0817096"]
    assert texts(s["ROCOv2_2023_train_000002"]["json"], "assistant") == "train caption 2."


def test_zenodo_image_zips_read_in_place_same_bytes(tmp_path):
    """Zenodo ships {split}_images.zip: read in place they give the unpacked build's shards byte for byte."""
    from medmo_data.build.distributor import BuildOptions, build
    from medmo_data.recipe import get_recipe
    from tests.fixtures import make
    from tests.fixtures._zips import shard_digests, zip_folder

    raw = make("rocov2", tmp_path / "raw")
    ref = build(get_recipe("rocov2"), raw, BuildOptions(output=tmp_path / "a"))
    zip_folder(raw / "train", raw / "train_images.zip", "train/")
    zip_folder(raw / "valid_images", raw / "valid_images.zip", "valid_images/")
    zip_folder(raw / "test", raw / "test_images.zip", "")
    assert not any(p.is_dir() for p in raw.iterdir())
    zipped = build(get_recipe("rocov2"), raw, BuildOptions(output=tmp_path / "b"))
    assert zipped.manifest["counts"] == ref.manifest["counts"] and zipped.manifest["counts"]["written"] == 3
    assert shard_digests(tmp_path / "a" / "rocov2") == shard_digests(tmp_path / "b" / "rocov2")
