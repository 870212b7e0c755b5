"""Publish a set of output files all-or-nothing: `mix` (stage manifest + exclusions) and `stats` (report).

Every file is first written in full under a temporary name beside its target and fsynced; only when all
of them are on disk are they renamed into place, in the order given (the stage manifest last, so a reader
never sees a manifest whose exclusions file is older or newer than itself). A failure while writing
(a full disk, a quota) removes the temporary files and leaves every previous output as it was; a
failure while renaming puts back the files already replaced (their old bytes are kept under a hard
link until the last rename succeeded).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


class PublishError(OSError):
    """Nothing was published: the message names the file and says the previous outputs are unchanged."""


def _tmp(path: Path, tag: str) -> Path:
    return path.with_name(f".{path.name}.{tag}-{os.getpid()}")


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _sync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform / filesystem can fsync a directory
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def publish(files: list[tuple[Path, bytes]]) -> None:
    """Write `files` (path, bytes) atomically as a set, renaming in list order (put the manifest last)."""
    tmps: list[Path] = []
    try:
        for path, data in files:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmps.append(_tmp(path, "tmp"))
            _write_synced(tmps[-1], data)
    except OSError as exc:
        for t in tmps:
            t.unlink(missing_ok=True)
        raise _error(exc, f"cannot write {files[max(len(tmps) - 1, 0)][0]}", "previous outputs left unchanged") from exc
    backups: list[tuple[Path, Path | None]] = []  # replaced targets, each with a hard link to its old bytes
    current, old = files[0][0], None
    try:
        for (path, _), tmp in zip(files, tmps, strict=True):
            current, old = path, (_tmp(path, "old") if path.exists() else None)
            if old is not None:
                old.unlink(missing_ok=True)
                os.link(path, old)
            os.replace(tmp, path)
            backups.append((path, old))
    except OSError as exc:
        for path, prev in reversed(backups):
            with contextlib.suppress(OSError):
                if prev is not None:
                    os.replace(prev, path)
                else:
                    path.unlink(missing_ok=True)
        for t in [*tmps, *([old] if old is not None else [])]:
            t.unlink(missing_ok=True)
        raise _error(exc, f"cannot rename into {current}", "previous outputs restored") from exc
    for _, old in backups:
        if old is not None:
            old.unlink(missing_ok=True)
    for folder in sorted({p.parent for p, _ in files}):
        _sync_dir(folder)


def _error(exc: OSError, what: str, state: str) -> PublishError:
    err = PublishError(f"{what}: {exc.strerror or exc}; {state}")
    err.errno = exc.errno
    return err
