"""A file several records name is normalized once per shard task (build/image_memo.py): the shards are
byte-identical to a build that decodes every record's image, a memo entry is only ever used for the same
bytes under the same options, and a bad file is rejected every time it is named."""

from __future__ import annotations

import json

import numpy as np
import pytest

from medmo_data.build import normalize as normalize_mod
from medmo_data.build import shard as shard_mod
from medmo_data.build.distributor import BuildOptions, build
from medmo_data.build.image_memo import ImageMemo, memoizable, source_options
from medmo_data.build.manifest import load
from medmo_data.build.normalize import NormalizeOptions
from medmo_data.recipe import ImageSource, get_recipe
from tests.fixtures._images import grey, write_jpeg, write_png


def _folder(root):
    """VQA lines on shared files (three questions on a.jpg, two on b.jpg, one on c.png), a resized large PNG
    asked three times with boxes, and a truncated JPEG named by two lines."""
    (root / "img").mkdir(parents=True)
    write_jpeg(root / "img" / "a.jpg", grey(96, 80, seed=1))
    write_jpeg(root / "img" / "b.jpg", grey(96, 80, seed=2))
    write_png(root / "img" / "c.png", grey(64, 64, seed=3))
    write_png(root / "img" / "big.png", grey(300, 200, seed=4, boxes=[(40, 30, 120, 90)]))
    (root / "img" / "bad.jpg").write_bytes((root / "img" / "a.jpg").read_bytes()[:200])
    lines = [("q1", "a.jpg"), ("q2", "b.jpg"), ("q3", "a.jpg"), ("q4", "b.jpg"), ("q5", "c.png"),
             ("q6", "bad.jpg"), ("q7", "bad.jpg"), ("q8", "a.jpg")]
    with open(root / "annotations.jsonl", "w") as f:
        for rid, name in lines:
            f.write(json.dumps({"id": rid, "images": [f"img/{name}"], "split": "train", "task": "vqa",
                                "modality": "ct", "question": f"Question {rid}?", "answer": "yes"}) + "\n")
        for rid in ("g1", "g2", "g3"):
            f.write(json.dumps({"id": rid, "images": ["img/big.png"], "split": "train", "task": "grounding",
                                "modality": "ct", "boxes": [{"label": "mass", "bbox": [40, 30, 120, 90]}]}) + "\n")
    return root


def _build(raw, out, monkeypatch, memo_bytes):
    decodes = []
    real = normalize_mod.decode

    def counting(src, *a, **k):
        decodes.append(src.path.rsplit("/", 1)[-1])
        return real(src, *a, **k)

    monkeypatch.setattr(normalize_mod, "decode", counting)
    monkeypatch.setattr(shard_mod, "ImageMemo", lambda: ImageMemo(memo_bytes))
    opts = BuildOptions(output=out, normalize=NormalizeOptions(max_side=150), allow_empty=False,
                        max_reject_rate=0.9)
    build(get_recipe("folder"), raw, opts)
    return sorted(decodes)


def test_shared_files_decode_once_and_shards_are_byte_identical(tmp_path, monkeypatch):
    raw = _folder(tmp_path / "raw")
    without = _build(raw, tmp_path / "plain", monkeypatch, 0)
    with_memo = _build(raw, tmp_path / "memo", monkeypatch, 1 << 30)
    assert without == ["a.jpg"] * 3 + ["b.jpg"] * 2 + ["bad.jpg"] * 2 + ["big.png"] * 3 + ["c.png"]
    # A file is kept from its second time on, and used from its third; bad.jpg failed, so it is decoded
    # (and rejected) every time.
    assert with_memo == ["a.jpg"] * 2 + ["b.jpg"] * 2 + ["bad.jpg"] * 2 + ["big.png"] * 2 + ["c.png"]
    plain, memo = load(tmp_path / "plain" / "folder"), load(tmp_path / "memo" / "folder")
    assert memo["counts"] == plain["counts"] == {"read": 11, "written": 9, "rejected": 2}
    assert memo["rejects_by_reason"] == {"corrupt_image": 2}
    assert [s["sha256"] for s in memo["shards"]] == [s["sha256"] for s in plain["shards"]]
    for p in (tmp_path / "plain" / "folder").glob("*.parquet"):
        assert (tmp_path / "memo" / "folder" / p.name).read_bytes() == p.read_bytes()


def test_an_entry_is_used_only_for_the_same_bytes(tmp_path):
    """Even when two files' keys collide, the bytes are compared: each gets its own result."""
    memo = ImageMemo()
    memo.key = lambda data, options: ("collision",)  # type: ignore[method-assign]
    opts = NormalizeOptions()
    out = []
    for seed in (1, 1, 2, 1):
        p = write_png(tmp_path / f"{seed}-{len(out)}.png", grey(40, 30, seed=seed))
        out.append(normalize_mod.normalize_image(ImageSource(path=str(p)), "png", opts, memo))
    assert out[0] == out[1] == out[3] and out[2].fingerprint["hash"] != out[0].fingerprint["hash"]
    assert memo.hits == 0  # each lookup found another file's entry (or none) under the colliding key


