"""Release zips read in place decompress no member past the cap (a zip bomb is refused, not inflated)."""

from __future__ import annotations

import zipfile

import pytest

from medmo_data.formats import archive
from medmo_data.formats.archive import ReleaseTree
from medmo_data.pixels import limits
from medmo_data.pixels.decode import DecodeError, decode
from medmo_data.recipe import SourceError


def _release(tmp_path, size: int):
    with zipfile.ZipFile(tmp_path / "imgs.zip", "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("imgs/big.png", b"\0" * size)  # deflates to a few bytes: a small bomb
        z.writestr("imgs/meta.json", b"[" + b"0," * (size // 2) + b"0]")
    return ReleaseTree(tmp_path, "imgs")


def test_member_cap_equals_the_decoders_file_cap():
    assert archive.MAX_MEMBER_BYTES == limits.MAX_FILE_BYTES


def test_zip_bomb_member_is_read_only_to_the_cap(tmp_path, monkeypatch):
    monkeypatch.setattr(archive, "MAX_MEMBER_BYTES", 1000)
    monkeypatch.setattr("medmo_data.pixels.decode.MAX_FILE_BYTES", 1000)
    tree = _release(tmp_path, 50_000)
    src = tree.image("big.png")
    assert len(src.data) == 1001  # decompression stopped one byte over the cap
    with pytest.raises(DecodeError) as e:
        decode(src)
    assert e.value.reason == "file_too_large"
    with pytest.raises(SourceError, match="imgs.zip:imgs/meta.json: over 1000 bytes"):
        tree.read_bytes("meta.json")


def test_members_under_the_cap_read_whole(tmp_path):
    tree = _release(tmp_path, 5000)
    assert tree.image("big.png").data == b"\0" * 5000
    assert tree.read_bytes("meta.json").startswith(b"[0,0,")
