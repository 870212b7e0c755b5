"""Cheap fingerprints written into each shard's index so `mix` never re-reads image bytes."""

from __future__ import annotations

import hashlib
import re
import unicodedata

import numpy as np
from PIL import Image

_WS = re.compile(r"\s+")
_PUNCT = re.compile(r"[^\w\s]")


def pixel_sha256(pixels: np.ndarray) -> str:
    """Exact hash of decoded pixels (shape included), independent of the file encoding."""
    h = hashlib.sha256(str(pixels.shape).encode())
    h.update(np.ascontiguousarray(pixels).data)  # the buffer itself: the bytes tobytes() copies
    return h.hexdigest()


def dhash64(img: Image.Image) -> int:
    """64-bit difference hash (grey 9x8, left-right gradients) as a signed int64 for Parquet."""
    small = np.asarray(img.convert("L").resize((9, 8), Image.Resampling.BOX), dtype=np.int16)
    bits = (small[:, 1:] > small[:, :-1]).ravel()  # 64 bits, first bit most significant
    return int.from_bytes(np.packbits(bits).tobytes(), "big", signed=True)


def normalize_text(text: str) -> str:
    """Lower-case, NFKC, punctuation to spaces, whitespace collapsed: the form n-gram matching uses."""
    t = unicodedata.normalize("NFKC", text).lower()
    return _WS.sub(" ", _PUNCT.sub(" ", t)).strip()


def text_sha1(text: str) -> str:
    return hashlib.sha1(normalize_text(text).encode("utf-8")).hexdigest()
