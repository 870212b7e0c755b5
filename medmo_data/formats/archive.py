"""Files of a release either unpacked (`<root>/<folder>/...`) or still inside the zip(s) it ships, read in
place. Recipes ask for a name relative to the folder and get the same bytes either way; images from a zip
travel as bytes, so nothing is extracted.

Real zips differ in where the folder sits: SLAKE's `imgs.zip` holds `imgs/xmlabN/...`, PMC-VQA's
`images_2.zip` holds `figures/<name>` (the folder is named after neither), PMC-OA's `images.zip` holds
`caption_T060_filtered_top4_sep_v0_subfigures/<name>`, VQA-Med-2019's test zip holds another zip of
images, and PubMedVision's twenty `images_N.zip` are unzipped flat (`unzip -j`). So a tree names the zip
files to look for (globs allowed), the member prefixes to try in order (the first one some member starts
with wins; "" = members at the top), and optionally `flat=True`: a name is looked up by its base name in
every zip. A zip inside a zip is copied once to an anonymous temporary file (`subtree`), never unpacked.
"""

from __future__ import annotations

import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import IO

from medmo_data.formats.tables import check_regular, read_small
from medmo_data.recipe import ImageSource, SourceError

# No member is decompressed beyond this many bytes (the zip's declared sizes can lie): an image member over
# it reaches the decoder one byte over the decoder's own cap (pixels.limits.MAX_FILE_BYTES, the same value,
# tested) and is rejected there as `file_too_large`; any other member stops the build with its name.
MAX_MEMBER_BYTES = 1 << 30
# A zip inside a release zip (VQA-Med-2019's test images) is copied to a temporary file to be read: a
# nested zip bomb stops here instead of filling the disk.
MAX_NESTED_ZIP_BYTES = 8 << 30


def open_zip(path: Path) -> zipfile.ZipFile:
    """A zip file on disk, opened once it is known to be a regular file (open() on a FIFO blocks); a file
    that is not a zip stops the build with its name."""
    check_regular(path)
    try:
        return zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise SourceError(f"{path}: not a readable zip ({exc})") from exc


def copy_member(zf: zipfile.ZipFile, name: str, label: str, cap: int = MAX_NESTED_ZIP_BYTES) -> IO[bytes]:
    """Member `name` decompressed into a temporary file (for random access), stopping with a SourceError
    past `cap` bytes."""
    copy = tempfile.TemporaryFile()
    with zf.open(name) as src:
        while chunk := src.read(1 << 20):
            if copy.tell() + len(chunk) > cap:
                copy.close()
                raise SourceError(f"{label}:{name}: over {cap} bytes uncompressed")
            copy.write(chunk)
    copy.seek(0)
    return copy


def _prefix(zf: zipfile.ZipFile, prefixes: Sequence[str]) -> str | None:
    """The first candidate prefix that some member of zf starts with ("" matches any non-empty zip)."""
    names = zf.namelist()
    for p in prefixes:
        if any(n.startswith(p) and n != p for n in names):
            return p
    return None


