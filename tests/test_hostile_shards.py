"""Hostile shards (issue #15, item 3): every reader (`verify`, `show`, the trainer's adapter, `mix` on index
files) is bounded and strict. The shards are built here with tarfile: GNU sparse headers declaring huge
sizes, deep JSON, records of the wrong shape, PNG bombs, code members under any extension, keys that
disagree with the index, and a shard changed after `mix`."""

from __future__ import annotations

import io
import json
import struct
import tarfile
import tracemalloc
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from medmo_train import data as train_data

from medmo_data.build.verify import verify
from medmo_data.mix import indices, mixer, stats_report
from medmo_data.mix.stage import StageManifestError, load_stage_manifest
from medmo_data.shards import reader
from medmo_data.shards.reader import ShardError, UnsafeShard, iter_samples
from medmo_data.shards.writer import TarBuilder
from medmo_data.show import show
from tests.helpers import build_fixture
from tests.test_train_support import source_entry, write_stage

GiB = 1 << 30


# ---- hostile tar builders -------------------------------------------------------------------------

def _member(name: str, data: bytes) -> bytes:
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    return ti.tobuf(tarfile.GNU_FORMAT) + data + b"\0" * (-len(data) % 512)


def _sparse_member(name: str, declared: int) -> bytes:
    """A GNU sparse ('S') header that stores no data and declares a `declared`-byte file of holes."""
    ti = tarfile.TarInfo(name)
    ti.type = tarfile.GNUTYPE_SPARSE
    h = bytearray(ti.tobuf(tarfile.GNU_FORMAT))
    h[483:495] = tarfile.itn(declared, 12, tarfile.GNU_FORMAT)  # realsize, base-256 above 8 GiB
    h[148:156] = b" " * 8
    h[148:155] = b"%06o\0" % tarfile.calc_chksums(bytes(h))[0]
    return bytes(h)


def _tar(*members: bytes) -> bytes:
    return b"".join(members) + b"\0" * 1024


def _tar_of(members: dict[str, bytes]) -> bytes:
    return _tar(*(_member(n, d) for n, d in members.items()))


