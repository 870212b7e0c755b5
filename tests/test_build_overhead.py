"""The build's fixed per-sample work, made cheaper without changing one output byte (issue 19, items 2-3):
each faster path is checked against the slow, obvious computation it replaced."""

from __future__ import annotations

import copy
import io
import random
import re
import tarfile
import unicodedata

import numpy as np
import pytest
from PIL import Image

from medmo_data.build.normalize import NormalizeOptions, process_image
from medmo_data.mix.fingerprint import dhash64, image_prints, normalize_text, pixel_hash, thumb16
from medmo_data.pixels import decode as decode_mod
from medmo_data.pixels.decode import decode, pixel_view
from medmo_data.pixels.transform import DecodeError, apply_window, lookup, window_table
from medmo_data.recipe import ImageSource
from medmo_data.schema import SchemaError, validate_record
from medmo_data.shards.writer import TarBuilder, member_header
from tests.helpers import tarfile_reference
from tests.test_schema import GOOD


def _jpeg(mode: str, size=(96, 80), **save) -> bytes:
    rng = np.random.default_rng(3)
    shape = (size[1], size[0]) + ((3,) if mode == "RGB" else ())
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(buf, "JPEG", quality=90, **save)
    return buf.getvalue()


# --- decoded pixels: a view of Pillow's buffer, not a tobytes() copy ----------------------------------------

def test_grey_pass_through_never_copies_the_image(monkeypatch, tmp_path):
    """An 8-bit grey JPEG is decoded, hashed and fingerprinted without the full-size `tobytes` copy that
    `np.asarray(img)` makes (0.4 of the decode's CPU), and the values are those of that copy."""
    path = tmp_path / "a.jpg"
    path.write_bytes(_jpeg("L", (300, 200)))
    want = np.asarray(Image.open(path).convert("L"))
    full = []
    real = Image.Image.tobytes

    def counting(self, *a, **k):
        if self.size == (300, 200):
            full.append(self.mode)
        return real(self, *a, **k)

    monkeypatch.setattr(Image.Image, "tobytes", counting)
    dec = decode(ImageSource(path=str(path)))
    done = process_image(dec, "jpg", NormalizeOptions())
    meta, fp = done.meta(0), done.fingerprint
    assert full == []
    assert meta["derivation"]["pass_through"] is True
    assert np.array_equal(dec.pixels, want) and not dec.pixels.flags.writeable
    copy_img = Image.fromarray(want)
    assert fp == {"hash": pixel_hash(want), "dhash": dhash64(copy_img), "thumb": thumb16(copy_img)}


