"""Files of a release still inside the tar archives it ships (`.tar`, `.tar.gz` / `.tgz`, `.tar.bz2`,
`.tar.xz`, `.tar.zst`), read in place as one forward stream each.

A compressed tar has no index: a member can only be reached by decompressing everything before it. So
instead of looking files up (what `formats.archive.ReleaseTree` does for zips), a recipe hands over the
member names each record needs, and `join_archives` streams the archives once, in the given order, giving
each record its members' bytes as soon as the last one has gone by. Members are matched by BASE name
(NIH's `images_001.tar.gz` holds `images/<name>.png`, other releases nest deeper or not at all); the first
member of a name wins. A member waiting for the rest of its record waits in a private temporary folder,
never in memory, so memory stays flat whatever the archive order; with `ordered=True` every wanted member
waits there and records come out in the order they were given (byte-identical to the unpacked build). A
truncated archive keeps the members before the break and becomes one `truncated_archive` reject.
"""

from __future__ import annotations

import os
import tarfile
import tempfile
from collections.abc import Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Generic, TypeVar

from medmo_data.formats.archive import MAX_MEMBER_BYTES
from medmo_data.formats.tables import check_regular
from medmo_data.recipe import Reject

K = TypeVar("K", bound=Hashable)
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def _stream(raw: IO[bytes]) -> IO[bytes]:
    """The decompressed stream of an opened archive: zstd by its magic bytes; gzip, bzip2 and xz are
    recognised by tarfile's own `r|*` mode."""
    head = raw.read(4)
    raw.seek(0)
    if head == _ZSTD_MAGIC:
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(raw)
    return raw


def iter_members(archive: Path, suffixes: Sequence[str] = (), cap: int | None = None
                 ) -> Iterator[tuple[str, bytes] | Reject]:
    """(member path, bytes) of every regular member of one tar archive whose name ends with one of
    `suffixes` (any when empty), streamed in archive order; a break ends it with a `truncated_archive`
    Reject. Links, devices and folders are skipped: nothing is extracted, so no member name is ever a path
    here. A member is read to `cap` + 1 bytes at most: an image over the cap reaches the decoder one byte
    over and is its reject; a caller with a smaller cap rejects a member longer than it. (Default:
    MAX_MEMBER_BYTES, the decoder's own file cap.)"""
    import zstandard

    cap = MAX_MEMBER_BYTES if cap is None else cap
    wanted = tuple(s.lower() for s in suffixes)
    n = 0
    check_regular(archive)  # a FIFO would block open(): the build stops with its name
    try:
        with open(archive, "rb") as raw, tarfile.open(fileobj=_stream(raw), mode="r|*") as tf:
            for m in tf:
                if not m.isfile() or (wanted and not m.name.lower().endswith(wanted)):
                    continue
                f = tf.extractfile(m)
                data = f.read(cap + 1) if f else b""
                n += 1
                yield m.name, data
    except (tarfile.TarError, EOFError, OSError, zstandard.ZstdError) as exc:
        yield Reject(archive.name, "truncated_archive", f"{archive}: stopped after {n} members ({exc})")


@dataclass(frozen=True)
class Missing(Generic[K]):
    """A record some of whose members are in none of the archives."""

    key: K
    names: tuple[str, ...]  # the missing base names, in the record's order


class _Waiting:
    """Members that wait for the records still to use them, one file each in a private temporary folder."""

    def __init__(self, where: str | None) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="medmo-tar-", dir=where)
        self._files: dict[str, str] = {}
        self._count = 0

    def put(self, name: str, data: bytes) -> None:
        self._count += 1
        path = os.path.join(self._dir.name, str(self._count))  # never the member's own name
        with open(path, "wb") as f:
            f.write(data)
        self._files[name] = path

    def read(self, name: str) -> bytes:
        with open(self._files[name], "rb") as f:
            return f.read()

    def drop(self, name: str) -> None:
        if name in self._files:
            os.remove(self._files.pop(name))

    def close(self) -> None:
        self._dir.cleanup()


def join_archives(archives: Sequence[Path], records: Mapping[K, Sequence[str]], suffixes: Sequence[str] = (),
                  ordered: bool = False, temp_dir: str | None = None
                  ) -> Iterator[tuple[K, list[bytes]] | Missing[K] | Reject]:
    """Stream `archives` once and give each record (key -> the base names of its members, in order) its
    members' bytes: `(key, [bytes, ...])` as soon as the last of them has streamed by (`ordered=False`),
    or, with `ordered=True`, every record in the order of `records` once the stream has ended. Records
    left incomplete come last, as `Missing`, in the order of `records`; a broken archive is a Reject where
    it broke. A member is written to the temporary folder only while a record still has to wait for it;
    with no record, no archive is opened."""
    if not records:
        return
    users: dict[str, list[K]] = {}
    for key, names in records.items():
        for name in dict.fromkeys(names):
            users.setdefault(name, []).append(key)
    needs = {key: len(set(names)) for key, names in records.items()}  # members not streamed by yet
    uses = {name: len(keys) for name, keys in users.items()}  # records not given this member yet
    seen: set[str] = set()
    waiting = _Waiting(temp_dir)

    def give(key: K, name: str = "", data: bytes = b"") -> tuple[K, list[bytes]]:
        out = [data if n == name else waiting.read(n) for n in records[key]]
        for n in dict.fromkeys(records[key]):
            uses[n] -= 1
            if uses[n] == 0:
                waiting.drop(n)
        return key, out

    try:
        for archive in archives:
            for item in iter_members(archive, suffixes):
                if isinstance(item, Reject):
                    yield item
                    continue
                name, data = PurePosixPath(item[0]).name, item[1]
                if name not in users or name in seen:
                    continue
                seen.add(name)
                for key in users[name]:
                    needs[key] -= 1
                ready = [] if ordered else [key for key in users[name] if needs[key] == 0]
                if uses[name] > len(ready):
                    waiting.put(name, data)
                for key in ready:
                    yield give(key, name, data)
        for key in records:
            if needs[key]:
                yield Missing(key, tuple(n for n in records[key] if n not in seen))
            elif ordered:
                yield give(key)
    finally:
        waiting.close()
