"""Fingerprints keep their values (the mix index compares them across builds), cost no pixel copy, and
carry a version: `mix` compares indices of one version only (docs/mixing.md#fingerprints)."""

import hashlib
import json
import tracemalloc

import numpy as np
import pyarrow.parquet as pq
import pytest
import xxhash
from PIL import Image

from medmo_data.mix.fingerprint import (
    FINGERPRINT_VERSION,
    dhash64,
    fingerprint,
    image_prints,
    image_prints_v1,
    pixel_hash,
    pixel_sha256,
    thumb16,
    thumb_distance,
)
from medmo_data.mix.indices import index_version
from medmo_data.mix.mixer import MixOptions, mix
from medmo_data.mix.spec import MixError
from tests.mix_index import index_row, spec_file, write_source


def _no_copy(fn, px):
    tracemalloc.start()
    try:
        got = fn(px)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2**20, peak  # tobytes() would allocate the 3 MiB again
    return got


def test_pixel_hash_is_xxh3_128_of_dtype_shape_and_pixels_without_a_copy():
    px = np.random.default_rng(0).integers(0, 256, size=(1024, 1024, 3), dtype=np.uint8)  # 3 MiB
    want = xxhash.xxh3_128(b"|u1(1024, 1024, 3)" + px.tobytes()).hexdigest()
    assert _no_copy(pixel_hash, px) == want and len(want) == 32
    view = px[:, ::-1]  # non-contiguous: hashed in row-major order like tobytes()
    assert pixel_hash(view) == xxhash.xxh3_128(b"|u1(1024, 1024, 3)" + view.tobytes()).hexdigest()
    assert pixel_hash(px.reshape(2048, 512, 3)) != want  # same bytes, other shape: another image
    assert pixel_hash(np.arange(6, dtype=np.uint8)) == "90d31281a52233e0d2bc2d5ae372c1e6"  # pinned


def test_version_1_sha256_unchanged():
    px = np.random.default_rng(0).integers(0, 256, size=(1024, 1024, 3), dtype=np.uint8)
    want = hashlib.sha256(str(px.shape).encode() + px.tobytes()).hexdigest()
    assert _no_copy(pixel_sha256, px) == want


