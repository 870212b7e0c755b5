"""Built folders load with `load_dataset(folder)` / `name=SERIES` through their card; several sources load
together without losing images; `render_row` turns a loaded row into trainable text (issue #17 part 1)."""

from __future__ import annotations

import json

import pytest
import yaml

from medmo_data.build.manifest import load as load_manifest
from medmo_data.publish.card import CardError, card_metadata, features_yaml, series_name, write_card
from medmo_data.publish.hf import LoadError, load_sources, render_row
from medmo_data.render import render_objects
from tests.helpers import build_fixture, read_samples

datasets = pytest.importorskip("datasets")


@pytest.fixture(autouse=True)
def _hf_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


def _card(folder):
    text = (folder / "README.md").read_text()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_series_names():
    assert series_name("train", 1) == ("default", "train", ["0.png"])
    assert series_name("val-3img", 2, "jpg") == ("3img", "val", ["0.jpg", "1.jpg", "2.jpg"])
    assert series_name("test-noboxes", 1) == ("noboxes", "test", ["0.png"])
    assert series_name("train-0img-noboxes", 1) == ("0img-noboxes", "train", [])
    assert series_name("train-2img-png_jpg", 1) == ("2img-png_jpg", "train", ["0.png", "1.jpg"])
    with pytest.raises(CardError, match="2 image formats for 1 images"):
        series_name("train-png_jpg", 1)


@pytest.mark.parametrize("members", [[], ["0.png"], ["0.jpg", "1.png", "2.jpg"]])
def test_features_yaml_is_what_datasets_writes(members):
    from datasets import Features, Image, Json, Value

    feats = Features({"json": Json(), **{m: Image() for m in members},
                      "__key__": Value("string"), "__url__": Value("string")})
    assert features_yaml(members) == feats._to_yaml_list()
    assert Features._from_yaml_list(features_yaml(members)) == feats


def test_build_does_not_import_datasets(tmp_path):
    """The card is written without `datasets` (its import was ~0.7 s of a small build)."""
    import subprocess
    import sys

    code = ("import pathlib, sys\n"
            "from tests.helpers import build_fixture\n"
            f"res = build_fixture('vqa_rad', pathlib.Path({str(tmp_path)!r}))\n"
            "assert (res.path.parent / 'README.md').exists(), res.path\n"
            "print('datasets' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False"]


def test_folder_loads_as_its_samples_per_series(tmp_path):
    res = build_fixture("iu_xray", tmp_path)  # 2-view default series plus 1-view and 3-view series
    folder = res.path.parent
    meta = _card(folder)
    names = [c["config_name"] for c in meta["configs"]]
    assert names[0] == "default" and meta["configs"][0]["default"] is True
    assert set(names) == {"default", "1img", "3img"}
    assert meta["license"] == "other" and meta["license_name"]  # CC-BY-NC-ND with OpenI caveats: not an id
    samples = read_samples(folder)
    want = {(s["json"]["split"], len(s["json"]["images"])): 0 for s in samples}
    for s in samples:
        want[(s["json"]["split"], len(s["json"]["images"]))] += 1

    ds = datasets.load_dataset(str(folder))  # without a card: the index parquet rows, no images
    assert "json" in ds["train"].column_names and "key" not in ds["train"].column_names
    assert {split: len(d) for split, d in ds.items()} == {sp: k for (sp, n), k in want.items() if n == 2}
    row = ds["train"][0]
    on_disk = {s["__key__"]: s for s in samples}[row["__key__"]]
    assert row["json"] == on_disk["json"]  # the whole record, every key
    assert row["0.png"].size == (on_disk["json"]["images"][0]["width"], on_disk["json"]["images"][0]["height"])
    three = datasets.load_dataset(str(folder), name="3img")
    assert {split: len(d) for split, d in three.items()} == {sp: k for (sp, n), k in want.items() if n == 3}
    assert three["val"].features["2.png"].__class__.__name__ == "Image"


def test_record_keys_seen_only_after_sample_five_are_kept(tmp_path):
    """Inference reads 5 samples; the declared Json column keeps keys that vary later (meta, target)."""
    res = build_fixture("vqa_rad", tmp_path)
    folder = res.path.parent
    ds = datasets.load_dataset(str(folder), split="train")
    by_key = {s["__key__"]: s["json"] for s in read_samples(folder)}
    assert len(ds) == sum(1 for r in by_key.values() if r["split"] == "train")
    for row in ds:
        assert row["json"] == by_key[row["__key__"]]
        assert row["0.jpg"] is not None


def test_png_and_jpg_sources_load_together_without_loss(tmp_path):
    a = build_fixture("deeplesion", tmp_path / "a").path.parent  # 0.png
    b = build_fixture("vqa_rad", tmp_path / "b").path.parent  # 0.jpg
    n_a = load_manifest(a)["splits"]["train"]
    n_b = load_manifest(b)["splits"]["train"]
    # The trap this replaces: plain webdataset loading types columns from the first tar only.
    plain = datasets.load_dataset("webdataset", data_files={"train": [str(p) for p in sorted(a.glob("train-*.tar"))]
                                  + [str(p) for p in sorted(b.glob("train-*.tar"))]}, split="train")
    assert "0.jpg" not in plain.column_names  # (the jpg images would all be lost)
    ds = load_sources([a, b])
    assert len(ds) == n_a + n_b
    assert sum(r["0.png"] is not None for r in ds) == n_a
    assert sum(r["0.jpg"] is not None for r in ds) == n_b


def test_load_sources_fails_loudly(tmp_path):
    a = build_fixture("deeplesion", tmp_path / "a").path.parent
    with pytest.raises(LoadError, match="no 'train' shards of series '2img'"):
        load_sources([a], series="2img")
    man = json.loads((a / "manifest.json").read_text())
    man["shards"][0]["samples"] += 1  # the manifest promises an image that does not come back
    (a / "manifest.json").write_text(json.dumps(man))
    split = man["shards"][0]["split"]
    with pytest.raises(LoadError, match="0.png: .* images loaded but the manifests count"):
        load_sources([a], split=split)
    man["schema"] = "medmo/v0"
    b = build_fixture("vqa_rad", tmp_path / "b").path.parent
    (a / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(LoadError, match="different record schemas"):
        load_sources([a, b])


def test_render_row_map_gives_trainable_text(tmp_path):
    folder = build_fixture("deeplesion", tmp_path).path.parent
    ds = datasets.load_dataset(str(folder), split="train").map(render_row, fn_kwargs={"box_format": "pixel"})
    row = ds[0]
    rec = row["json"]
    answer = row["messages"][-1]["content"][0]["text"]
    sizes = [(im["width"], im["height"]) for im in rec["images"]]
    assert answer == render_objects(rec["objects"], sizes, "pixel")
    assert "<box>[[" in answer
    user = row["messages"][0]["content"]
    assert user[0] == {"type": "image", "text": None} and "{box_format_hint}" not in user[1]["text"]


def test_empty_build_leaves_no_card(tmp_path):
    res = build_fixture("vqa_rad", tmp_path)
    folder = res.path.parent
    man = load_manifest(folder)
    assert (folder / "README.md").exists()
    man["shards"] = []
    with pytest.raises(CardError, match="no shards"):
        card_metadata(man)
    (folder / "manifest.json").write_text(json.dumps(man))
    write_card(folder)
    assert not (folder / "README.md").exists()  # no stale card describing shards that are gone
