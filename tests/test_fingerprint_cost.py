"""Fingerprints keep their values (the mix index compares them across builds) and cost no pixel copy."""

import hashlib
import tracemalloc

import numpy as np
from PIL import Image

from medmo_data.mix.fingerprint import dhash64, pixel_sha256


def test_pixel_sha256_same_value_without_a_copy():
    px = np.random.default_rng(0).integers(0, 256, size=(1024, 1024, 3), dtype=np.uint8)  # 3 MiB
    want = hashlib.sha256(str(px.shape).encode() + px.tobytes()).hexdigest()
    tracemalloc.start()
    try:
        got = pixel_sha256(px)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got == want
    assert peak < 2**20, peak  # tobytes() would allocate the 3 MiB again
    view = px[:, ::-1]  # non-contiguous: hashed in row-major order like tobytes()
    assert pixel_sha256(view) == hashlib.sha256(str(view.shape).encode() + view.tobytes()).hexdigest()


def test_dhash_value_pinned():
    ramp = np.tile(np.arange(64, dtype=np.uint8) * 4, (48, 1))  # brighter to the right: every bit 1
    assert dhash64(Image.fromarray(ramp)) == -1
    assert dhash64(Image.fromarray(ramp[:, ::-1].copy())) == 0
