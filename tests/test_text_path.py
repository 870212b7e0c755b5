"""The text-only build path (issue 19, bench row `text`): cheaper per sample, the same bytes and the same
rejects. Each shortcut is checked against the obvious computation it replaced, and a MedQA build's output
is pinned to the hashes the code before the change wrote."""

from __future__ import annotations

import gc
import hashlib
import io
import json
import math
import random

import pyarrow.parquet as pq
import pytest

from medmo_data.build import normalize as norm_mod
from medmo_data.build.distributor import BuildOptions, build
from medmo_data.build.normalize import NormalizeOptions, SampleRejected, compact_encoder, normalize
from medmo_data.build.shard import _index_row, _role_texts, reject_row
from medmo_data.formats.tables import clean
from medmo_data.mix.fingerprint import normalize_text
from medmo_data.recipe import ImageSource, RawSample, SourceInfo, get_recipe
from medmo_data.schema import SchemaError, image, objects, turn, validate_record
from medmo_data.shards.writer import TarBuilder
from tests.fixtures import make
from tests.helpers import tarfile_reference

INFO = SourceInfo(name="t", title="t", stages=(3,), tasks=("mcq",), modality="none", access="open",
                  license="MIT")
BAD = "\udcff"  # what surrogateescape makes of a byte that is not UTF-8


def _raw(**kw) -> RawSample:
    rec = {"id": "r1", "split": "train", "task": "mcq", "key": "r1",
           "messages": [turn("user", "q"), turn("assistant", "a")], "target": {"answer": "A"},
           "meta": {"file": "f.jsonl"}}
    rec.update(kw)
    return RawSample(**rec)


def _outcome(raw: RawSample) -> tuple[str, str]:
    try:
        normalize(raw, INFO, NormalizeOptions())
    except Exception as exc:  # noqa: BLE001 - the reject row is what is compared
        row = reject_row(raw, exc)
        return row["reason"], row["detail"]
    return "written", ""


# --- the UTF-8 check: walked only when a record fails, same reason and path ---------------------------------

def test_a_good_record_is_not_walked(monkeypatch):
    """The recursive walk (~7% of a text sample's CPU) no longer runs for records that encode."""
    calls = []
    real = norm_mod._check_text
    monkeypatch.setattr(norm_mod, "_check_text", lambda v, p: calls.append(p) or real(v, p))
    rec, members, _ = normalize(_raw(), INFO, NormalizeOptions())
    assert calls == []
    assert json.loads(members["json"]) == rec


@pytest.mark.parametrize("kw,detail", [
    ({"id": "r" + BAD}, "id: surrogates not allowed"),
    ({"messages": [turn("system", "s" + BAD), turn("user", "q"), turn("assistant", "a")]},
     "messages[0].content[0].text: surrogates not allowed"),
    ({"messages": [turn("user", "q", "x" + BAD), turn("assistant", "a")]},
     "messages[0].content[1].text: surrogates not allowed"),
    ({"messages": [turn("user", "q"), turn("assistant", BAD)]},
     "messages[1].content[0].text: surrogates not allowed"),
    ({"target": {"choices": {"A": "x", "B": BAD}}}, "target.choices.B: surrogates not allowed"),
    ({"meta": {"file": "f", "z": [1, {"y": BAD}]}}, "meta.z[1].y: surrogates not allowed"),
    # the first in the order id, messages, target, meta
    ({"meta": {"a": BAD}, "target": {"b": BAD}}, "target.b: surrogates not allowed"),
    ({"target": "x" + BAD}, "target: surrogates not allowed"),
])
def test_bad_text_is_named_by_its_path(kw, detail):
    assert _outcome(_raw(**kw)) == ("non_utf8_text", detail)


def _png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (8, 6), 7).save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize("kw", [
    {"split": "dev"},  # schema
    {"task": "nope"},  # schema
    {"meta": {"n": float("nan")}},  # not strict JSON
    {"meta": {"b": b"bytes"}},  # TypeError: unexpected_error
    {"messages": [turn("user", image(), "q"), turn("assistant", "a")], "images": [ImageSource(data=b"junk")]},
    {"task": "grounding", "messages": [turn("user", image(), "q"), turn("assistant", "a", objects())],
     "images": [ImageSource(data=_png())], "objects": [{"image": 0, "label": "x", "bbox": [5, 5, 1, 1]}]},
])
def test_bad_text_still_outranks_every_other_reason(kw):
    """It was checked first: a record with a bad string and any other fault is still `non_utf8_text`."""
    assert _outcome(_raw(**kw))[0] != "non_utf8_text"
    meta = {**kw.get("meta", {}), "zz": BAD}
    assert _outcome(_raw(**{**kw, "meta": meta})) == ("non_utf8_text", "meta.zz: surrogates not allowed")


