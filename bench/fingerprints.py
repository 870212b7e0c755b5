"""What the `mix` fingerprints and the index row cost per JPEG pass-through sample, beside the codec work
the floor does (read + full decode + tar): CPU milliseconds per sample of each piece, on 512^2 JPEGs.

Pieces, for both fingerprint versions (docs/mixing.md#fingerprints): the exact hash (version 1 SHA-256,
version 2 xxh3-128 of the pixels) and the perceptual prints (dHash + 16x16 thumbnail: version 1 by BOX
resizes of the full image, version 2 from one integer box reduction), a draft (DCT-scaled) decode that a
reduced-size dHash would need on top of the validating full decode (not used: it costs ~0.7 of a full
decode), `_index_row` and the index Parquet per row, and a strided print (dHash and thumbnail from every k-th
pixel instead of the box reduction; not used: `python -m scripts.near_dup_rate --print strided` shows the
copies it misses). Also the decoded pixels as an array: `np.asarray`
(a `tobytes` copy) against the view of Pillow's buffer the decoder takes. Also the window of a 512^2 int16
CT slice: the float64 formula on the slice (modality LUT copy + window copy, as before issue 19) against
the per-series lookup table the decoders use now (same bytes, checked).
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image

from . import gen


def _cpu_ms(fn: Callable[[], Any], n: int, repeats: int = 3) -> float:
    """CPU ms per call: the least of `repeats` runs of `n` calls (one run moved by up to ~40 % on the
    development VM, e.g. version 2 printed 0.14-0.23 ms in four runs of one session)."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        t = time.process_time()
        for _ in range(n):
            fn()
        best = min(best, time.process_time() - t)
    return 1000 * best / n


def run(n: int = 300) -> dict[str, Any]:
    from medmo_data.build.shard import _index_row
    from medmo_data.mix.fingerprint import dhash64, image_prints, image_prints_v1, pixel_hash, pixel_sha256
    from medmo_data.pixels.decode import pixel_view
    from medmo_data.shards.writer import index_parquet_bytes
    from scripts.near_dup_rate import strided_prints

    buf = io.BytesIO()
    Image.fromarray(gen.grey8(512, 3)).save(buf, "JPEG", quality=90)
    data = buf.getvalue()

    def full() -> Image.Image:
        im = Image.open(io.BytesIO(data))
        im.load()
        return im

    def draft() -> Image.Image:
        im = Image.open(io.BytesIO(data))
        im.draft("L", (64, 64))
        im.load()
        return im

    img = full()
    px = np.asarray(img)
    rec = {"id": "x", "split": "train", "task": "vqa", "modality": "ct", "license": "CC0", "access": "open",
           "images": [{"width": 512, "height": 512}], "objects": [], "meta": {"line": "1"},
           "messages": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Is there a nodule?"}]},
                        {"role": "assistant", "content": [{"type": "text", "text": "Yes"}]}]}
    dhash, thumb = image_prints(img)
    if not np.array_equal(pixel_view(img), px) or dhash != dhash64(img):
        raise AssertionError("pixel view or prints differ from the copy / dhash64")
    fps = [{"hash": pixel_hash(px), "dhash": dhash, "thumb": thumb}]
    rows = [_index_row(f"k{i}", "s.tar", rec, fps) for i in range(n)]
    out = {"samples": n, "decode_ms": _cpu_ms(full, n), "draft_decode_ms": _cpu_ms(draft, n),
           "pixel_sha256_ms": _cpu_ms(lambda: pixel_sha256(px), n), "pixel_hash_ms": _cpu_ms(lambda: pixel_hash(px), n),
           "dhash64_ms": _cpu_ms(lambda: dhash64(img), n), "prints_v1_ms": _cpu_ms(lambda: image_prints_v1(img), n),
           "prints_ms": _cpu_ms(lambda: image_prints(img), n),
           "prints_strided_ms": _cpu_ms(lambda: strided_prints(img), n),
           "pixels_asarray_ms": _cpu_ms(lambda: np.asarray(img), n), "pixels_view_ms": _cpu_ms(lambda: pixel_view(img), n),
           "index_row_ms": _cpu_ms(lambda: _index_row("k", "s.tar", rec, fps), n),
           "index_parquet_ms_per_row": _cpu_ms(lambda: index_parquet_bytes(rows), 5) / n}
    out["fingerprints_v1_ms"] = out["pixel_sha256_ms"] + out["prints_v1_ms"]
    out["fingerprints_ms"] = out["pixel_hash_ms"] + out["prints_ms"]
    out["fingerprints_vs_decode"] = out["fingerprints_ms"] / out["decode_ms"]
    out.update(_window_costs(n))
    return out


def _window_costs(n: int) -> dict[str, float]:
    from medmo_data.pixels.transform import apply_window, window_table

    stored = (gen.phantom_hu(512, 5).astype(np.int32) + 1024).astype(np.int16)
    lo, hi = -160.0, 240.0

    def modality(s: np.ndarray) -> np.ndarray:  # what pydicom's apply_modality_lut does for slope 1, -1024
        return s.astype(np.float64) * 1.0 + -1024.0

    formula = lambda: apply_window(modality(stored), lo, hi)  # noqa: E731
    table = lambda: window_table(stored, lo, hi, modality, False, ("bench", 1.0, -1024.0))  # noqa: E731
    if not np.array_equal(formula(), table()):
        raise AssertionError("window table differs from the formula")
    return {"window_formula_ms": _cpu_ms(formula, n), "window_table_ms": _cpu_ms(table, n)}