def _png(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height grey pixels; its data is a few bytes (a bomb when big)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def _small_peak(fn) -> int:
    """Peak Python allocation (bytes) while fn runs."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _read(data: bytes) -> list[dict]:
    return list(iter_samples(io.BytesIO(data)))


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """vqa_rad with 3 samples per shard: train-000000.tar holds 3 keys."""
    return build_fixture("vqa_rad", tmp_path_factory.mktemp("hostile"), shard_samples=3).path.parent


def _copy(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True)
    for p in src.iterdir():
        (dst / p.name).write_bytes(p.read_bytes())
    return dst


def _samples(tar: Path) -> list[tuple[str, dict[str, bytes]]]:
    """(key, {field: raw bytes}) of a tar, in order, with the record kept as bytes."""
    return [(s.pop("__key__"), s) for s in iter_samples(tar, decode_json=False)]


def _replace_shard(folder: Path, name: str, samples: list[tuple[str, dict[str, bytes]]]) -> None:
    """Rewrite a shard as the writer would and update its manifest entry (bytes, sha256, count), so only
    the content-level checks can catch what changed."""
    tb = TarBuilder(folder / name)
    for key, members in samples:
        tb.add(key, members)
    info = tb.finish()
    man = json.loads((folder / "manifest.json").read_text())
    for sh in man["shards"]:
        if sh["path"] == name:
            sh.update(bytes=info["bytes"], sha256=info["sha256"])
    (folder / "manifest.json").write_text(json.dumps(man))


def _swap_bytes(folder: Path, name: str, data: bytes) -> None:
    """Replace a shard's bytes by a hostile tar and make the manifest agree with it (hash and size)."""
    import hashlib

    (folder / name).write_bytes(data)
    man = json.loads((folder / "manifest.json").read_text())
    for sh in man["shards"]:
        if sh["path"] == name:
            sh.update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    (folder / "manifest.json").write_text(json.dumps(man))


# ---- class 1: member and index sizes are capped before reading ---------------------------------------

SPARSE_BOMBS = [  # (member, declared size): 2.5 KB tars
    ("s0.json", 10 * GiB),
    ("s0.json", reader.MAX_RECORD_BYTES + 1),
    ("s0.0.png", reader.MAX_IMAGE_BYTES + 1),
]


@pytest.mark.parametrize(("name", "declared"), SPARSE_BOMBS)
def test_sparse_member_over_cap_refused_before_reading(name, declared):
    lead = _member("s0.json", b"{}") if name != "s0.json" else b""
    data = _tar(lead, _sparse_member(name, declared))
    assert len(data) <= 2560

    def refused():
        with pytest.raises(ShardError, match=rf"member '{name}' declares {declared} bytes, over the"):
            _read(data)

    assert _small_peak(refused) < 4 << 20


def test_plain_header_over_cap_refused_and_sparse_under_cap_refused():
    ti = tarfile.TarInfo("s0.json")
    ti.size = reader.MAX_RECORD_BYTES + 1  # the header alone: the data is never there
    with pytest.raises(ShardError, match="over the 67108864-byte cap for record members"):
        _read(ti.tobuf(tarfile.GNU_FORMAT) + b"\0" * 4096)
    with pytest.raises(UnsafeShard, match="sparse"):
        _read(_tar(_sparse_member("s0.json", 2)))


def test_sparse_bomb_in_a_built_source_verify_show_and_trainer(built, tmp_path):
    folder = _copy(built, tmp_path / "bomb")
    good = _samples(folder / "train-000000.tar")
    bomb = _tar(*(_member(f"{good[0][0]}.{f}", d) for f, d in sorted(good[0][1].items())),
                _sparse_member(f"{good[1][0]}.json", 10 * GiB))
    _swap_bytes(folder, "train-000000.tar", bomb)

    def run_all():
        rep = verify(folder)
        assert any("declares 10737418240 bytes" in p and "train-000000.tar" in p and ".json'" in p
                   for p in rep.problems), rep.problems
        notes: list[str] = []
        assert show(folder, tmp_path / "grid.png", n=16, note=notes.append) == 9 - 3 + 1
        assert any("10737418240" in m for m in notes), notes
        tar = str(folder / "train-000000.tar")
        spec = {"name": "vqa_rad", "weight": 1.0, "shards": [tar], "stride": None, "excluded": [],
                "sha256": {tar: reader.file_sha256(tar)}}  # the bomb is what the manifest lists
        assert [s["__key__"] for s in train_data.iter_source(spec)] == [good[0][0]]
        with pytest.raises(ShardError, match="declares 10737418240 bytes"):
            list(train_data.iter_source({**spec, "strict": True}))

    assert _small_peak(run_all) < 64 << 20


def _index(path: Path, rows: int) -> Path:
    t = pa.table({"key": [f"s{i}" for i in range(rows)], "shard": ["train-000000.tar"] * rows,
                  "split": ["train"] * rows, "prompt": [f"{i}" + "x" * 1000 for i in range(rows)]})
    pq.write_table(t, path, compression="zstd")
    return path


def test_index_file_caps(tmp_path, monkeypatch):
    idx = _index(tmp_path / "train-000000.index.parquet", 2000)
    assert indices.read_index(idx, ["key", "split"]).height == 2000
    monkeypatch.setattr(reader, "MAX_INDEX_UNCOMPRESSED", 1 << 20)  # declares ~2 MB once decompressed
    with pytest.raises(mixer.MixError, match="index declares .* uncompressed bytes"):
        indices.read_index(idx, ["key", "split"])
    monkeypatch.setattr(reader, "MAX_INDEX_BYTES", idx.stat().st_size - 1)
    with pytest.raises(mixer.MixError, match=r"train-000000.index.parquet: index file of \d+ bytes, over"):
        indices.read_index(idx, ["key", "split"])


def test_index_caps_in_verify_and_stats(built, tmp_path, monkeypatch):
    folder = _copy(built, tmp_path / "idx")
    stage = write_stage(tmp_path / "s.json", 2, "sft", [source_entry(folder, 1.0, ("train",))], {})
    monkeypatch.setattr(reader, "MAX_INDEX_BYTES", 100)
    assert any("index.parquet: index file of" in p for p in verify(folder).problems)
    with pytest.raises(StageManifestError, match="over the 100-byte cap"):
        stats_report.collect(stage)


# ---- class 2: deep JSON, records of the wrong shape, PNG bombs -----------------------------------------

@pytest.mark.parametrize("body", [b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000])
def test_deep_json_is_a_shard_error(body):
    with pytest.raises(ShardError, match="s0.json'.*nested too deeply"):
        _read(_tar_of({"s0.json": body}))


@pytest.mark.parametrize("body", [b"[1, 2]", b'"text"', b"42", b"null"])
def test_record_must_be_an_object(body):
    with pytest.raises(ShardError, match="not an object"):
        _read(_tar_of({"s0.json": body}))


def test_show_skips_hostile_samples_with_a_note(built, tmp_path):
    folder = _copy(built, tmp_path / "show")
    (key, good), *_ = _samples(folder / "train-000000.tar")
    rec = json.loads(good["json"])
    im = rec["images"][0]
    member = im["member"]  # the bombs are PNG bytes under the record's member name (PIL reads content)
    no_list = {**rec, "images": "0.png"}
    bombs = {"k1": _png(20_000, 20_000),  # over PIL's own bomb limit: DecompressionBombError on open
             "k2": _png(9_000, 9_000),  # 81 M pixels: under PIL's limit, over MAX_PIXELS
             "k3": _png(im["width"] + 1, im["height"])}  # not the record's size
    samples = [("k0", {"json": json.dumps(no_list).encode(), member: good[member]}),
               ("k4", {"json": json.dumps({**rec, "objects": "x"}).encode(), member: good[member]}),
               *((k, {"json": good["json"], member: b}) for k, b in bombs.items()),
               ("k5", {"json": good["json"], member: good[member][:400]}),  # header fine, body truncated
               ("k6", {"json": json.dumps({**rec, "images": [{**im, "member": []}]}).encode()}),
               (key, good)]
    _replace_shard(folder, "train-000000.tar", samples)
    notes: list[str] = []
    assert show(folder, tmp_path / "g.png", n=4, note=notes.append) == 4
    joined = "\n".join(notes)
    assert "k0: images: must be a list" in joined and "k4: objects" in joined
    assert f"k1: {member}: not a readable image" in joined and f"k2: {member}: declares 9000x9000" in joined
    assert f"k3: {member}: is {im['width'] + 1}x{im['height']}" in joined and "k5: does not draw" in joined
    assert "k6: images[0].member: must be" in joined  # a list as member name: a schema error, not a TypeError
    # a record that is not an object, or deep JSON, stops that shard with a note; show goes on
    _swap_bytes(folder, "train-000001.tar", _tar_of({"a.json": b"[1]"}))
    _swap_bytes(folder, "train-000002.tar", _tar_of({"b.json": b"[" * 100_000}))
    notes.clear()
    assert show(folder, tmp_path / "g.png", n=16, note=notes.append) == 3  # key + test-000000's 2
    assert sum("the rest of the shard" in m for m in notes) == 2


def test_show_cli_one_line_when_nothing_drawable(built, tmp_path):
    from typer.testing import CliRunner

    from medmo_data.cli import app

    folder = _copy(built, tmp_path / "none")
    man = json.loads((folder / "manifest.json").read_text())
    for sh in man["shards"]:
        _swap_bytes(folder, sh["path"], _tar_of({"a.json": b"[" * 100_000}))
    res = CliRunner().invoke(app, ["show", str(folder), "--out", str(tmp_path / "g.png")])
    assert res.exit_code == 1 and "no samples to show" in res.output and "Traceback" not in res.output


def test_verify_checks_image_headers_before_decoding(built, tmp_path):
    folder = _copy(built, tmp_path / "vbomb")
    (key, good), *rest = _samples(folder / "train-000000.tar")
    member = json.loads(good["json"])["images"][0]["member"]
    (k1, m1), *rest = rest
    rec1 = json.loads(m1["json"])
    unhashable = json.dumps({**rec1, "images": [{**rec1["images"][0], "member": {}}]}).encode()
    _replace_shard(folder, "train-000000.tar", [(key, {**good, member: _png(9_000, 9_000)}),
                                                (k1, {**m1, "json": unhashable}), *rest])
    probs = verify(folder).problems
    assert any(f"{key}: {member}: declares 9000x9000 pixels" in p for p in probs), probs
    assert any(f"{k1}: images[0].member: must be" in p for p in probs), probs


def test_trainer_skips_hostile_samples_unless_strict(built, tmp_path):
    folder = _copy(built, tmp_path / "tsamples")
    samples = _samples(folder / "train-000000.tar")
    (k0, m0), (k1, m1), (k2, m2) = samples
    member = json.loads(m0["json"])["images"][0]["member"]
    rec1 = json.loads(m1["json"])
    not_a_list = json.dumps({**rec1, "images": {}}).encode()
    _replace_shard(folder, "train-000000.tar", [(k0, {**m0, member: _png(20_000, 20_000)}),
                                                (k1, {**m1, "json": not_a_list}), (k2, m2)])
    tar = str(folder / "train-000000.tar")
    spec = {"name": "vqa_rad", "weight": 1.0, "shards": [tar], "stride": None, "excluded": []}
    assert [s["__key__"] for s in train_data.iter_source(spec)] == [k2]
    with pytest.raises(ShardError, match=f"{k0}: {member}: not a readable image"):
        list(train_data.iter_source({**spec, "strict": True, "sha256": {tar: reader.file_sha256(tar)}}))


# ---- class 3: member names are whitelisted (every extension is checked) --------------------------------

CODE_NAMES = ["s0.pyd.gz", "s0.pickle.bz2", "s0.pkl.zst", "s0.npy.gz", "s0.PTH.xz", "s0.0.pt.png"]
OTHER_NAMES = ["s0.txt", "s0.0.gif", "s0.json.gz", "s0.00.png", "s0.png", "sub/s0.json", "S0.json",
               "s 0.json", "s0"]


@pytest.mark.parametrize("name", CODE_NAMES)
def test_code_member_under_any_extension_refused(name):
    with pytest.raises(UnsafeShard, match="could run code"):
        _read(_tar_of({"s0.json": b"{}", name: b"\x80\x04K\x01."}))


@pytest.mark.parametrize("name", OTHER_NAMES)
def test_only_whitelisted_members(name):
    with pytest.raises(UnsafeShard, match=name.replace(".", r"\.")):
        _read(_tar_of({name: b"{}"}))


def test_whitelisted_members_read():
    got = _read(_tar_of({"s0.json": b"{}", "s0.0.png": b"p", "s0.1.jpg": b"j", "s1.json": b'{"a": 1}'}))
    assert got == [{"__key__": "s0", "json": {}, "0.png": b"p", "1.jpg": b"j"},
                   {"__key__": "s1", "json": {"a": 1}}]


# ---- class 4: tar keys agree with the index; the trainer checks the manifest's sha256 ------------------

def _keys_case(samples, how):
    (k0, m0), (k1, m1), (k2, m2) = samples
    return {"dup": [(k0, m0), (k1, m1), (k0, m2)],  # s0, s1, s0 (index: s0, s1, s2)
            "swapped": [(k1, m1), (k0, m0), (k2, m2)],
            "renamed": [(k0, m0), (k1, m1), ("other-key", m2)],
            "missing": [(k0, m0), (k1, m1)]}[how]


@pytest.mark.parametrize("how", ["dup", "swapped", "renamed", "missing"])
def test_verify_compares_tar_keys_with_the_index(built, tmp_path, how):
    folder = _copy(built, tmp_path / how)
    assert verify(folder).ok
    samples = _keys_case(_samples(folder / "train-000000.tar"), how)
    _replace_shard(folder, "train-000000.tar", samples)
    if how == "missing":  # make every count agree too: only the keys can tell
        man = json.loads((folder / "manifest.json").read_text())
        next(sh for sh in man["shards"] if sh["path"] == "train-000000.tar")["samples"] -= 1
        man["counts"]["written"] -= 1
        (folder / "manifest.json").write_text(json.dumps(man))
    probs = verify(folder).problems
    assert any("train-000000.tar: keys disagree with train-000000.index.parquet" in p for p in probs), probs


@pytest.mark.parametrize("entry", ["path", "index"])
def test_manifest_paths_out_of_the_folder_are_refused(built, tmp_path, entry):
    folder = _copy(built, tmp_path / "esc" / "vqa_rad")
    outside = _copy(built, tmp_path / "esc" / "elsewhere")
    man = json.loads((folder / "manifest.json").read_text())
    sh = next(sh for sh in man["shards"] if sh["path"] == "train-000000.tar")
    sh[entry] = f"../elsewhere/{sh[entry]}"  # a valid file, same bytes: only its path is wrong
    (folder / "manifest.json").write_text(json.dumps(man))
    assert (outside / sh[entry].split("/")[-1]).exists()
    probs = verify(folder).problems
    assert any(f"lists '../elsewhere/{sh[entry].split('/')[-1]}': not a file name" in p for p in probs), probs
    if entry == "path":
        notes: list[str] = []
        assert show(folder, tmp_path / "g.png", n=16, note=notes.append) == 9 - 3
        assert any("../elsewhere/train-000000.tar" in m for m in notes), notes


def test_reader_refuses_a_key_seen_earlier():
    with pytest.raises(ShardError, match="key 's0' appears twice"):
        _read(_tar_of({"s0.json": b"{}", "s1.json": b"{}", "s0.0.png": b"p"}))


def test_strict_trainer_detects_a_shard_changed_after_mix(built, tmp_path):
    folder = _copy(built, tmp_path / "changed")
    stage = write_stage(tmp_path / "s.json", 2, "sft", [source_entry(folder, 1.0, ("train",))], {})
    samples = _samples(folder / "train-000000.tar")
    key, members = samples[0]
    rec = json.loads(members["json"])
    rec["messages"][-1]["content"][0]["text"] = "changed after mix"
    changed = (key, {**members, "json": json.dumps(rec).encode()})
    _replace_shard(folder, "train-000000.tar", [changed, *samples[1:]])
    assert verify(folder).ok  # a well-formed shard: only the stage manifest's hash tells
    (spec,) = train_data.make_slots(load_stage_manifest(stage), 1, strict=True)[0]["sources"]
    train_data.HASHED_SHARDS.clear()
    with pytest.raises(ShardError, match=r"train-000000.tar: sha256 .* differs from the manifest"):
        list(train_data.iter_source(spec))
    assert len(list(train_data.iter_source({**spec, "strict": False}))) == 7  # default: trusts the bytes
    train_data.HASHED_SHARDS.clear()
    _replace_shard(folder, "train-000000.tar", samples)  # the original bytes again: strict reads it
    assert len(list(train_data.iter_source(spec))) == 7
    assert str(folder / "train-000000.tar") in train_data.HASHED_SHARDS