def test_what_the_walk_never_saw_keeps_its_old_reason():
    """The walk reads str values of dicts and lists only: a bad key, or a bad string in a tuple, was and is
    found by the encoder (`schema`); a cycle was the walk's RecursionError and still is (`too_deep`)."""
    reason, detail = _outcome(_raw(meta={"k" + BAD: "v"}))
    assert reason == "schema" and detail.startswith("record is not strict JSON: 'utf-8' codec can't encode")
    assert _outcome(_raw(meta={"t": ("a", BAD)}))[0] == "schema"
    loop: dict = {"a": 1}
    loop["self"] = loop
    assert _outcome(_raw(meta=loop)) == ("too_deep", "a value is nested too deeply to process")
    assert _outcome(_raw(meta={"loop": loop, "s": BAD}))[0] == "too_deep"


def test_nesting_limit_is_the_encoders_and_the_walk_reaches_past_it():
    """The record is encoded as deep in the stack as before (a record nested just past what can be written
    is `too_deep`), and the walk still reaches a bad string one level past that limit."""
    def nested(depth, leaf="x"):
        v = leaf
        for _ in range(depth):
            v = [v]
        return v

    lo, hi = 10, 5000  # deepest written, shallowest refused
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _outcome(_raw(meta={"d": nested(mid)}))[0] == "written":
            lo = mid
        else:
            hi = mid
    assert _outcome(_raw(meta={"d": nested(hi)}))[0] == "too_deep"
    with pytest.raises(SampleRejected) as e:
        normalize(_raw(meta={"d": nested(hi, BAD)}), INFO, NormalizeOptions())
    assert e.value.reason == "non_utf8_text"
    assert e.value.detail == "meta.d" + "[0]" * hi + ": surrogates not allowed"


# --- encoders, index row, tar, schema, cells ----------------------------------------------------------------

def _random_value(r: random.Random, depth: int = 0):
    kind = r.randrange(9 if depth < 4 else 6)
    if kind == 0:
        return r.choice([None, True, False])
    if kind == 1:
        return r.randint(-10**20, 10**20)
    if kind == 2:
        return r.choice([0.1, -0.0, 1e300, 5e-324, 1.5, float(r.randint(0, 9))])
    if kind in (3, 4, 5):
        return "".join(r.choice(["a", "é", "\u2028", '"', "\\", "\n", "\x00", "💊", "/", "<"])
                       for _ in range(r.randint(0, 6)))
    if kind in (6, 7):
        return {r.choice(["b", "a", "é", "A", "_", "aa"]) + str(i): _random_value(r, depth + 1)
                for i in range(r.randint(0, 4))}
    return [_random_value(r, depth + 1) for _ in range(r.randint(0, 4))]


def test_compact_encoder_writes_what_the_json_encoder_writes():
    r = random.Random(5)
    for sort_keys in (True, False):
        for allow_nan in (True, False):
            enc = compact_encoder(sort_keys=sort_keys, allow_nan=allow_nan)
            ref = json.JSONEncoder(ensure_ascii=False, sort_keys=sort_keys, separators=(",", ":"),
                                   allow_nan=allow_nan)
            for _ in range(400):
                v = _random_value(r)
                assert enc(v) == ref.encode(v)
    assert compact_encoder(True, True)({"b": math.inf, "a": math.nan}) == '{"a":NaN,"b":Infinity}'
    with pytest.raises(ValueError):
        compact_encoder(True, False)({"a": math.nan})


def _old_role_text(rec, role):  # what the index row computed per role before (one pass per role)
    return "\n".join(p["text"] for m in rec["messages"] if m["role"] == role
                     for p in m["content"] if p["type"] == "text")