def test_pixel_view_outlives_its_image():
    """The view keeps Pillow's buffer alive (the Arrow export holds it) after the image is gone and its
    memory could be reused."""
    import gc

    rng = np.random.default_rng(6)
    for _ in range(20):
        want = rng.integers(0, 256, (120, 131), dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray(want).save(buf, "PNG")
        img = Image.open(io.BytesIO(buf.getvalue()))
        img.load()
        view = pixel_view(img)
        del img
        gc.collect()
        _reuse = [Image.new("L", (131, 120), 7) for _ in range(4)]
        assert np.array_equal(view, want)


def test_pixel_view_falls_back_to_the_copy_when_no_view_exists():
    """RGB (Pillow stores RGBX) and an image allocated in several memory blocks take np.asarray: same values."""
    rgb = Image.open(io.BytesIO(_jpeg("RGB")))
    rgb.load()
    assert np.array_equal(pixel_view(rgb), np.asarray(rgb)) and pixel_view(rgb).shape == (80, 96, 3)
    core = Image.core
    old = core.get_block_size()
    core.set_block_size(4096)  # 200 rows of 300 bytes: several blocks, no single buffer to view
    try:
        grey = Image.fromarray(np.arange(60000, dtype=np.uint32).reshape(200, 300).astype(np.uint8))
        view = pixel_view(grey)
    finally:
        core.set_block_size(old)
    assert np.array_equal(view, np.asarray(grey)) and view.shape == (200, 300)


def test_16bit_png_windowed_from_a_view_of_its_pixels(monkeypatch, tmp_path):
    """A 16-bit grey PNG (DeepLesion) is windowed from a view of Pillow's I;16 buffer, not a tobytes copy,
    to the bytes of the float64 formula on np.asarray's values; big-endian I;16B takes the copy."""
    stored = np.random.default_rng(4).integers(30000, 36000, (70, 90)).astype(np.uint16)
    path = tmp_path / "s.png"
    Image.fromarray(stored).save(path)
    img = Image.open(path)
    assert img.mode == "I;16"
    calls = []
    real = Image.Image.tobytes
    monkeypatch.setattr(Image.Image, "tobytes", lambda self, *a, **k: calls.append(self.mode) or real(self, *a, **k))
    dec = decode(ImageSource(path=str(path), value_offset=-32768, window=(-300.0, 500.0)))
    assert calls == []
    assert np.array_equal(dec.pixels, apply_window(stored.astype(np.float64) - 32768, -300.0, 500.0))
    big = Image.frombytes("I;16B", (90, 70), stored.astype(">u2").tobytes())
    got = pixel_view(big, np.uint16)
    assert got.dtype == np.uint16 and np.array_equal(got, stored)


def test_decoded_image_is_for_reading_only(tmp_path):
    """A passed-through JPEG that must be re-encoded anyway (resized) carries none of the file's info
    (its COM comment) into the new bytes: the encoder gets a fresh image, not the decoder's."""
    path = tmp_path / "c.jpg"
    path.write_bytes(_jpeg("L", (400, 300), comment=b"PATIENT NAME"))
    dec = decode(ImageSource(path=str(path)))
    assert dec.decoded is not None and dec.decoded.info.get("comment") == b"PATIENT NAME"
    done = process_image(dec, "jpg", NormalizeOptions(max_side=200))
    assert done.width == 200 and b"PATIENT NAME" not in done.data
    data = process_image(dec, "png", NormalizeOptions()).data  # same size, other format
    assert b"PATIENT NAME" not in data and Image.open(io.BytesIO(data)).size == (400, 300)


def test_grey_prints_without_convert_equal_the_converted():
    img = Image.fromarray(np.random.default_rng(1).integers(0, 256, (61, 77), dtype=np.uint8))
    assert image_prints(img) == (dhash64(img), thumb16(img))
    rgb = Image.fromarray(np.random.default_rng(2).integers(0, 256, (61, 77, 3), dtype=np.uint8))
    assert image_prints(rgb) == (dhash64(rgb), thumb16(rgb))


# --- file reads: the stat's size, not a 1 GiB buffer per file --------------------------------------------

def test_a_file_that_grew_after_the_stat_is_read_whole_and_still_capped(monkeypatch, tmp_path):
    path = tmp_path / "x.bin"
    path.write_bytes(bytes(range(256)) * 40)  # 10,240 bytes
    src = ImageSource(path=str(path))
    assert decode_mod._read_bytes(src) == path.read_bytes()
    monkeypatch.setattr(decode_mod, "check_file", lambda p: 100)  # stat saw 100 bytes; the file has more
    assert decode_mod._read_bytes(src) == path.read_bytes()
    monkeypatch.setattr(decode_mod, "MAX_FILE_BYTES", 5000)
    with pytest.raises(DecodeError) as e:
        decode_mod._read_bytes(src)
    assert e.value.reason == "file_too_large"


# --- window tables: np.take gathers what table[index] did --------------------------------------------------

@pytest.mark.parametrize("dtype", [np.int16, np.uint16, np.uint8, np.int8])
def test_lookup_on_strided_and_3d_stored_values_equals_the_formula(dtype):
    rng = np.random.default_rng(5)
    info = np.iinfo(dtype)
    vol = rng.integers(info.min, int(info.max) + 1, size=(3, 40, 50), dtype=dtype)
    for stored in (vol, vol[1, :, ::3], vol[:, ::-1, 7]):
        want = apply_window(stored.astype(np.float64) * 0.5 - 20, -30.0, 40.0)
        got = window_table(stored, -30.0, 40.0, lambda s: s.astype(np.float64) * 0.5 - 20)
        assert got.dtype == np.uint8 and got.shape == stored.shape and np.array_equal(got, want)
        assert np.array_equal(lookup(stored, lambda s: (s.astype(np.int64) % 251).astype(np.uint8)),
                              (stored.astype(np.int64) % 251).astype(np.uint8))


# --- tar members: headers built directly, bytes identical to tarfile ------------------------------------

def _tarfile_header(name: str, size: int) -> bytes:
    ti = tarfile.TarInfo(name)
    ti.size, ti.mtime, ti.mode, ti.uid, ti.gid, ti.uname, ti.gname = size, 0, 0o444, 0, 0, "", ""
    return ti.tobuf(tarfile.GNU_FORMAT, tarfile.ENCODING, "surrogateescape")


def test_member_header_is_tarfiles_byte_for_byte():
    r = random.Random(7)
    names = ["a.json", "x" * 95 + ".json", "x" * 96 + ".json", "x" * 150 + ".0.png", "é-1.json", "k\udcff.json",
             "a b.0.jpg"]
    names += ["".join(r.choice("abcXYZ09-_./ ") for _ in range(r.randint(1, 120))) for _ in range(300)]
    sizes = [0, 1, 511, 512, 513, 65536, 8**11 - 1, 8**11, 10**12]
    for name in names:
        for size in sizes:
            assert member_header(name, size) == _tarfile_header(name, size), (name, size)


def test_tar_builder_writes_what_tarfile_writes(tmp_path):
    samples = [("k-000000", {"json": b"{}", "0.png": bytes(512)}), ("k-000001", {"json": b"x" * 513}),
               ("long-" + "y" * 120, {"json": b"", "0.jpg": b"\xff\xd8" * 3000})]
    tb = TarBuilder(tmp_path / "a.tar")
    for key, members in samples:
        tb.add(key, members)
    assert tb.size() == sum(len(_tarfile_header(f"{k}.{f}", len(d))) + -(-len(d) // 512) * 512
                            for k, m in samples for f, d in m.items())
    info = tb.finish()
    got = (tmp_path / "a.tar").read_bytes()
    assert got == tarfile_reference(samples) and info["bytes"] == len(got) and len(got) % tarfile.RECORDSIZE == 0
    import hashlib

    assert info["sha256"] == hashlib.sha256(got).hexdigest()


# --- text normalisation: the ASCII path equals NFKC + the two regexes -------------------------------------

_WS, _PUNCT = re.compile(r"\s+"), re.compile(r"[^\w\s]")


def _normalize_reference(text: str) -> str:
    t = unicodedata.normalize("NFKC", text).lower()
    return _WS.sub(" ", _PUNCT.sub(" ", t)).strip()


def test_normalize_text_ascii_path_equals_the_regex_rule():
    r = random.Random(11)
    ascii_chars = [chr(i) for i in range(128)]
    for _ in range(20000):
        s = "".join(r.choice(ascii_chars) for _ in range(r.randint(0, 30)))
        assert normalize_text(s) == _normalize_reference(s), repr(s)
    for s in ["Ｆｕｌｌｗｉｄｔｈ ＣＴ", "naïve  café—x", "ﬁbrosis\u00a0(RLL)", "x\u2028y", "Straße"]:
        assert normalize_text(s) == _normalize_reference(s)
    assert normalize_text("  What's the DX?\n\tA. CT_scan; B. MRI\x1f ") == "what s the dx a ct_scan b mri"


# --- schema: messages formatted only on failure, unchanged ----------------------------------------------


@pytest.mark.parametrize("mutate,message", [
    (lambda r: r.update(split="dev"), "split: must be one of ('train', 'val', 'test'), got 'dev'"),
    (lambda r: r.update(modality="xr"), "modality: must be one of ('ct', 'mri', 'xray', 'ultrasound', 'pathology', "
     "'microscopy', 'fundus', 'oct', 'dermoscopy', 'endoscopy', 'pet', 'spect', 'clinical_photo', 'mixed', "
     "'none'), got 'xr'"),
    (lambda r: r.update(access=None), "access: must be one of ('open', 'registered', 'credentialed'), got None"),
    (lambda r: r["images"][0].update(member="1.png"), "images[0].member: must be '0.png' or '0.jpg', got '1.png'"),
    (lambda r: r["images"][0].update(height=True), "images[0].height: must be a positive integer, got True"),
    (lambda r: r["objects"][0].update(image=-1), "objects[0].image: must index one of the 1 images, got -1"),
    (lambda r: r["objects"][0].update(label="a]]"),
     "objects[0].label: must not contain box markup or control characters, found ']]'"),
    (lambda r: r["objects"][0].update(bbox=(1, 1, 5, 5)),
     "objects[0].bbox: must be a list of 4 numbers, got (1, 1, 5, 5)"),
    (lambda r: r["objects"][0].update(bbox=[1, True, 5, 5]), "objects[0].bbox: must hold numbers, got [1, True, 5, 5]"),
    (lambda r: r["objects"][0].update(bbox=[1, 1, float("inf"), 5]),
     "objects[0].bbox: non-finite coordinate in [1, 1, inf, 5]"),
    (lambda r: r["objects"][0].update(bbox=[3, 1, 3, 5]), "objects[0].bbox: x2 (3) must be > x1 (3)"),
    (lambda r: r["objects"][0].update(bbox=[1, 5, 3, 2]), "objects[0].bbox: y2 (2) must be > y1 (5)"),
    (lambda r: r["objects"][0].update(bbox=[-1, 1, 3, 5]), "objects[0].bbox: negative coordinate in [-1, 1, 3, 5]"),
    (lambda r: r["objects"][0].update(bbox=[1, 1, 3, 9]), "objects[0].bbox: [1, 1, 3, 9] outside the 10x8 image"),
    (lambda r: r["messages"].insert(0, "hi"), "messages[0]: must be an object"),
    (lambda r: r["messages"][1].update(role="bot"),
     "messages[1].role: must be one of ('system', 'user', 'assistant'), got 'bot'"),
    (lambda r: r["messages"][1].update(content=[]), "messages[1].content: must be a non-empty list of parts"),
    (lambda r: r["messages"][0]["content"].append({"type": "video"}),
     "messages[0].content[2].type: must be one of ('image', 'text', 'objects')"),
    (lambda r: r["messages"][0]["content"][1].update(text=3), "messages[0].content[1].text: must be a string"),
    (lambda r: r["messages"][0]["content"].append({"type": "objects"}),
     "messages[0].content[2].type: objects parts belong in assistant turns"),
    (lambda r: r["messages"][0]["content"].append({"type": "image"}), "messages: 2 image placeholders but 1 images"),
])
def test_schema_messages_unchanged(mutate, message):
    rec = copy.deepcopy(GOOD)
    mutate(rec)
    with pytest.raises(SchemaError) as e:
        validate_record(rec)
    assert str(e.value) == message


def test_bench_fingerprint_row_runs_and_renders():
    """The bench row that prices these pieces (it raised KeyError 'thumb' once the index row took thumbs)."""
    from bench.__main__ import collect, table

    res = collect(("fingerprints",), quick=True, mix_n=0, mix_timeout=5, log=lambda m: None)
    r = res["fingerprints"]
    assert r["prints_ms"] > 0 and r["pixels_view_ms"] > 0 and r["window_table_ms"] > 0
    assert "fingerprints v2 (xxh3 + reduced dHash/thumb)" in table(res)


def test_shared_json_encoders_write_what_json_dumps_writes():
    import json

    from medmo_data.build.normalize import dump_json
    from medmo_data.build.shard import _scalar_meta

    objs = [{"b": 1, "a": [1.5, "é\u2028", None, True, {"z": -0.0, "y": 1e300}]}, [], "x", {"k": ""}]
    for o in objs:
        assert dump_json(o) == json.dumps(o, ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                                          allow_nan=False).encode()
    with pytest.raises(ValueError):
        dump_json({"x": float("nan")})
    meta = {"b": "é" * 300, "a": 2, "n": float("nan"), "l": [1], "f": 0.5, "t": True}
    assert _scalar_meta(meta) == '{"a":2,"b":"' + "é" * 200 + '","f":0.5,"t":true}'
