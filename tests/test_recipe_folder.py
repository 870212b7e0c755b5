import io

import numpy as np
import pytest
from PIL import Image

from medmo_data.build.distributor import BuildOptions, build
from medmo_data.recipe import get_recipe
from tests.fixtures import make
from tests.fixtures._dicom import PHI
from tests.helpers import build_fixture, by_id, read_samples


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("folder")
    res = build_fixture("folder", tmp)
    return tmp, res, by_id(read_samples(tmp / "out" / "folder"))


def px(sample):
    return np.asarray(Image.open(io.BytesIO(sample["0.png"])))


def test_counts(built):
    _, res, s = built
    assert res.manifest["counts"] == {"read": 12, "written": 8, "rejected": 4}
    assert res.manifest["rejects_by_reason"] == {"bad_box": 1, "bad_path": 1, "malformed_json": 1,
                                                 "missing_image": 1}
    assert s["tif"]["json"]["split"] == "val" and s["jpg"]["json"]["split"] == "test"


def test_dicom_window_exact(built):
    _, _, s = built
    a = px(s["ct-1"])  # soft tissue window -160..240: -1000 HU -> 0, +60 HU -> round(220/400*255) = 140
    assert a[0, 0] == 0 and a[30, 30] == 140
    assert s["ct-1"]["json"]["objects"][0]["bbox"] == [20.0, 24.0, 44.0, 40.0]  # xywh 20,24,24,16
    assert np.array_equal(px(s["ct-1-rle"]), a)  # RLE-compressed copy decodes to the same pixels


def test_dicom_voi_and_monochrome1(built):
    _, _, s = built
    a = px(s["ct-mono1"])
    # header window C40/W400 (DICOM linear: -160 .. 239), then MONOCHROME1 inverted
    assert a[0, 0] == 255 and a[30, 30] == 255 - round((60 + 160) / 399 * 255)


def test_nifti_slice_and_yolo(built):
    _, _, s = built
    d = s["nii-mid"]["json"]["images"][0]["derivation"]
    assert d["slice_index"] == 5 and d["orientation"] == "RAS+"
    # YOLO cx,cy,w,h = .25,.333,.25,.333 of an 80x60 image -> 10,10,30,30
    assert s["png16"]["json"]["objects"][0]["bbox"] == pytest.approx([10.0, 10.0, 30.0, 30.0])


def test_no_phi_in_any_output_byte(built):
    tmp, _, _ = built
    blob = b"".join(p.read_bytes() for p in (tmp / "out" / "folder").iterdir() if p.is_file())
    for value in PHI.values():
        assert value.encode() not in blob
        assert value.split("^")[0].encode() not in blob


def test_declared_licence(tmp_path):
    raw = make("folder", tmp_path / "raw")
    res = build(get_recipe("folder"), raw, BuildOptions(output=tmp_path / "out", recipe_options={
        "license": "CC-BY-4.0", "access": "registered"}))
    assert res.manifest["license"] == "CC-BY-4.0" and res.manifest["access"] == "registered"
    rec = read_samples(tmp_path / "out" / "folder")[0]["json"]
    assert rec["license"] == "CC-BY-4.0" and rec["access"] == "registered"


def test_jpeg_passes_through_in_its_own_series(built):
    tmp, res, s = built
    raw = (tmp / "raw" / "folder" / "jpg" / "photo.jpg").read_bytes()
    assert s["jpg"]["0.jpg"] == raw and "0.png" not in s["jpg"]  # the file's own bytes, no re-encode
    im = s["jpg"]["json"]["images"][0]
    assert im["member"] == "0.jpg" and im["derivation"]["pass_through"] is True
    series = {sh["group"] for sh in res.manifest["shards"] if sh["split"] == "test"}
    assert series == {"test-noboxes-jpg"}  # one set of member names per series


def _png_with_text(path, arr, text):
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", text)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, format="PNG", pnginfo=info, compress_level=1)


def test_8bit_png_and_jpeg_pass_through_metadata_dropped(tmp_path):
    import json

    from medmo_data.pixels.decode import png_image_chunks
    from tests.fixtures._images import grey, write_jpeg

    root = tmp_path / "raw"
    g = grey(40, 30, seed=3)
    rgb = np.stack([g, 255 - g, g // 2], axis=2)
    _png_with_text(root / "a.png", g, "Doe^Jane 1970-01-01")
    _png_with_text(root / "rgb.png", rgb, "Doe^Jane")
    write_jpeg(root / "b.jpeg", g)
    write_jpeg(root / "big.jpg", grey(300, 40, seed=4))  # longest side 300 > max_side 200: re-encoded, still .jpg
    lines = [{"id": k, "images": [p], "task": "caption", "caption": "c"} for k, p in
             [("a", "a.png"), ("rgb", "rgb.png"), ("b", "b.jpeg"), ("big", "big.jpg")]]
    (root / "annotations.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    from medmo_data.build.normalize import NormalizeOptions

    build(get_recipe("folder"), root, BuildOptions(output=tmp_path / "out", normalize=NormalizeOptions(max_side=200)))
    s = by_id(read_samples(tmp_path / "out" / "folder"))
    for key, arr in (("a", g), ("rgb", rgb)):
        data = s[key]["0.png"]
        assert b"Doe" not in data and b"tEXt" not in data
        assert data == png_image_chunks((root / f"{key}.png").read_bytes())[0]
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), arr)  # same pixels as the file
        assert s[key]["json"]["images"][0]["derivation"]["png_chunks_dropped"] == 1
    assert s["b"]["0.jpg"] == (root / "b.jpeg").read_bytes()
    big = s["big"]["json"]["images"][0]
    assert big["member"] == "0.jpg" and big["width"] == 200 and "pass_through" not in big["derivation"]
    assert Image.open(io.BytesIO(s["big"]["0.jpg"])).format == "JPEG"


def test_png_image_chunks_only_for_plain_8bit():
    from medmo_data.pixels.decode import png_image_chunks

    def enc(arr, **kw):
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="PNG", **kw)
        return buf.getvalue()

    g = np.arange(64, dtype=np.uint8).reshape(8, 8)
    plain = enc(g)
    assert png_image_chunks(plain) == (plain, 0)  # nothing to drop: the same object back
    assert png_image_chunks(enc(g.astype(np.uint16) * 300)) is None  # 16-bit: windowed, not passed
    buf = io.BytesIO()
    Image.fromarray(g).convert("P").save(buf, format="PNG")
    assert png_image_chunks(buf.getvalue()) is None  # palette
    assert png_image_chunks(plain[:40]) is None  # truncated
    assert png_image_chunks(plain[:20] + b"\x07" + plain[21:]) is None  # IHDR CRC no longer matches
