"""Safe shard reading: tar members grouped into samples, JSON parsed, nothing ever unpickled.

Members that could execute code when decoded by other tools (`.pyd`, `.pickle`, `.pkl`, `.pth`, ...)
and member paths that escape the archive (absolute, `..`) make the shard invalid: `UnsafeShard`.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

UNSAFE_SUFFIXES = ("pyd", "pickle", "pkl", "pth", "pt", "ckpt", "npy", "npz", "joblib")


class ShardError(ValueError):
    """A shard that cannot be read as medmo samples."""


class UnsafeShard(ShardError):
    pass


def _split_name(name: str) -> tuple[str, str]:
    if name.startswith("/") or ".." in Path(name).parts:
        raise UnsafeShard(f"member {name!r} has an absolute or parent path")
    base = name.rsplit("/", 1)[-1]
    prefix = name[: len(name) - len(base)]
    if "." not in base:
        raise ShardError(f"member {name!r} has no extension")
    key, ext = base.split(".", 1)
    return prefix + key, ext.lower()


def iter_samples(shard: str | Path | IO[bytes], decode_json: bool = True) -> Iterator[dict[str, Any]]:
    """Samples of one tar: {"__key__": key, "json": record, "0.png": bytes, ...}."""
    try:
        tf = tarfile.open(fileobj=shard, mode="r|") if hasattr(shard, "read") else tarfile.open(shard, "r|")
    except (tarfile.TarError, OSError) as exc:
        raise ShardError(f"{shard}: not a readable tar ({exc})") from exc
    current: dict[str, Any] | None = None
    try:
        with tf:
            for m in tf:
                if not m.isfile():
                    raise UnsafeShard(f"member {m.name!r} is not a regular file")
                key, ext = _split_name(m.name)
                if ext.rsplit(".", 1)[-1] in UNSAFE_SUFFIXES:
                    raise UnsafeShard(f"member {m.name!r}: {ext} members are refused (could run code)")
                f = tf.extractfile(m)
                data = f.read() if f else b""
                if current is not None and current["__key__"] != key:
                    yield current
                    current = None
                if current is None:
                    current = {"__key__": key}
                if ext in current:
                    raise ShardError(f"duplicate member {m.name!r}")
                if ext == "json" and decode_json:
                    try:
                        current[ext] = json.loads(data)
                    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                        raise ShardError(f"member {m.name!r}: invalid JSON ({exc})") from exc
                else:
                    current[ext] = data
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ShardError(f"{shard}: truncated or corrupt tar ({exc})") from exc
    if current is not None:
        yield current
