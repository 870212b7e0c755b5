"""The `folder` recipe's image paths: symlinks followed, nothing outside the input folder, JPEGs sniffed
without blocking. The resolver caches each annotated folder's real path, so these pin that a cached folder
never lets a leaf symlink or a `..` name escape."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from medmo_data.recipes.folder import _is_jpeg, _Resolver

JPEG = b"\xff\xd8\xff\xe0" + bytes(16)


@pytest.fixture()
def tree(tmp_path: Path) -> tuple[Path, Path]:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "img").mkdir(parents=True)
    outside.mkdir()
    (root / "img" / "a.jpg").write_bytes(JPEG)
    (outside / "secret.jpg").write_bytes(JPEG)
    (root / "img" / "leak.jpg").symlink_to(outside / "secret.jpg")  # a leaf link out
    (root / "img" / "alias.jpg").symlink_to(root / "img" / "a.jpg")  # a leaf link that stays in
    (root / "linked_out").symlink_to(outside)  # a folder link out
    (root / "linked_in").symlink_to(root / "img")  # a folder link that stays in
    return root.resolve(), outside.resolve()


def test_paths_inside_resolve_to_real_files(tree: tuple[Path, Path]) -> None:
    root, _ = tree
    resolve = _Resolver(root)
    real = (str(root / "img" / "a.jpg"), True)
    assert resolve("img/a.jpg") == real
    assert resolve("img/alias.jpg") == real  # leaf symlink followed
    assert resolve("linked_in/a.jpg") == real  # folder symlink followed
    assert resolve("img/../img/a.jpg") == real
    assert resolve("img/a.jpg") == real  # second lookup from the folder cache
    os.mkfifo(root / "img" / "pipe.jpg")
    (root / "img" / "to_pipe.jpg").symlink_to(root / "img" / "pipe.jpg")
    assert resolve("img/pipe.jpg") == (str(root / "img" / "pipe.jpg"), False)  # never opened to sniff
    assert resolve("img/to_pipe.jpg") == (str(root / "img" / "pipe.jpg"), False)
    assert resolve("img") == (str(root / "img"), False)  # a folder
    assert resolve("img/missing.jpg") == (str(root / "img" / "missing.jpg"), False)


@pytest.mark.parametrize("rel", ["img/leak.jpg", "linked_out/secret.jpg", "../outside/secret.jpg",
                                 "img/../../outside/secret.jpg", "img/..", ".", "img/../"])
def test_paths_leaving_the_folder_are_refused(tree: tuple[Path, Path], rel: str) -> None:
    root, _ = tree
    resolve = _Resolver(root)
    resolve("img/a.jpg")  # the img folder is cached first: the cache must not let the leaf escape
    with pytest.raises(ValueError, match="leaves the input folder"):
        resolve(rel)


def test_absolute_paths_outside_are_refused(tree: tuple[Path, Path]) -> None:
    root, outside = tree
    with pytest.raises(ValueError, match="leaves the input folder"):
        _Resolver(root)(str(outside / "secret.jpg"))
    assert _Resolver(root)(str(root / "img" / "a.jpg")) == (str(root / "img" / "a.jpg"), True)


def test_jpeg_sniff_by_content_never_blocks(tmp_path: Path) -> None:
    (tmp_path / "x.jpg").write_bytes(JPEG)
    (tmp_path / "named.png").write_bytes(JPEG)  # another format's name: not sniffed
    (tmp_path / "plain.bin").write_bytes(b"\x89PNG\r\n")
    os.mkfifo(tmp_path / "pipe.jpg")  # would block a plain open(): refused by fstat, no read
    assert _is_jpeg(str(tmp_path / "x.jpg"))
    assert not _is_jpeg(str(tmp_path / "named.png"))
    assert not _is_jpeg(str(tmp_path / "plain.bin"))
    assert not _is_jpeg(str(tmp_path / "pipe.jpg"))
    assert not _is_jpeg(str(tmp_path / "missing.jpg"))
    assert not _is_jpeg(str(tmp_path / "nul\0.jpg"))
