import pytest
from medmo_data.recipes.grazpedwri_dx import patient_split

from medmo_data.families import yolo
from medmo_data.render import render_messages
from tests.boxcheck import assert_boxes_on_objects, assert_show_grid
from tests.helpers import build_fixture, by_id, read_samples, texts

R1 = "0001_1151024315_01_WRI-R1_M012"
R2 = "0001_1151024315_01_WRI-R2_M012"
L1 = "0003_0123456789_01_WRI-L1_F007"
L2 = "0003_0123456789_01_WRI-L2_F007"
V1 = "0011_0000000042_02_WRI-L1_M015"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("graz")
    res = build_fixture("grazpedwri_dx", tmp)
    return res, by_id(read_samples(tmp / "out" / "grazpedwri_dx")), tmp


def test_counts_and_rejects(built):
    res, s, _ = built
    assert res.manifest["counts"] == {"read": 9, "written": 5, "rejected": 4}
    assert res.manifest["rejects_by_reason"] == {"missing_labels": 1, "unknown_label": 1, "malformed_label": 1,
                                                 "bad_filename": 1}
    assert set(s) == {R1, R2, L1, L2, V1}


def boxes_of(rec):
    return [(o["label"], pytest.approx(o["bbox"], abs=1e-9)) for o in rec["objects"]]


def test_boxes_after_conversion(built):
    _, s, _ = built
    # fracture kept, the `text` marker dropped from the findings but counted
    assert boxes_of(s[R1]["json"]) == [("fracture", [40.0, 30.0, 100.0, 90.0])]
    assert s[R1]["json"]["meta"]["text_boxes"] == 1
    # box ending on the right edge, box overshooting the left edge clamped to 0
    assert boxes_of(s[R2]["json"]) == [("metal", [160.0, 40.0, 200.0, 80.0]),
                                       ("soft-tissue swelling", [0.0, 100.0, 22.0, 140.0])]
    assert s[R2]["json"]["target"] == {"labels": ["metal", "soft-tissue swelling"]}
    assert boxes_of(s[L1]["json"]) == [("periosteal reaction", [60.0, 60.0, 140.0, 120.0])]


def test_labels_are_the_words_of_the_prompt(built):
    """meta.yaml names classes `periostealreaction`, `softtissue`, ...: the model is asked for and answers with
    the words the prompt lists."""
    from medmo_data.recipes.grazpedwri_dx import DISPLAY, PROMPT

    _, s, _ = built
    said = {o["label"] for x in s.values() for o in x["json"]["objects"]}
    assert said == {"fracture", "metal", "soft-tissue swelling", "periosteal reaction"}
    assert all(label in PROMPT for label in DISPLAY.values())
    answer = render_messages(s[R2]["json"], "qwen3")[1]["content"][0]["text"]
    assert answer == "metal <box>[[800, 250, 1000, 500]]</box>\nsoft-tissue swelling <box>[[0, 625, 110, 875]]</box>"


def test_negatives_and_16bit(built):
    _, s, _ = built
    for sid, text_boxes in ((L2, 0), (V1, 1)):
        rec = s[sid]["json"]
        assert rec["objects"] == [] and rec["target"] == {"labels": []}
        assert texts(rec, "assistant") == "None found."
        assert rec["meta"]["text_boxes"] == text_boxes
    assert s[L1]["json"]["images"][0]["derivation"]["rescale"]["method"] == "minmax"
    assert "rescale" not in s[R1]["json"]["images"][0]["derivation"]  # 8-bit passes through


def test_stem_fields_and_patient_split(built):
    _, s, _ = built
    m = s[R2]["json"]["meta"]
    assert (m["patient"], m["side"], m["view"], m["gender"], m["age"]) == (1, "R", 2, "M", 12.37)
    assert m["ao_classification"] == "23r-M/3.1; 23u-E/7"
    splits = {sid: x["json"]["split"] for sid, x in s.items()}
    assert splits == {R1: "train", R2: "train", L1: "test", L2: "test", V1: "val"}
    assert all(patient_split(str(x["json"]["meta"]["patient"])) == x["json"]["split"] for x in s.values())


def test_prompt_states_frame(built):
    _, s, _ = built
    msgs = render_messages(s[R1]["json"], "pixel")
    assert "absolute pixels" in msgs[0]["content"][1]["text"]
    assert msgs[1]["content"][0]["text"] == "fracture <box>[[40, 30, 100, 90]]</box>"


