from medmo_data.build.distributor import BuildOptions, build
from medmo_data.recipe import get_recipe
from tests.fixtures import roco as fx
from tests.helpers import build_fixture, by_id, read_samples, texts


def test_roco_repository_layout(tmp_path):
    res = build_fixture("roco", tmp_path)
    m = res.manifest
    assert m["counts"] == {"read": 8, "written": 5, "rejected": 3}
    assert m["rejects_by_reason"] == {"empty_text": 1, "malformed_line": 1, "missing_image": 1}
    s = by_id(read_samples(tmp_path / "out" / "roco"))
    # Real validation lines: the leading space after the tab is stripped, nothing else.
    assert texts(s["ROCO_00020"]["json"], "assistant") == ("Axial computed tomography scan of the pelvis showing a "
                                                           "diffuse infiltration of the bladder wall, catheter in situ "
                                                           "(arrow).")
    assert s["ROCO_00020"]["json"]["meta"]["licence"] == "CC BY"
    assert s["ROCO_00020"]["json"]["meta"]["pmc_id"] == "PMC3970251_CRIONM2014-931546.003.jpg"
    assert s["ROCO_00027"]["json"]["meta"]["cuis"] == ["C0043299", "C1306645", "C1548003", "C0030797", "C1962945"]
    assert texts(s["ROCO_09001"]["json"], "assistant") == "CT of the abdomen \u2013 axial view."
    assert {k: v["json"]["split"] for k, v in s.items()} == {"ROCO_00001": "train", "ROCO_00020": "val",
                                                             "ROCO_00027": "val", "ROCO_00062": "val",
                                                             "ROCO_09001": "test"}
    assert "ROCO_50001" not in s  # non-radiology skipped by default


def test_roco_all_subsets(tmp_path):
    build_fixture("roco", tmp_path, recipe_options={"subset": "all"})
    s = by_id(read_samples(tmp_path / "out" / "roco"))
    assert s["ROCO_50001"]["json"]["meta"]["subset"] == "non-radiology"


def test_roco_hub_parquet(tmp_path):
    raw = tmp_path / "raw" / "roco"
    fx.make_hub(raw)
    res = build(get_recipe("roco"), raw, BuildOptions(output=tmp_path / "out"))
    assert res.manifest["counts"] == {"read": 3, "written": 2, "rejected": 1}
    s = by_id(read_samples(tmp_path / "out" / "roco"))
    assert texts(s["ROCO_00001"]["json"], "assistant") == "Caption of ROCO_00001."
    assert s["ROCO_00020"]["json"]["split"] == "val"
