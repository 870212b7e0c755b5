import json
import zipfile

from tests.helpers import build_fixture, by_id, read_samples, texts


def test_vqa_med_2019(tmp_path):
    res = build_fixture("vqa_med_2019", tmp_path)
    m = res.manifest
    # 6 train lines (1 malformed, 1 image missing) + 2 val + 8 real test lines.
    assert m["counts"] == {"read": 16, "written": 14, "rejected": 2}
    assert m["rejects_by_reason"] == {"malformed_line": 1, "missing_image": 1}
    s = by_id(read_samples(tmp_path / "out" / "vqa_med_2019"))
    splits = {}
    for i, x in s.items():
        splits.setdefault(x["json"]["split"], set()).add(i)
    assert splits["train"] == {"train-modality-1", "train-modality-2", "train-plane-1", "train-organ-1"}
    assert splits["val"] == {"val-all-1", "val-all-3"}
    assert len(splits["test"]) == 8
    # Category comes from the per-category file; parentheses in answers are literal.
    tr = s["train-modality-1"]["json"]
    assert texts(tr, "user") == "what modality is used?"
    assert texts(tr, "assistant") == "ct w/contrast (iv)"
    assert tr["target"] == {"answer": "ct w/contrast (iv)", "answers": ["ct w/contrast (iv)"], "category": "modality"}
    assert s["val-all-1"]["json"]["target"]["category"] == ""
    # Real test lines: '#' alternatives split; the first is the answer.
    t = s["test-organ-8"]["json"]
    assert texts(t, "user") == "what is the organ system in this image?"
    assert texts(t, "assistant") == "heart and great vessels"
    assert t["target"]["answers"] == ["heart and great vessels", "lung, mediastinum, pleura", "spine and contents"]
    assert t["meta"] == {"image_id": "synpic43535", "category": "organ"}
    assert texts(s["test-modality-1"]["json"], "assistant") == "cta - ct angiography"
    assert all(len(x["json"]["images"]) == 1 for x in s.values())
    with zipfile.ZipFile(tmp_path / "raw" / "vqa_med_2019" / "VQAMed2019Test" / "VQAMed2019_Test_Images.zip") as z:
        raw = z.read("VQAMed2019_Test_Images/synpic54082.jpg")
    assert s["test-modality-1"]["0.jpg"] == raw
    missing = json.loads((tmp_path / "out" / "vqa_med_2019" / "rejects.jsonl").read_text().splitlines()[-1])
    # the file a reject names is relative to the input (never an absolute path), archive member included
    assert missing["file"] == "ImageClef-2019-VQA-Med-Training.zip:ImageClef-2019-VQA-Med-Training/Train_images/synpic103.jpg"
    assert missing["detail"] == "image 0: file does not exist"


def _build(raw, out):
    from medmo_data.build.distributor import BuildOptions, build
    from medmo_data.recipe import get_recipe

    return build(get_recipe("vqa_med_2019"), raw, BuildOptions(output=out))


def test_zips_nested_zips_and_unpacked_give_the_same_bytes(tmp_path):
    """Release zips read in place (as shipped), Zenodo's test zip holding the images zip (a zip in a zip),
    and the fully unpacked tree all give byte-identical shards."""
    from tests.fixtures import make
    from tests.fixtures._zips import shard_digests, unzip_to, zip_folder

    raw = make("vqa_med_2019", tmp_path / "raw")
    ref = _build(raw, tmp_path / "zips")
    zip_folder(raw / "VQAMed2019Test", raw / "VQAMed2019Test.zip", "VQAMed2019Test/")  # Zenodo's test zip
    nested = _build(raw, tmp_path / "nested")
    unzip_to(raw / "VQAMed2019Test.zip", raw / "VQAMed2019Test", "VQAMed2019Test/")
    unzip_to(raw / "VQAMed2019Test" / "VQAMed2019_Test_Images.zip", raw / "VQAMed2019Test" / "VQAMed2019_Test_Images",
             "VQAMed2019_Test_Images/")
    for name in ("ImageClef-2019-VQA-Med-Training", "ImageClef-2019-VQA-Med-Validation"):
        unzip_to(raw / f"{name}.zip", raw / name, f"{name}/")
        (raw / f"{name}.zip").unlink()
    (raw / "VQAMed2019Test.zip").unlink()
    (raw / "VQAMed2019Test" / "VQAMed2019_Test_Images.zip").unlink()
    unpacked = _build(raw, tmp_path / "unpacked")
    assert ref.manifest["counts"] == nested.manifest["counts"] == unpacked.manifest["counts"]
    assert ref.manifest["counts"]["written"] == 14
    digests = shard_digests(tmp_path / "zips" / "vqa_med_2019")
    assert digests == shard_digests(tmp_path / "nested" / "vqa_med_2019")
    assert digests == shard_digests(tmp_path / "unpacked" / "vqa_med_2019")
