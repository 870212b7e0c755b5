import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from medmo_data.build.normalize import NormalizeOptions
from medmo_data.families.chestxray14 import Entry, read_data_entry
from medmo_data.recipe import Reject
from tests.helpers import build_fixture, by_id, read_samples, texts


@pytest.fixture(scope="module")
def bbox(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nihb")
    res = build_fixture("nih_chestxray_bbox", tmp, normalize=NormalizeOptions(max_side=512))
    return res, by_id(read_samples(tmp / "out" / "nih_chestxray_bbox"))


def test_bbox_counts(bbox):
    res, _ = bbox
    m = res.manifest
    # 13 real box rows on 13 images + 3 broken rows; the image in no split list is split by its patient.
    assert m["rejects_by_reason"] == {"malformed_csv": 1, "not_in_label_file": 1, "unknown_label": 1}
    # 14 image groups (the Fracture row joins 00001688_000's group and rejects it) + 1 malformed row.
    assert m["counts"] == {"read": 15, "written": 12, "rejected": 3}


def test_xywh_to_xyxy_and_resize(bbox):
    _, s = bbox
    rec = s["00013118_008"]["json"]
    assert rec["split"] == "test"
    assert rec["images"][0]["source_width"] == 1024 and rec["images"][0]["width"] == 512
    # x,y,w,h = 225.0847..., 547.0192..., 86.7797..., 79.1864... -> xyxy, halved by the 1024 -> 512 resize
    x, y, w, h = 225.084745762712, 547.019216763771, 86.7796610169491, 79.1864406779661
    assert rec["objects"][0]["bbox"] == pytest.approx([x / 2, y / 2, (x + w) / 2, (y + h) / 2])
    assert rec["objects"][0]["label"] == "Atelectasis"


def _splits(samples):
    by_image = {x["json"]["id"]: x["json"]["split"] for x in samples}
    by_patient: dict[int, set[str]] = {}
    for x in samples:
        by_patient.setdefault(x["json"]["meta"]["patient_id"], set()).add(x["json"]["split"])
    return by_image, by_patient


def test_box_images_are_official_test_yet_train_by_default(tmp_path):
    """Real release: every BBox_List_2017.csv image is in test_list.txt. The default split re-splits the box
    patients, and nih_vqa follows it: no image or patient is train in one NIH source and val/test in the other."""
    raw = tmp_path / "raw" / "nih_chestxray_bbox"
    build_fixture("nih_chestxray_bbox", tmp_path)
    build_fixture("nih_vqa", tmp_path)
    box_names = {r.split(",")[0] for r in (raw / "BBox_List_2017.csv").read_text().splitlines()[1:]}
    official_test = set((raw / "test_list.txt").read_text().split())
    assert box_names - {"00017877_001.png", "00099999_000.png"} <= official_test
    assert not box_names & set((raw / "train_val_list.txt").read_text().split())
    bbox = read_samples(tmp_path / "out" / "nih_chestxray_bbox")
    vqa = read_samples(tmp_path / "out" / "nih_vqa")
    b_img, b_pat = _splits(bbox)
    v_img, v_pat = _splits(vqa)
    assert {x for x, sp in b_img.items() if sp == "train"} >= {"00014716_007", "00005066_030"}
    assert b_img["00013118_008"] == "test" and b_img["00017877_001"] == "val"
    for one, other in ((b_img, v_img), (v_img, b_img)):
        for name, sp in one.items():
            assert sp != "train" or other.get(name, "train") == "train", name
    for one, other in ((b_pat, v_pat), (v_pat, b_pat)):
        for pid, sps in one.items():
            assert "train" not in sps or not other.get(pid, set()) - {"train"}, pid
    # other images of a box patient follow the patient: 13118 is a box-test patient, 14716 a box-train one
    assert v_img["00013118_000"] == "test" and v_img["00014716_000"] == v_img["00014716_001"] == "train"
    assert v_img["00000003_001"] == "test" and v_img["00000001_000"] == "train"  # non-box: official lists


def test_split_official_restores_the_lists(tmp_path):
    res = build_fixture("nih_chestxray_bbox", tmp_path, recipe_options={"split": "official"})
    s = read_samples(tmp_path / "out" / "nih_chestxray_bbox")
    assert s and {x["json"]["split"] for x in s} == {"test"}
    assert res.manifest["rejects_by_reason"]["not_in_split_lists"] == 1


def test_infiltrate_renamed(bbox):
    _, s = bbox
    assert s["00020259_002"]["json"]["objects"][0]["label"] == "Infiltration"
    assert s["00020259_002"]["json"]["target"] == {"labels": ["Infiltration"]}


def test_box_covers_bright_region(bbox):
    _, s = bbox
    smp = s["00005066_030"]
    px = np.asarray(Image.open(io.BytesIO(smp["0.png"])), dtype=np.float64)
    x1, y1, x2, y2 = (int(round(v)) for v in smp["json"]["objects"][0]["bbox"])
    inside = px[y1 + 2:y2 - 2, x1 + 2:x2 - 2].mean()
    mask = np.ones_like(px, bool)
    mask[y1 - 2:y2 + 2, x1 - 2:x2 + 2] = False
    assert inside > 200 and px[mask].mean() < 40


def test_vqa_answers_and_rgba(tmp_path):
    res = build_fixture("nih_vqa", tmp_path)
    s = by_id(read_samples(tmp_path / "out" / "nih_vqa"))
    rec = s["00000013_005"]["json"]
    # the label file's `Pleural_Thickening` is said as words, in the choices, the answer and the target
    assert texts(rec, "assistant") == "Emphysema, Infiltration, Pleural Thickening, Pneumothorax"
    assert rec["target"]["labels"] == ["Emphysema", "Infiltration", "Pleural Thickening", "Pneumothorax"]
    assert "Pleural Thickening" in texts(rec, "user") and "_" not in texts(rec, "user")
    assert texts(s["00000002_000"]["json"], "assistant") == "No Finding"
    assert s["00000003_001"]["json"]["split"] == "test"
    # RGBA source converted to grey.
    img = Image.open(io.BytesIO(s["00004882_001"]["0.png"]))
    assert img.mode == "L"
    assert res.manifest["rejects_by_reason"] == {}  # the unlisted image is a box patient's: split by patient


def test_data_entry_header_variants(tmp_path):
    p = tmp_path / "Data_Entry_2017_v2020.csv"
    p.write_text("Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Sex,View Position,"
                 "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],\n"
                 "00000001_000.png,Cardiomegaly,0,1,57,M,PA,2682,2749,0.143,0.143,\n"
                 "00000001_001.png,Cardiomegaly|Fracture,1,1,58,M,PA,2894,2729,0.143,0.143,\n"
                 "00000001_002.png,Effusion,x,1,58,M,PA,2500,2048,0.168,0.168,\n")
    out = list(read_data_entry(p))
    assert out[0] == Entry("00000001_000.png", ("Cardiomegaly",), 0, 1, "PA")
    assert isinstance(out[1], Reject) and out[1].reason == "unknown_label"
    assert isinstance(out[2], Reject) and out[2].reason == "malformed_csv"


def test_kaggle_layout_images_0nn_images(tmp_path):
    """NIH Box tarballs unpack into images/; Kaggle's copy is images_001/images/ ... images_012/images/.
    Both give the same shards."""
    from medmo_data.build.distributor import BuildOptions, build
    from medmo_data.recipe import get_recipe
    from tests.fixtures import make
    from tests.fixtures._zips import shard_digests

    raw = make("nih_chestxray_bbox", tmp_path / "raw")
    box = build(get_recipe("nih_chestxray_bbox"), raw, BuildOptions(output=tmp_path / "a"))
    for i, png in enumerate(sorted((raw / "images").glob("*.png"))):
        dest = raw / f"images_{1 + i % 2:03d}" / "images"
        dest.mkdir(parents=True, exist_ok=True)
        png.rename(dest / png.name)
    (raw / "images").rmdir()
    kaggle = build(get_recipe("nih_chestxray_bbox"), raw, BuildOptions(output=tmp_path / "b"))
    assert kaggle.manifest["counts"] == box.manifest["counts"] and kaggle.manifest["counts"]["written"] == 12
    assert shard_digests(tmp_path / "a" / "nih_chestxray_bbox") == shard_digests(tmp_path / "b" / "nih_chestxray_bbox")


def _pack_box_tarballs(raw, n=3, missing=""):
    """The Box download: `images/images_001.tar.gz` ... holding `images/<name>.png`, consecutive in name order."""
    from tests.fixtures._zips import tar_files

    pngs = sorted((raw / "images").glob("*.png"))
    if missing:
        (raw / "images" / missing).unlink()
        pngs = [p for p in pngs if p.name != missing]
    step = -(-len(pngs) // n)
    for i in range(n):
        tar_files(pngs[i * step:(i + 1) * step], raw / "images" / f"images_{i + 1:03d}.tar.gz", "images/")


def test_box_tarballs_are_read_in_place(tmp_path):
    """Left packed, the twelve Box tarballs (here three, in the `images/` folder the download makes) give the
    box shards byte for byte, and nih_vqa the same samples; an image in no tarball is `missing_image` as an
    absent unpacked file is."""
    from medmo_data.build.distributor import BuildOptions, build
    from medmo_data.recipe import get_recipe
    from tests.fixtures import make
    from tests.fixtures._zips import shard_digests

    raw = make("nih_chestxray_bbox", tmp_path / "raw")
    (raw / "images" / "00000003_002.png").unlink()
    unpacked = {name: build(get_recipe(name), raw, BuildOptions(output=tmp_path / "a"))
                for name in ("nih_chestxray_bbox", "nih_vqa")}
    _pack_box_tarballs(raw)
    assert not list((raw / "images").glob("*.png"))
    packed = {name: build(get_recipe(name), raw, BuildOptions(output=tmp_path / "b"))
              for name in ("nih_chestxray_bbox", "nih_vqa")}
    assert packed["nih_chestxray_bbox"].manifest["counts"]["written"] == 12
    assert shard_digests(tmp_path / "a" / "nih_chestxray_bbox") == shard_digests(tmp_path / "b" / "nih_chestxray_bbox")
    for name in unpacked:
        assert packed[name].manifest["counts"] == unpacked[name].manifest["counts"]
        assert packed[name].manifest["rejects_by_reason"] == unpacked[name].manifest["rejects_by_reason"]
    assert unpacked["nih_vqa"].manifest["rejects_by_reason"] == {"missing_image": 1}

    def samples(out):
        return {s["json"]["id"]: (s["json"], s["0.png"]) for s in read_samples(out / "nih_vqa")}
    a, b = samples(tmp_path / "a"), samples(tmp_path / "b")
    assert len(a) == len(b) > 20 and a == b


def test_no_images_and_no_tarballs_is_a_clear_error(tmp_path):
    from medmo_data.families.chestxray14 import image_files
    from medmo_data.recipe import SourceError

    with pytest.raises(SourceError, match="no images_NNN.tar.gz"):
        image_files(tmp_path)


def test_image_zips_are_read_in_place(tmp_path):
    """The zips `images_NNN.zip` a re-packaging ships instead of the tarballs (members under any prefix, here
    `images/`), in the `images/` folder: looked up by base name, the same shards as the unpacked images."""
    from medmo_data.build.distributor import BuildOptions, build
    from medmo_data.recipe import get_recipe
    from tests.fixtures import make
    from tests.fixtures._zips import shard_digests

    raw = make("nih_chestxray_bbox", tmp_path / "raw")
    names = ("nih_chestxray_bbox", "nih_vqa")
    for name in names:
        build(get_recipe(name), raw, BuildOptions(output=tmp_path / "a"))
    pngs = sorted((raw / "images").glob("*.png"))
    for i, part in enumerate((pngs[:10], pngs[10:])):
        with zipfile.ZipFile(raw / "images" / f"images_{i + 1:03d}.zip", "w") as z:
            for p in part:
                z.write(p, f"images/{p.name}")
                p.unlink()
    for name in names:
        build(get_recipe(name), raw, BuildOptions(output=tmp_path / "b"))
        assert shard_digests(tmp_path / "b" / name) == shard_digests(tmp_path / "a" / name)
        assert shard_digests(tmp_path / "b" / name)


def test_hub_repackaging_layout(tmp_path):
    """`alkzar90/NIH-Chest-X-ray-dataset` as the hub ships it: `data/Data_Entry_2017_v2020.csv`, the split
    lists and the box list in `data/`, the images in `data/images/images_NNN.zip`. A build pointed at the
    snapshot gives the unpacked release's shards, and the hub patterns fetch exactly these files."""
    import fnmatch

    from medmo_data.build.distributor import BuildOptions, build
    from medmo_data.recipe import get_recipe
    from tests.fixtures import make
    from tests.fixtures._zips import shard_digests

    raw = make("nih_chestxray_bbox", tmp_path / "raw")
    names = ("nih_chestxray_bbox", "nih_vqa")
    for name in names:
        build(get_recipe(name), raw, BuildOptions(output=tmp_path / "a"))
    snap = tmp_path / "snapshot"
    (snap / "data" / "images").mkdir(parents=True)
    (snap / "README.md").write_text("# NIH Chest X-ray dataset\n")
    for f in raw.glob("*.*"):
        f.rename(snap / "data" / f.name)
    pngs = sorted((raw / "images").glob("*.png"))
    for i, part in enumerate((pngs[:12], pngs[12:])):
        with zipfile.ZipFile(snap / "data" / "images" / f"images_{i + 1:03d}.zip", "w") as z:
            for p in part:
                z.write(p, f"images/{p.name}")
    files = [p.relative_to(snap).as_posix() for p in snap.rglob("*") if p.is_file()]
    for name in names:
        patterns = get_recipe(name).hub_patterns({})
        assert all(any(fnmatch.fnmatch(f, pat) for pat in patterns) for f in files)
        build(get_recipe(name), snap, BuildOptions(output=tmp_path / "b"))
        assert shard_digests(tmp_path / "b" / name) == shard_digests(tmp_path / "a" / name)


def test_a_repeated_label_row_is_one_duplicate_from_the_tarballs_too(tmp_path):
    """Both rows of an image the label file lists twice reach the build, which rejects the second as
    `duplicate_id`, from the tarballs as from the unpacked images."""
    from medmo_data.build.distributor import BuildOptions, build
    from medmo_data.recipe import get_recipe
    from tests.fixtures import make

    raw = make("nih_vqa", tmp_path / "raw")
    entry = raw / "Data_Entry_2017_v2020.csv"
    entry.write_text(entry.read_text() + entry.read_text().splitlines()[1] + "\n")
    unpacked = build(get_recipe("nih_vqa"), raw, BuildOptions(output=tmp_path / "a"))
    _pack_box_tarballs(raw)
    packed = build(get_recipe("nih_vqa"), raw, BuildOptions(output=tmp_path / "b"))
    assert unpacked.manifest["rejects_by_reason"] == {"duplicate_id": 1}
    assert packed.manifest["rejects_by_reason"] == unpacked.manifest["rejects_by_reason"]
    assert packed.manifest["counts"] == unpacked.manifest["counts"]
