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


THUMB_SIDE = 16  # the near-match confirmation thumbnail: 16x16 grey, 256 bytes per image


def _dhash(grey: Image.Image) -> int:
    small = np.asarray(grey.resize((9, 8), Image.Resampling.BOX), dtype=np.int16)
    bits = (small[:, 1:] > small[:, :-1]).ravel()  # 64 bits, first bit most significant
    return int.from_bytes(np.packbits(bits).tobytes(), "big", signed=True)


def dhash64(img: Image.Image) -> int:
    """64-bit difference hash (grey 9x8, left-right gradients) as a signed int64 for Parquet."""
    return _dhash(img.convert("L"))


def thumb16(img: Image.Image) -> bytes:
    """16x16 grey BOX thumbnail, row-major bytes: the second, finer look that confirms a 64-bit dHash
    near match in decontamination (at 9x8 one modality's images look alike; docs/mixing.md)."""
    return img.convert("L").resize((THUMB_SIDE, THUMB_SIDE), Image.Resampling.BOX).tobytes()


def image_prints(img: Image.Image) -> tuple[int, bytes]:
    """(dhash64, thumb16) from one grey conversion (none for a grey image: convert would copy it): what
    the index stores per image."""
    grey = img if img.mode == "L" else img.convert("L")
    return _dhash(grey), grey.resize((THUMB_SIDE, THUMB_SIDE), Image.Resampling.BOX).tobytes()


def thumb_distance(a: bytes, b: bytes) -> float:
    """Mean absolute difference of two thumb16 values in grey levels (0-255)."""
    return float(np.abs(np.frombuffer(a, np.uint8).astype(np.int16) - np.frombuffer(b, np.uint8)).mean())


# ASCII characters the _PUNCT rule turns into spaces, as a str.translate table (derived from the rule).
_ASCII_PUNCT = {i: " " for i in range(128) if _PUNCT.match(chr(i))}


def normalize_text(text: str) -> str:
    """Lower-case, NFKC, punctuation to spaces, whitespace collapsed: the form n-gram matching uses.

    ASCII text (most prompts) takes an equal, ~4x cheaper path: NFKC leaves ASCII as it is, the same
    characters become spaces through a table, and split/join collapses the same whitespace as `\\s+`
    (both use Python's Unicode whitespace) and strips the ends."""
    if text.isascii():
        return " ".join(text.lower().translate(_ASCII_PUNCT).split())
    t = unicodedata.normalize("NFKC", text).lower()
    return _WS.sub(" ", _PUNCT.sub(" ", t)).strip()


def text_sha1(text: str) -> str:
    return hashlib.sha1(normalize_text(text).encode("utf-8")).hexdigest()
