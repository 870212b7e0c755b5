"""Cheap fingerprints written into each shard's index so `mix` never re-reads image bytes."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from typing import Any

import numpy as np
import xxhash
from PIL import Image

_WS = re.compile(r"\s+")
_PUNCT = re.compile(r"[^\w\s]")


# Fingerprints carry a version: an index records the one it was written with and `mix` compares only
# indices of one version (docs/mixing.md#fingerprints). 1: SHA-256 of the pixels, dHash and thumbnail by a
# direct BOX resize of the full image. 2 (issue 19): xxh3-128 of the pixels (same job: spotting identical
# pixels, not resisting an attacker), dHash and thumbnail from one shared integer box reduction; 128 px
# keep >= 8 reduced pixels per thumbnail pixel, so a half-size copy keeps its thumbnail
# (tests/test_decontam.py). All three: 0.14-0.23 against 0.57-0.80 CPU ms per 512^2 JPEG (`make bench`,
# four runs of 2026-12-01 02:06-02:47). Version 1 stays readable so indices built before keep their decontamination.
FINGERPRINT_VERSION = 2
HASH_COLUMN = {1: "image_sha256", 2: "image_hash"}  # the index column of the exact hash, per version
INDEX_VERSION_KEY = "medmo.fingerprint"  # index Parquet schema metadata: the version (absent: 1)
THUMB_SIDE = 16  # the near-match confirmation thumbnail: 16x16 grey, 256 bytes per image
Box = tuple[float, float, float, float]  # an image region (left, top, right, bottom) in pixels
REDUCED_SIDE = 128  # version 2: the shorter side is box-reduced to 128-255 px before the dHash and thumbnail


def pixel_hash(pixels: np.ndarray) -> str:
    """Version 2 exact hash of decoded pixels: xxh3-128 over dtype, shape and the pixel buffer, as hex."""
    h = xxhash.xxh3_128(f"{pixels.dtype.str}{pixels.shape}".encode())
    h.update(np.ascontiguousarray(pixels).data)  # the buffer itself: the bytes tobytes() copies
    return h.hexdigest()


def pixel_sha256(pixels: np.ndarray) -> str:
    """Version 1 exact hash of decoded pixels (shape included), independent of the file encoding."""
    h = hashlib.sha256(str(pixels.shape).encode())
    h.update(np.ascontiguousarray(pixels).data)
    return h.hexdigest()


def _grey(img: Image.Image) -> Image.Image:
    return img if img.mode == "L" else img.convert("L")  # convert would copy a grey image


# Version 2 works on Pillow's core image (`Image.im`): the same C reduce and resizes as `Image.reduce` /
# `Image.resize`, without their Python wrappers (a `load()`, checks and a new `Image` per call) and with
# `bytes(core)` (the sequence `get_flattened_data` reads) for `tobytes`' encoder set-up: 174-195 -> 127 us
# per 512^2 image (docs/scale.md), the same values (tests/test_fingerprints.py pins them).
Core = Any  # PIL's ImagingCore: no public type
_BOX = Image.Resampling.BOX


def _reduced(grey: Image.Image) -> tuple[Core, Box]:
    """Version 2: one integer box reduction (Pillow's `reduce`) to a shorter side of 128-255 px, and the box of
    the whole image in the reduced pixels (the last row and column hold partial blocks: as in Pillow's own
    `reducing_gap`, the resizes then read only the image's share of them, keeping the geometry)."""
    grey.load()
    core = grey.im
    w, h = core.size
    factor = min(w, h) // REDUCED_SIDE
    if factor < 2:
        return core, (0.0, 0.0, float(w), float(h))
    return core.reduce((factor, factor), (0, 0, w, h)), (0.0, 0.0, w / factor, h / factor)


def _box_resize(core: Core, size: tuple[int, int], box: Box) -> bytes:
    """Grey bytes of a BOX resize over `box`: the horizontal pass, then the vertical one, as two single-axis
    resizes. One resize call lets Pillow choose the order, and Pillow 13 runs the vertical pass first on
    images about twice as tall as wide (up to 12 it never did): +-1 grey level per cell, now and then a
    flipped dHash bit. Fixing the order keeps the values the same under every Pillow (~5 us more per resize)."""
    x0, y0, x1, y1 = box
    w, h = size
    rows = core.size[1]
    return bytes(core.resize((w, rows), _BOX, (x0, 0, x1, rows)).resize((w, h), _BOX, (0, y0, w, y1)))


def _dhash_bits(grid: bytes) -> int:
    """Signed 64-bit dHash of 9x8 grey bytes: left-right gradients, first bit most significant."""
    small = np.frombuffer(grid, np.uint8).reshape(8, 9)
    bits = (small[:, 1:] > small[:, :-1]).ravel()
    return int.from_bytes(np.packbits(bits).tobytes(), "big", signed=True)


def dhash64(img: Image.Image) -> int:
    """64-bit difference hash (grey 9x8, left-right gradients) as a signed int64 for Parquet."""
    core, box = _reduced(_grey(img))
    return _dhash_bits(_box_resize(core, (9, 8), box))


def thumb16(img: Image.Image) -> bytes:
    """16x16 grey BOX thumbnail, row-major bytes: the second, finer look that confirms a 64-bit dHash
    near match in decontamination (at 9x8 one modality's images look alike; docs/mixing.md)."""
    core, box = _reduced(_grey(img))
    return _box_resize(core, (THUMB_SIDE, THUMB_SIDE), box)


def image_prints(img: Image.Image) -> tuple[int, bytes]:
    """(dhash64, thumb16) from one grey conversion and one reduction: what the index stores per image."""
    core, box = _reduced(_grey(img))
    return _dhash_bits(_box_resize(core, (9, 8), box)), _box_resize(core, (THUMB_SIDE, THUMB_SIDE), box)


def image_prints_v1(img: Image.Image) -> tuple[int, bytes]:
    """Version 1 (dhash64, thumb16): one BOX resize call each of the full grey image (Pillow picks the pass
    order)."""
    grey = _grey(img)
    grid = grey.resize((9, 8), _BOX).tobytes()
    return _dhash_bits(grid), grey.resize((THUMB_SIDE, THUMB_SIDE), _BOX).tobytes()


def fingerprint(img: Image.Image, pixels: np.ndarray | None = None,
                version: int = FINGERPRINT_VERSION) -> tuple[str, int, bytes]:
    """(exact hash, dhash64, thumb16) of one image in `version`; `pixels`: the image's own uint8 array when
    the caller holds it (a view of the decoder's buffer, saves a copy)."""
    px = np.asarray(img) if pixels is None else pixels
    if version == 2:
        return pixel_hash(px), *image_prints(img)
    if version == 1:
        return pixel_sha256(px), *image_prints_v1(img)
    raise ValueError(f"unknown fingerprint version {version!r} (this medmo-data knows 1 and 2)")


def thumb_distance(a: bytes, b: bytes) -> float:
    """Mean absolute difference of two thumb16 values in grey levels (0-255)."""
    return float(np.abs(np.frombuffer(a, np.uint8).astype(np.int16) - np.frombuffer(b, np.uint8)).mean())


# ASCII byte -> its normalised byte: punctuation (the _PUNCT rule) and whitespace to a space, upper to lower
# case (derived from the rules, so it cannot drift from the general path).
_ASCII_TABLE = bytes(32 if _PUNCT.match(chr(i)) or chr(i).isspace() else ord(chr(i).lower()) if i < 128 else i
                     for i in range(256))


def normalize_text(text: str) -> str:
    """Lower-case, NFKC, punctuation to spaces, whitespace collapsed: the form n-gram matching uses.

    ASCII text (most prompts) takes an equal, ~7x cheaper path: NFKC leaves ASCII as it is; one bytes
    table lower-cases and turns the same characters into spaces (every whitespace too: the ASCII
    separators \\x1c-\\x1f are whitespace to `\\s`), and split/join collapses the runs and strips the ends."""
    if text.isascii():
        return b" ".join(text.encode("ascii").translate(_ASCII_TABLE).split()).decode("ascii")
    t = unicodedata.normalize("NFKC", text).lower()
    return _WS.sub(" ", _PUNCT.sub(" ", t)).strip()


def text_sha1(text: str) -> str:
    return hashlib.sha1(normalize_text(text).encode("utf-8")).hexdigest()