def test_same_bytes_under_other_options_are_not_shared(tmp_path):
    memo, opts = ImageMemo(), NormalizeOptions()
    memo.seen = _AlwaysSeen()  # keep every result from the first time
    rgb = np.stack([grey(40, 30, seed=5)] * 3, axis=-1)
    rgb[..., 0] = 255 - rgb[..., 0]
    p = write_png(tmp_path / "x.png", rgb)
    as_l = normalize_mod.normalize_image(ImageSource(path=str(p), mode="L"), "png", opts, memo)
    as_rgb = normalize_mod.normalize_image(ImageSource(path=str(p)), "png", opts, memo)
    small = normalize_mod.normalize_image(ImageSource(path=str(p)), "png", NormalizeOptions(max_side=20), memo)
    as_jpg = normalize_mod.normalize_image(ImageSource(path=str(p)), "jpg", opts, memo)
    assert len({as_l.data, as_rgb.data, small.data, as_jpg.data}) == 4 and memo.hits == 0
    assert normalize_mod.normalize_image(ImageSource(path=str(p), mode="L"), "png", opts, memo) == as_l
    assert memo.hits == 1


class _AlwaysSeen(set):
    def __contains__(self, key):
        return True


@pytest.mark.parametrize(("path", "key"), [("a/b.nii.gz", None), ("a/b.NII", None), ("a/b.dcm", "dcm"),
                                           ("a/b.jpg", "jpg"), ("a/b", "")])
def test_nifti_is_never_read_whole_and_the_suffix_is_part_of_the_key(path, key):
    src = ImageSource(path=path)
    assert (source_options(src)[1] if memoizable(src) else None) == key
    assert not memoizable(ImageSource(array=np.zeros((2, 2), np.uint8)))
    assert not memoizable(ImageSource(path="a/b.gz", kind="nifti"))


def test_bad_options_keep_their_own_reject_and_an_unhashable_one_skips_the_memo(tmp_path):
    from medmo_data.pixels.transform import DecodeError

    p = write_png(tmp_path / "x.png", grey(40, 30, seed=1))
    memo = ImageMemo()
    with pytest.raises(DecodeError) as exc:  # checked before any key is made, as decode() checks it
        normalize_mod.normalize_image(ImageSource(path=str(p), value_offset=[1]), "png", NormalizeOptions(), memo)
    assert exc.value.reason == "bad_value_offset"
    assert memo.key(b"x", ({"unhashable": 1}, "png", NormalizeOptions())) is None
    assert memo.key(b"x", (("raster",), "png", NormalizeOptions())) is not None


def test_memory_is_bounded_oldest_first():
    from medmo_data.build.image_memo import NormalizedImage

    memo = ImageMemo(max_bytes=250)
    memo.seen = _AlwaysSeen()
    for i in range(5):
        data = bytes([i]) * 100
        memo.put(("k", i), data, NormalizedImage(data, "jpg", 1, 1, 1, 1, {}, (1.0, 1.0), {}))
    assert list(k[1] for k in memo.entries) == [3, 4] and memo.held == 200
    assert memo.get(("k", 4), bytes([4]) * 100) is not None and memo.get(("k", 0), bytes([0]) * 100) is None
    memo.put(("big",), bytes(300), NormalizedImage(bytes(300), "png", 1, 1, 1, 1, {}, (1.0, 1.0), {}))
    assert ("big",) not in memo.entries and memo.held == 200  # larger than the whole budget: not kept


def test_a_file_met_once_is_noted_not_kept(tmp_path):
    """A source whose images all differ holds none of them: the first time only the key is noted."""
    memo, opts = ImageMemo(), NormalizeOptions()
    for seed in range(4):
        p = write_jpeg(tmp_path / f"{seed}.jpg", grey(40, 30, seed=seed))
        normalize_mod.normalize_image(ImageSource(path=str(p)), "jpg", opts, memo)
    assert len(memo.seen) == 4 and not memo.entries and memo.held == 0


def test_records_never_share_a_nested_derivation(tmp_path):
    p = write_png(tmp_path / "big.png", grey(300, 200, seed=4))
    done = normalize_mod.normalize_image(ImageSource(path=str(p)), "png", NormalizeOptions(max_side=150), None)
    a, b = done.meta(0), done.meta(1)
    assert a["derivation"] == b["derivation"] and a["derivation"]["resized"] == {
        "from": [300, 200], "to": [150, 100], "filter": "lanczos"}
    assert a["derivation"]["resized"] is not b["derivation"]["resized"] and (a["member"], b["member"]) == (
        "0.png", "1.png")