@pytest.mark.parametrize("prompt", [
    "", "?!", "  What is\tthe DX?\n", "a\u00a0b\u2028c\u3000d", "x\x1cy\x1fz", "Ｆｕｌｌ ｗｉｄｔｈ",
    "naïve—café",
    "one", " ".join(["w"] * 50), "tab\t\tand\r\nnewline", "ﬁ ligature", "\u200b zero width",
])
def test_index_row_texts_and_word_count_unchanged(prompt):
    rec = {"id": "r", "split": "train", "task": "vqa", "modality": "none", "license": "l", "access": "open",
           "images": [], "objects": [], "meta": {},
           "messages": [turn("system", "sys one", "sys two"), turn("user", image(), prompt, "second"),
                        turn("assistant", "ans"), turn("user", "more"), turn("assistant", "end", "x")]}
    row = _index_row("k", "s.tar", rec, [])
    assert _role_texts(rec) == tuple(_old_role_text(rec, r) for r in ("system", "user", "assistant"))
    assert row["prompt_words"] == len(normalize_text(_old_role_text(rec, "user")).split())
    assert row["system"] == "sys one\nsys two"
    one = {**rec, "messages": [turn("user", prompt or "q"), turn("assistant", "a")]}
    assert _index_row("k", "s.tar", one, [])["prompt_words"] == len(normalize_text(prompt or "q").split())


def test_tar_builder_joins_small_members_and_streams_large_ones(tmp_path):
    """Members up to 32 KiB are written with their header in one piece, larger ones apart: same bytes."""
    sizes = [0, 1, 511, 512, (32 << 10) - 1, 32 << 10, (32 << 10) + 1, 200_001, 5000]
    members = {f"{i}.bin": bytes([i + 1]) * n for i, n in enumerate(sizes)}
    tb = TarBuilder(tmp_path / "a.tar")
    tb.add("k", members)
    info = tb.finish()
    got = (tmp_path / "a.tar").read_bytes()
    assert got == tarfile_reference([("k", members)]) and info["sha256"] == hashlib.sha256(got).hexdigest()


@pytest.mark.parametrize("member,ok", [("0.png", True), ("0.jpg", True), ("00.png", False),
                                       ("0.png.png", False), (".png", False), ("0.", False), ("0.gif", False),
                                       ("1.png", False), (0, False), (None, False)])
def test_image_member_names(member, ok):
    rec = {"schema": "medmo/v1", "id": "a", "source": "s", "split": "train", "task": "vqa", "modality": "ct",
           "license": "MIT", "access": "open", "target": {}, "meta": {}, "objects": [],
           "images": [{"member": member, "width": 2, "height": 2, "source_width": 2, "source_height": 2,
                       "derivation": {}}],
           "messages": [turn("user", image(), "q"), turn("assistant", "a")]}
    if ok:
        validate_record(rec)
        return
    with pytest.raises(SchemaError) as e:
        validate_record(rec)
    assert str(e.value) == f"images[0].member: must be '0.png' or '0.jpg', got {member!r}"


def test_objects_part_outside_grounding_still_refused():
    rec = {"schema": "medmo/v1", "id": "a", "source": "s", "split": "train", "task": "vqa", "modality": "ct",
           "license": "MIT", "access": "open", "target": {}, "meta": {}, "images": [],
           "objects": [{"image": 0, "label": "x", "bbox": [0, 0, 1, 1]}],
           "messages": [turn("user", "q"), turn("assistant", "a", objects())]}
    with pytest.raises(SchemaError) as e:
        validate_record(rec)
    assert str(e.value) == "objects[0].image: must index one of the 0 images, got 0"
    rec["objects"] = []
    with pytest.raises(SchemaError) as e:
        validate_record(rec)
    assert str(e.value) == "messages: an objects part needs at least one object"
    rec["images"] = [{"member": "0.png", "width": 2, "height": 2, "source_width": 2, "source_height": 2,
                      "derivation": {}}]
    rec["objects"] = [{"image": 0, "label": "x", "bbox": [0, 0, 1, 1]}]
    rec["messages"][0]["content"].insert(0, image())
    with pytest.raises(SchemaError) as e:
        validate_record(rec)
    assert str(e.value) == "messages: objects parts are for grounding/detection tasks"
    validate_record({**rec, "task": "grounding"})


def test_clean_fast_path_keeps_the_conversion():
    class Cell(str):
        pass

    got = clean(Cell("  a b "))
    assert got == "a b" and type(got) is str
    assert clean(" x\n") == "x" and clean(3.0) == "3" and clean(float("nan")) == "" and clean(None) == ""


# --- the build: heap frozen only while it runs, output pinned ----------------------------------------------

