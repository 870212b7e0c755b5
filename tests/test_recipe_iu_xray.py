import json

from medmo_data.build.distributor import BuildOptions, build
from medmo_data.families.reports import REPORT_PROMPTS, pick
from medmo_data.recipe import get_recipe
from tests.fixtures import iu_xray as fx
from tests.helpers import build_fixture, by_id, read_samples, texts

ROW = {r["uid"]: r for r in fx.real_rows()}


def _variant(tmp_path, maker):
    raw = tmp_path / "raw" / "iu_xray"
    maker(raw)
    res = build(get_recipe("iu_xray"), raw, BuildOptions(output=tmp_path / "out"))
    return res, by_id(read_samples(tmp_path / "out" / "iu_xray"))


def test_iu_xray_openi_xml(tmp_path):
    res = build_fixture("iu_xray", tmp_path)
    m = res.manifest
    assert m["counts"] == {"read": 7, "written": 5, "rejected": 2}
    assert m["rejects_by_reason"] == {"empty_report": 1, "malformed_xml": 1}
    s = by_id(read_samples(tmp_path / "out" / "iu_xray"))
    # Findings, blank line, impression; XXXX redactions kept.
    assert texts(s["CXR1"]["json"], "assistant") == f"{ROW['1']['findings']}\n\n{ROW['1']['impression']}"
    assert texts(s["CXR1"]["json"], "assistant").endswith("Normal chest x-XXXX.")
    assert texts(s["CXR1"]["json"], "user") == f"Indication: Positive TB test\n\n{pick(REPORT_PROMPTS, 'CXR1')}"
    # Real uid 3 has an empty FINDINGS: the impression alone.
    assert texts(s["CXR3"]["json"], "assistant") == ROW["3"]["impression"]
    assert s["CXR3"]["json"]["target"]["findings"] == ""
    # Image counts per report; the usual 2-image ones share the main series.
    assert {k: len(v["json"]["images"]) for k, v in s.items()} == {"CXR1": 2, "CXR2": 2, "CXR3": 1, "CXR4": 3,
                                                                   "CXR5": 2}
    assert sorted(sh["path"] for sh in m["shards"]) == ["test-000000.tar", "train-000000.tar",
                                                        "train-1img-000000.tar", "val-3img-000000.tar"]
    # Splits from the R2Gen annotation.json beside the XML (test list under a whitespace key).
    assert {k: v["json"]["split"] for k, v in s.items()} == {"CXR1": "train", "CXR2": "test", "CXR3": "train",
                                                             "CXR4": "val", "CXR5": "train"}
    assert s["CXR2"]["json"]["meta"]["mesh"] == "Cardiomegaly/borderline; Pulmonary Artery/enlarged"


def test_iu_xray_kaggle_csv(tmp_path):
    res, s = _variant(tmp_path, fx.make_kaggle)
    assert res.manifest["counts"] == {"read": 5, "written": 4, "rejected": 1}
    assert res.manifest["rejects_by_reason"] == {"no_image": 1}  # uid 5 has no projection rows
    assert s["CXR2"]["json"]["meta"]["views"] == ["Frontal", "Lateral"]  # frontal first
    raw = tmp_path / "raw" / "iu_xray" / "images" / "images_normalized"
    assert s["CXR2"]["json"]["images"][0]["source_width"] == 48
    assert texts(s["CXR4"]["json"], "assistant") == f"{ROW['4']['findings']}\n\n{ROW['4']['impression']}"
    assert (raw / "2_IM-0652-1001.dcm.png").exists()


def test_iu_xray_r2gen_annotation(tmp_path):
    res, s = _variant(tmp_path, fx.make_r2gen)
    assert res.manifest["counts"] == {"read": 5, "written": 4, "rejected": 1}
    assert res.manifest["rejects_by_reason"] == {"missing_image": 1}
    real = json.loads((fx.REAL_DIR / "r2gen_annotation_sample.json").read_text())
    assert texts(s["CXR2384_IM-0942"]["json"], "assistant") == real["train"][0]["report"]
    assert {k: v["json"]["split"] for k, v in s.items()} == {
        "CXR2384_IM-0942": "train", "CXR2926_IM-1328": "train", "CXR2279_IM-0865": "val", "CXR3030_IM-1405": "test"}
    assert all(len(v["json"]["images"]) == 2 for v in s.values())


def test_iu_xray_openi_tarballs_read_in_place(tmp_path):
    """OpenI ships `NLMCXR_reports.tgz` (`ecgen-radiology/<n>.xml`) and `NLMCXR_png.tgz`. Left packed, with
    the members in an order unlike the reports' (names sort CXR1, CXR10, ...; here reversed), they give the
    unpacked build's shards byte for byte; a PNG absent from the archive is `missing_image` as an absent file
    is."""
    from tests.fixtures._zips import shard_digests, tar_files

    raw = tmp_path / "raw"
    raw.mkdir()
    fx.make(raw)
    (raw / "NLMCXR_png" / "CXR5_2_IM-0005-1002.png").unlink()
    unpacked = build(get_recipe("iu_xray"), raw, BuildOptions(output=tmp_path / "a"))
    tar_files(sorted((raw / "ecgen-radiology").glob("*.xml"), reverse=True), raw / "NLMCXR_reports.tgz",
              "ecgen-radiology/")
    tar_files(sorted((raw / "NLMCXR_png").glob("*.png"), reverse=True), raw / "NLMCXR_png.tgz", "")
    (raw / "ecgen-radiology").rmdir()
    (raw / "NLMCXR_png").rmdir()
    packed = build(get_recipe("iu_xray"), raw, BuildOptions(output=tmp_path / "b"))
    assert unpacked.manifest["rejects_by_reason"] == {"empty_report": 1, "malformed_xml": 1, "missing_image": 1}
    assert packed.manifest["rejects_by_reason"] == unpacked.manifest["rejects_by_reason"]
    assert packed.manifest["counts"] == unpacked.manifest["counts"] == {"read": 7, "written": 4, "rejected": 3}
    assert shard_digests(tmp_path / "b" / "iu_xray") == shard_digests(tmp_path / "a" / "iu_xray")