def test_show_boxes_on_objects(built):
    _, s, tmp = built
    for sid in (R1, R2, L1):
        assert_boxes_on_objects(s[sid]["json"], s[sid])
    assert_show_grid(tmp / "out" / "grazpedwri_dx", tmp / "grid.png")


def test_yolo_rules():
    boxes = yolo.parse_labels("0 0.5 0.5 1.04 0.2\n\n", 100, 50)
    assert boxes[0].bbox == [0.0, 20.0, 100.0, 30.0]
    with pytest.raises(yolo.YoloError, match="6 fields"):
        yolo.parse_labels("3 0.5 0.5 0.1 0.1 0.9", 100, 50)
    with pytest.raises(yolo.YoloError) as exc:
        yolo.parse_labels("1 0.5 0.5 0 0.1", 100, 50)
    assert exc.value.reason == "bad_box"


def test_show_check_catches_a_misplaced_box(built):
    _, s, _ = built
    rec = {**s[L1]["json"], "objects": [{"image": 0, "label": "x", "bbox": [0.0, 0.0, 50.0, 50.0]}]}
    with pytest.raises(AssertionError, match="inside"):
        assert_boxes_on_objects(rec, s[L1])


def test_images_part_folders_or_one_merged_folder(tmp_path):
    """The figshare image zips unpack into images_part1/ ... images_part4/ (the fixture's layout); many users
    merge them into images/. Both give the same shards; with neither the build stops naming both layouts."""
    import shutil

    from medmo_data.build.distributor import BuildOptions, build
    from medmo_data.recipe import SourceError, get_recipe
    from tests.fixtures import make
    from tests.fixtures._zips import shard_digests

    raw = make("grazpedwri_dx", tmp_path / "raw")
    parts = build(get_recipe("grazpedwri_dx"), raw, BuildOptions(output=tmp_path / "a"))
    (raw / "images").mkdir()
    for png in sorted(raw.glob("images_part*/*.png")):
        png.rename(raw / "images" / png.name)
    merged = build(get_recipe("grazpedwri_dx"), raw, BuildOptions(output=tmp_path / "b"))
    assert parts.manifest["counts"] == merged.manifest["counts"] and merged.manifest["counts"]["written"] == 5
    assert shard_digests(tmp_path / "a" / "grazpedwri_dx") == shard_digests(tmp_path / "b" / "grazpedwri_dx")
    shutil.rmtree(raw / "images")
    with pytest.raises(SourceError, match="images_part1/"):
        list(get_recipe("grazpedwri_dx").records(raw, {}))


def test_image_zips_left_packed(tmp_path):
    """The figshare image zips left packed (`images_part1.zip` ..., members under `images_part1/`): read in
    place by file name, the same shards as the unpacked folders; a PNG in no zip is `missing_image`."""
    from medmo_data.build.distributor import BuildOptions, build
    from medmo_data.recipe import get_recipe
    from tests.fixtures import make
    from tests.fixtures._zips import shard_digests, zip_folder

    raw = make("grazpedwri_dx", tmp_path / "raw")
    (raw / "images_part2" / f"{R2}.png").unlink()
    unpacked = build(get_recipe("grazpedwri_dx"), raw, BuildOptions(output=tmp_path / "a"))
    for part in ("images_part1", "images_part2"):
        zip_folder(raw / part, raw / f"{part}.zip", f"{part}/")
    packed = build(get_recipe("grazpedwri_dx"), raw, BuildOptions(output=tmp_path / "b"))
    assert unpacked.manifest["rejects_by_reason"]["missing_image"] == 1
    assert packed.manifest["rejects_by_reason"] == unpacked.manifest["rejects_by_reason"]
    assert packed.manifest["counts"] == unpacked.manifest["counts"]
    assert shard_digests(tmp_path / "b" / "grazpedwri_dx") == shard_digests(tmp_path / "a" / "grazpedwri_dx")