def test_build_freezes_the_heap_while_it_runs_and_restores_it(tmp_path):
    raw = make("medqa", tmp_path / "raw")
    recipe = get_recipe("medqa")
    seen = []

    def records(root, options):
        for item in recipe.records(root, options):
            seen.append(gc.get_freeze_count())
            yield item

    from dataclasses import replace

    assert gc.get_freeze_count() == 0
    build(replace(recipe, records=records), raw, BuildOptions(output=tmp_path / "a"))
    assert seen and min(seen) > 0 and gc.get_freeze_count() == 0
    gc.freeze()  # a caller that froze its own heap keeps it frozen
    try:
        frozen = gc.get_freeze_count()
        build(recipe, raw, BuildOptions(output=tmp_path / "b"))
        # still frozen (an unfreeze would leave 0); a few frozen objects may have been freed meanwhile
        assert frozen - 1000 < gc.get_freeze_count() <= frozen
    finally:
        gc.unfreeze()


# sha256 of what the code before this change (main b931446) wrote for the MedQA fixture, 2 samples a shard:
# tars and rejects byte for byte, index rows as sorted JSON (Parquet bytes carry pyarrow's version).
PINNED = {
    "rejects.jsonl": "64400bedef048708563defb2a41a93871a81e6b8d243a40bdc9456558268a3f0",
    "test-000000.index.parquet": "c35cd9251b0bc2dacbe3441fbe0698ad4e85b05f1c62cca15963ad888ad85bda",
    "test-000000.tar": "945c6f9f57ddc0b734698287287b1738d2d73df7495a7a14ac9e61d7dadb4975",
    "test-000001.index.parquet": "61d68a9e78a7e6c83cd72134d6598a3fc1829ce88fb55314b4329a1ffb8d9dd9",
    "test-000001.tar": "fa28622981a43ddd3e4bcfb5f3a31aa05bb8dd4341c169a21733ad41c4b5dc01",
    "train-000000.index.parquet": "4f58cae75971e2a8747875e5d7c04094c530c0ed4aa24f861f0c929a630ee8df",
    "train-000000.tar": "a05f470d9d5863ff1c2eb5af15aa40054d75a0d5517ff698dec481bf3c0386f7",
    "val-000000.index.parquet": "e309c3d6d17edcf9aecdc1a2838ee167e7f8451f0360d13203175021f7cff647",
    "val-000000.tar": "c846b82a8e831a667bdf6e743f253e647428c7dee3610ecfb4a2b5eddf58f6af",
    "val-000001.index.parquet": "6c45e20f989cafd83456d7a8dac23276d26a74451575458fac9769b354c51a6c",
    "val-000001.tar": "3a1920a9f2a7c227a06b103cbb70662a99409faaea6ae20fb8c94f94a12ba93b",
}


def _digests(folder) -> dict[str, str]:
    out = {}
    for p in sorted(folder.iterdir()):
        if p.suffix == ".tar" or p.name == "rejects.jsonl":
            out[p.name] = hashlib.sha256(p.read_bytes()).hexdigest()
        elif p.name.endswith(".index.parquet"):
            rows = [{k: v for k, v in r.items() if not k.startswith("image_")}  # empty here; being renamed
                    for r in pq.read_table(p).to_pylist()]
            out[p.name] = hashlib.sha256(json.dumps(rows, sort_keys=True, default=lambda b: b.hex()).encode()
                                         ).hexdigest()
    return out


def test_medqa_build_writes_the_pinned_bytes(tmp_path):
    raw = make("medqa", tmp_path / "raw")
    res = build(get_recipe("medqa"), raw, BuildOptions(output=tmp_path / "out", shard_samples=2))
    assert res.manifest["counts"] == {"read": 10, "written": 7, "rejected": 3}
    assert _digests(tmp_path / "out" / "medqa") == PINNED


def test_keys_made_from_ids_need_no_second_check():
    """_admit checks only recipe-chosen keys: every key make_key returns is already safe."""
    from medmo_data.keys import MAX_KEY, is_safe_key, make_key

    r = random.Random(9)
    alphabet = ["a", "Z", "0", "-", "_", ".", "/", " ", "é", "İ", "ı", "ß", "\u212a", "\udcff", "💊", ":",
                "\x00"]
    ids = ["a", "A", "us4-train-1", "x" * MAX_KEY, "x" * (MAX_KEY + 1), "...", "İ", "\u212a"]
    ids += ["".join(r.choice(alphabet) for _ in range(r.randint(1, 120))) for _ in range(3000)]
    for sid in ids:
        assert is_safe_key(make_key(sid)), repr(sid)