class ReleaseTree:
    """One folder of a release: a directory on disk, or the members of one or more zips under a prefix."""

    def __init__(self, root: Path, folder: str, zips: Sequence[str] = (), prefixes: Sequence[str] = (),
                 flat: bool = False) -> None:
        self.dir = root / folder
        self.members: list[tuple[zipfile.ZipFile, str, str]] = []  # (zip, its prefix, label for messages)
        self._flat: dict[str, tuple[int, str]] | None = None
        self._keep: list[IO[bytes]] = []  # temporary copies of nested zips
        if not self.dir.is_dir():
            self._open_zips(root, zips or (f"{folder}.zip",), list(prefixes) or [f"{folder}/"], flat)

    @classmethod
    def in_zips(cls, root: Path, zips: Sequence[str], flat: bool = True) -> ReleaseTree:
        """The members of the zips `zips` (globs under root), whatever folders exist beside them (NIH's
        `images/` may hold the zips themselves): looked up by base name, or (`flat=False`) by their whole
        name (every zip's members from the top)."""
        tree = cls.__new__(cls)
        tree.dir, tree.members, tree._flat, tree._keep = root / "(zips)", [], None, []
        tree._open_zips(root, zips, [""], flat)
        return tree

    def names(self) -> list[str]:
        """Every file of the tree, as the names `read_bytes` takes (base names in a flat tree), sorted by
        path parts (the order of sorted `Path`s)."""
        if not self.members:
            found = [p.relative_to(self.dir).as_posix() for p in self.dir.rglob("*") if p.is_file()]
        elif self._flat is not None:
            found = list(self._flat)
        else:
            found = [n[len(prefix):] for zf, prefix, _ in self.members for n in zf.namelist()
                     if n.startswith(prefix) and not n.endswith("/")]
        return sorted(dict.fromkeys(found), key=lambda n: PurePosixPath(n).parts)

    def _open_zips(self, root: Path, zips: Sequence[str], wanted: Sequence[str], flat: bool) -> None:
        for pattern in zips:
            for path in sorted(root.glob(pattern)):
                if path.is_file() and zipfile.is_zipfile(path):  # is_file: a FIFO is never opened
                    self._add(zipfile.ZipFile(path), wanted, str(path), flat)
        if flat:
            self._index()

    def _add(self, zf: zipfile.ZipFile, prefixes: Sequence[str], label: str, flat: bool) -> None:
        p = "" if flat else _prefix(zf, prefixes)
        if p is not None:
            self.members.append((zf, p, label))

    def _index(self) -> None:
        self._flat = {}
        for i, (zf, _, _) in enumerate(self.members):
            for name in zf.namelist():
                if not name.endswith("/"):
                    self._flat.setdefault(PurePosixPath(name).name, (i, name))

    @property
    def zip(self) -> zipfile.ZipFile | None:
        return self.members[0][0] if self.members else None

    @property
    def found(self) -> bool:
        return self.dir.is_dir() or bool(self.members)

    def _locate(self, rel: str) -> tuple[zipfile.ZipFile, str] | None:
        if self._flat is not None:
            hit = self._flat.get(PurePosixPath(rel).name)
            return (self.members[hit[0]][0], hit[1]) if hit else None
        for zf, prefix, _ in self.members:
            try:
                zf.getinfo(prefix + rel)
            except KeyError:
                continue
            return zf, prefix + rel
        return None

    def exists(self, rel: str) -> bool:
        if not self.members:
            return (self.dir / rel).exists()
        return self._locate(rel) is not None

    def read_bytes(self, rel: str) -> bytes:
        if not self.members:
            return read_small(self.dir / rel, MAX_MEMBER_BYTES)
        hit = self._locate(rel)
        if hit is None:
            raise FileNotFoundError(f"{self.where(rel)} is not in the zip")
        data = _bounded(*hit)
        if len(data) > MAX_MEMBER_BYTES:
            raise SourceError(f"{self.where(rel)}: over {MAX_MEMBER_BYTES} bytes uncompressed")
        return data

    def where(self, rel: str) -> str:
        """Where `rel` is (or would be), for messages: a path, or `archive.zip:member`."""
        if not self.members:
            return str(self.dir / rel)
        hit = self._locate(rel)
        if hit is None:
            _, prefix, label = self.members[0]
            return f"{label}:{prefix}{rel}"
        return next(f"{label}:{hit[1]}" for zf, _, label in self.members if zf is hit[0])

    def image(self, rel: str) -> ImageSource:
        """Path-based for an unpacked tree; bytes for a zip member (missing member -> a path that does not
        exist, which the decoder rejects as `missing_image`)."""
        if not self.members:
            return ImageSource(path=str(self.dir / rel))
        hit = self._locate(rel)
        return ImageSource(data=_bounded(*hit)) if hit else ImageSource(path=self.where(rel))

    def subtree(self, folder: str, zips: Sequence[str] = (), prefixes: Sequence[str] = (),
                flat: bool = False) -> ReleaseTree:
        """The folder `folder` inside this tree: a directory, the same zip under a longer prefix, or a zip
        member of this tree (a nested zip, copied to a temporary file) with its own prefixes."""
        if not self.members:
            return ReleaseTree(self.dir, folder, zips, prefixes, flat)
        sub = ReleaseTree.__new__(ReleaseTree)
        sub.dir, sub.members, sub._flat, sub._keep = self.dir / folder, [], None, self._keep
        for zf, prefix, label in self.members:
            inner = f"{prefix}{folder}/"
            if any(n.startswith(inner) and n != inner for n in zf.namelist()):
                sub.members.append((zf, inner, label))
        if not sub.members:
            wanted = list(prefixes) or [f"{PurePosixPath(folder).name}/"]
            for zf, prefix, label in self.members:
                for name in zf.namelist():
                    if name.startswith(prefix) and any(PurePosixPath(name[len(prefix):]).match(z)
                                                       for z in zips or (f"{folder}.zip",)):
                        copy = copy_member(zf, name, label)
                        self._keep.append(copy)
                        if zipfile.is_zipfile(copy):
                            sub._add(zipfile.ZipFile(copy), wanted, f"{label}:{name}", flat)
        if flat:
            sub._index()
        return sub


def _bounded(zf: zipfile.ZipFile, name: str) -> bytes:
    """A member's bytes, decompressed no further than MAX_MEMBER_BYTES + 1 (a zip bomb stops there)."""
    with zf.open(name) as f:
        return f.read(MAX_MEMBER_BYTES + 1)