def test_supervisely_export_gives_the_yolo_samples(tmp_path):
    """MedMO read the Supervisely JSON export (`folder_structure/supervisely/wrist/ann/<stem>.json`):
    without the YOLO folder it is read instead, box = min/max of `points.exterior`, `axis` lines and `text`
    markers left out, and the samples equal the YOLO build's; the same images are rejected for the same
    reasons."""
    from medmo_data.build.distributor import BuildOptions, build
    from medmo_data.recipe import get_recipe
    from tests.fixtures import grazpedwri_dx as fx

    yolo_res = build_fixture("grazpedwri_dx", tmp_path)
    raw = tmp_path / "sly"
    raw.mkdir()
    fx.make_supervisely(raw)
    res = build(get_recipe("grazpedwri_dx"), raw, BuildOptions(output=tmp_path / "sly_out"))
    assert res.manifest["counts"] == yolo_res.manifest["counts"]
    assert res.manifest["rejects_by_reason"] == yolo_res.manifest["rejects_by_reason"]
    a = by_id(read_samples(tmp_path / "out" / "grazpedwri_dx"))
    b = by_id(read_samples(tmp_path / "sly_out" / "grazpedwri_dx"))
    assert set(a) == set(b) == {R1, R2, L1, L2, V1}
    for sid in a:
        assert boxes_of(b[sid]["json"]) == [(o["label"], o["bbox"]) for o in a[sid]["json"]["objects"]]
        assert b[sid]["json"]["meta"] == a[sid]["json"]["meta"]
    assert [o["label"] for o in b[L1]["json"]["objects"]] == ["periosteal reaction"]


def test_labels_option_names_the_supervisely_folder(tmp_path):
    from medmo_data.recipe import SourceError, get_recipe
    from tests.fixtures import make

    raw = make("grazpedwri_dx", tmp_path / "raw")
    with pytest.raises(SourceError, match="supervisely"):
        list(get_recipe("grazpedwri_dx").records(raw, {"labels": "supervisely"}))


def test_supervisely_title_spellings():
    """Titles are the YOLO ids in lower case in the real export; other spellings of them still match."""
    from medmo_data.recipes.grazpedwri_dx import CLASSES, _compact

    assert [_compact(t) for t in ("Periosteal_Reaction", "soft tissue", "Bone-Anomaly", "TEXT")] == [
        "periostealreaction", "softtissue", "boneanomaly", "text"]
    assert {_compact(c) for c in CLASSES} == set(CLASSES)


@pytest.mark.parametrize("prefix", ["folder_structure/", ""])
def test_folder_structure_zip_left_packed(tmp_path, prefix):
    """`folder_structure.zip` as downloaded, read in place whether its members sit under `folder_structure/`
    or at the top: the YOLO labels and meta.yaml give the unpacked build's shards and rejects; so does the
    Supervisely export with the images only in its `img/` folder."""
    from medmo_data.build.distributor import BuildOptions, build
    from medmo_data.recipe import get_recipe
    from tests.fixtures import grazpedwri_dx as fx
    from tests.fixtures import make
    from tests.fixtures._zips import shard_digests, zip_folder

    recipe = get_recipe("grazpedwri_dx")
    raw = make("grazpedwri_dx", tmp_path / "raw")
    (raw / "folder_structure" / "yolov5" / "meta.yaml").write_text(  # a meta.yaml that must be read
        "nc: 9\nnames: [boneanomaly, bonelesion, foreignbody, break, metal, periostealreaction, pronatorsign, "
        "softtissue, text]\n")
    unpacked = build(recipe, raw, BuildOptions(output=tmp_path / "a"))
    zip_folder(raw / "folder_structure", raw / "folder_structure.zip", prefix)
    packed = build(recipe, raw, BuildOptions(output=tmp_path / "b"))
    assert packed.manifest["counts"] == unpacked.manifest["counts"] and packed.manifest["counts"]["written"] == 5
    assert packed.manifest["rejects_by_reason"] == unpacked.manifest["rejects_by_reason"]
    assert shard_digests(tmp_path / "b" / "grazpedwri_dx") == shard_digests(tmp_path / "a" / "grazpedwri_dx")
    assert "break" in {o["label"] for o in by_id(read_samples(tmp_path / "b" / "grazpedwri_dx"))[R1]["json"]["objects"]}

    sly = tmp_path / "sly"
    sly.mkdir()
    fx.make_supervisely(sly)
    in_parts = build(recipe, sly, BuildOptions(output=tmp_path / "c"))
    export = tmp_path / "export"
    export.mkdir()
    fx.make_supervisely(export, images_in_export=True)
    assert not list(export.glob("images_part*"))
    unpacked_export = build(recipe, export, BuildOptions(output=tmp_path / "d"))
    zip_folder(export / "folder_structure", export / "folder_structure.zip", prefix)
    packed_export = build(recipe, export, BuildOptions(output=tmp_path / "e"))
    for res, out in ((unpacked_export, "d"), (packed_export, "e")):
        assert res.manifest["counts"] == in_parts.manifest["counts"]
        assert res.manifest["rejects_by_reason"] == in_parts.manifest["rejects_by_reason"]
        assert shard_digests(tmp_path / out / "grazpedwri_dx") == shard_digests(tmp_path / "c" / "grazpedwri_dx")