def test_dhash_value_pinned():
    ramp = np.tile(np.arange(64, dtype=np.uint8) * 4, (48, 1))  # brighter to the right: every bit 1
    assert dhash64(Image.fromarray(ramp)) == -1
    assert dhash64(Image.fromarray(ramp[:, ::-1].copy())) == 0
    big = np.tile(np.arange(1000, dtype=np.uint16) // 4, (700, 1)).astype(np.uint8)  # reduced by 5
    assert dhash64(Image.fromarray(big)) == -1 and image_prints_v1(Image.fromarray(big))[0] == -1


def test_version_2_prints_pinned_and_close_to_version_1():
    """Below 256 px nothing is reduced (version 2 = version 1); above, the reduction moves a thumbnail pixel
    by well under the 4.0 grey levels the near rule allows, and the values are pinned."""
    rng = np.random.default_rng(3)
    small = Image.fromarray(rng.integers(0, 256, (200, 240), dtype=np.uint8))
    assert image_prints(small) == image_prints_v1(small)
    yy, xx = np.mgrid[0:600, 0:800]
    smooth = ((np.sin(xx / 37) + np.cos(yy / 23)) * 60 + 128 + rng.normal(0, 6, (600, 800))).clip(0, 255)
    img = Image.fromarray(smooth.astype(np.uint8))
    (d2, t2), (d1, t1) = image_prints(img), image_prints_v1(img)
    assert np.abs(np.frombuffer(t2, np.uint8).astype(int) - np.frombuffer(t1, np.uint8)).mean() < 2.0  # 1.36
    assert bin((d1 ^ d2) & (2**64 - 1)).count("1") <= 2
    assert (d2, hashlib.sha1(t2).hexdigest()[:12]) == (7595718147998050665, "e016f8ee280c")
    assert image_prints(img) == (dhash64(img), thumb16(img))
    rgb = Image.fromarray(np.stack([smooth.astype(np.uint8)] * 3, axis=-1))
    assert image_prints(rgb) == image_prints(img)


@pytest.mark.parametrize("shape", [(1024, 512), (2048, 1024), (1000, 300), (512, 512), (600, 800), (40, 9)])
def test_version_2_prints_take_the_horizontal_pass_first_under_any_pillow(shape):
    """Pillow 13 runs a one-call BOX resize vertical-first on images about twice as tall as wide (+-1 grey
    level against Pillow 12): version 2 fixes the order, so its values are the two single-axis resizes."""
    h, w = shape
    rng = np.random.default_rng(h * w)
    yy, xx = np.mgrid[0:h, 0:w]
    px = ((np.sin(xx / 17) + np.cos(yy / 29)) * 60 + 128 + rng.normal(0, 20, (h, w))).clip(0, 255)
    img = Image.fromarray(px.astype(np.uint8))
    factor = min(w, h) // 128
    small = img.reduce(factor) if factor >= 2 else img
    box = (0.0, 0.0, w / factor, h / factor) if factor >= 2 else (0.0, 0.0, float(w), float(h))

    def horizontal_then_vertical(size):
        across = small.resize((size[0], small.height), Image.Resampling.BOX, box=(box[0], 0, box[2], small.height))
        return np.asarray(across.resize(size, Image.Resampling.BOX, box=(0, box[1], size[0], box[3])))

    grid, thumb = horizontal_then_vertical((9, 8)).astype(int), horizontal_then_vertical((16, 16))
    bits = "".join("1" if grid[r, c + 1] > grid[r, c] else "0" for r in range(8) for c in range(8))
    want = int(bits, 2) - (1 << 64 if bits[0] == "1" else 0)
    assert image_prints(img) == (want, thumb.tobytes())


def test_fingerprint_versions():
    img = Image.fromarray(np.full((300, 300), 9, np.uint8))
    assert fingerprint(img) == fingerprint(img, version=FINGERPRINT_VERSION)
    assert fingerprint(img, version=2)[0] == pixel_hash(np.asarray(img))
    assert fingerprint(img, version=1) == (pixel_sha256(np.asarray(img)), *image_prints_v1(img))
    with pytest.raises(ValueError, match="unknown fingerprint version 3"):
        fingerprint(img, version=3)


def _as_v1(path):
    """Rewrite one index as a version 1 index (written before issue 19): `image_sha256`, no version key."""
    t = pq.read_table(path)
    t = t.rename_columns(["image_sha256" if c == "image_hash" else c for c in t.column_names])
    pq.write_table(t.replace_schema_metadata(None), path)


def test_mix_refuses_indices_of_two_fingerprint_versions(tmp_path):
    data = tmp_path / "data"
    write_source(data, "roco", [index_row("a", sha="aa" * 16, dhash=5)])
    old = write_source(data, "pmc_oa", [index_row("b", sha="bb" * 32, dhash=6)])
    _as_v1(old / "train-000000.index.parquet")
    assert index_version(old / "train-000000.index.parquet") == 1
    assert index_version(data / "roco" / "train-000000.index.parquet") == FINGERPRINT_VERSION
    with pytest.raises(MixError, match=r"(?s)version 1: pmc_oa\n  version 2: roco\nrebuild"):
        mix(spec_file(tmp_path, ["roco", "pmc_oa"]), MixOptions(data=data, out=tmp_path / "m.json"))


def test_version_1_indices_still_decontaminate_against_benchmark_images(tmp_path):
    """Sources built before version 2 mix among themselves: the benchmark image is fingerprinted in
    version 1 so its copy in a version 1 index is still found (exact and near)."""
    a = np.random.default_rng(5).integers(0, 256, (300, 400), dtype=np.uint8)
    Image.fromarray(a).save(tmp_path / "t.png")
    (tmp_path / "b.jsonl").write_text(json.dumps({"id": "t1", "question": "What is shown?", "image": "t.png"}) + "\n")
    sha, dh, _ = fingerprint(Image.fromarray(a), version=1)
    data = tmp_path / "data"
    src = write_source(data, "roco", [index_row("copy", sha=sha, dhash=dh), index_row("other", sha="cc" * 32, dhash=1)])
    _as_v1(src / "train-000000.index.parquet")
    man, out = mix(spec_file(tmp_path, ["roco"]), MixOptions(data=data, out=tmp_path / "m.json",
                                                              benchmarks={"OmniMedVQA": tmp_path / "b.jsonl"}))
    rows = [json.loads(line) for line in out.with_name("m.excluded.jsonl").read_text().splitlines()]
    assert [(r["key"], r["rule"]) for r in rows] == [("copy", "image_exact")]


def test_an_unknown_or_malformed_version_is_a_clear_error(tmp_path):
    data = tmp_path / "data"
    src = write_source(data, "roco", [index_row("a", sha="aa" * 16, dhash=5)])
    path = src / "train-000000.index.parquet"
    for raw, what in ((b"3", "'3'"), (b"x1", "'x1'")):
        t = pq.read_table(path)
        pq.write_table(t.replace_schema_metadata({b"medmo.fingerprint": raw}), path)
        with pytest.raises(MixError, match=rf"train-000000.index.parquet: index metadata medmo.fingerprint={what} "
                                           r"is not a fingerprint version this medmo-data reads \(1, 2\)"):
            mix(spec_file(tmp_path, ["roco"]), MixOptions(data=data, out=tmp_path / "m.json"))


def test_strided_print_reads_only_its_grid_and_loses_a_copys_margin():
    """The diagnostic behind issue 19 item 3 (scripts/near_dup_rate --print strided): the strided print sees
    only the centre pixel of each k x k block, equals version 2 where version 2 does not reduce, and its
    thumbnail of a half-size copy drifts further than version 2's (what makes it miss copies)."""
    from scripts.near_dup_rate import copies, cxr_phantom, strided_prints

    rng = np.random.default_rng(0)
    a = cxr_phantom(rng)  # 512 x 512: k = 4, grid pixels at 2, 6, 10, ...
    base = strided_prints(Image.fromarray(a))
    off, on = a.copy(), a.copy()
    off[0:2, :] = 255 - off[0:2, :]  # rows 0-1 lie between the grid rows
    on[2, :] = 255 - on[2, :]
    assert strided_prints(Image.fromarray(off)) == base
    assert strided_prints(Image.fromarray(on))[1] != base[1]
    assert image_prints(Image.fromarray(off)) != image_prints(Image.fromarray(a))  # v2 reads every pixel
    small = a[:200, :200].copy()  # shorter side < 256: neither print reduces
    assert strided_prints(Image.fromarray(small)) == image_prints(Image.fromarray(small))
    half = copies(a)["resized 0.5x"]
    v2 = thumb_distance(image_prints(Image.fromarray(a))[1], image_prints(half)[1])
    strided = thumb_distance(base[1], strided_prints(half)[1])
    assert v2 < 0.3 < 0.8 < strided  # near_dup_rate's chest X-ray copies: 0.07-0.20 against 0.89-1.32
