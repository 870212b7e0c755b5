"""Safe, bounded shard reading: tar members grouped into samples, JSON parsed, nothing ever unpickled.

Shards and index files may come from elsewhere, so nothing in them is trusted before it is checked:
- Member names are whitelisted: `<key>.json` and `<key>.<n>.png` / `<key>.<n>.jpg`, the only members the
  writer writes, with `<key>` a safe sample key (`medmo_data.keys`). Anything else is `UnsafeShard`:
  code members (`.pyd`, `.pickle`, ...) under any extension (`x.pyd.gz`), paths that escape the archive
  or name a folder, links, devices and sparse members.
- Sizes are capped BEFORE anything is read (a GNU sparse header declares 10 GiB in a 2.5 KB tar):
  the caps below are the one place they are set.
- A key appears once per tar (its members adjacent), a record is a JSON object, and JSON nested too
  deep for the parser is a `ShardError`, not a `RecursionError`.
- Around the tar: `listed_file` (a manifest names files in its folder only), `check_index` (index
  Parquet caps), `check_sha256` (bytes as the manifest says), `check_sample` / `open_image` (record
  schema, image headers within the pixel cap and of the record's size: nothing decoded).
Every refusal is a `ShardError` naming the shard and the member.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from medmo_data.keys import is_safe_key
from medmo_data.schema import IMAGE_EXTS, SchemaError, validate_record

MiB = 1 << 20
# Size caps, checked against the size a header declares before the bytes are read.
MAX_RECORD_BYTES = 64 * MiB  # one `json` member (records are a few KB; long reports a few hundred KB)
MAX_IMAGE_BYTES = 256 * MiB  # one encoded image member (the build writes at most MAX_PIXELS pixels)
MAX_INDEX_BYTES = 512 * MiB  # one `<shard>.index.parquet` file on disk
MAX_INDEX_UNCOMPRESSED = 2048 * MiB  # its row groups once decompressed, as its footer declares them
# Decoded images: at most `medmo_data.pixels.decode.MAX_PIXELS` pixels declared (the build's own bound).

UNSAFE_SUFFIXES = ("pyd", "pickle", "pkl", "pth", "pt", "ckpt", "npy", "npz", "joblib")
_IMAGE_FIELD = re.compile(rf"(?:0|[1-9][0-9]*)\.(?:{'|'.join(IMAGE_EXTS)})")


class ShardError(ValueError):
    """A shard (or index file) that cannot be read as medmo samples."""


class UnsafeShard(ShardError):
    pass


def _label(shard: str | Path | IO[bytes]) -> str:
    return str(getattr(shard, "name", "<tar stream>")) if hasattr(shard, "read") else str(shard)


def _split_name(name: str, where: str) -> tuple[str, str, int]:
    """(key, field, size cap) of a whitelisted member name; `UnsafeShard` for any other name."""
    if name.startswith("/") or ".." in name.split("/"):
        raise UnsafeShard(f"{where}: member {name!r} has an absolute or parent path")
    key, _, field = name.partition(".")
    if any(ext.lower() in UNSAFE_SUFFIXES for ext in name.split(".")[1:]):
        raise UnsafeShard(f"{where}: member {name!r} is refused (a {field} member could run code)")
    if "/" in name or not is_safe_key(key):
        raise UnsafeShard(f"{where}: member {name!r} is not named <key>.<field> with a safe key")
    if field == "json":
        return key, field, MAX_RECORD_BYTES
    if _IMAGE_FIELD.fullmatch(field):
        return key, field, MAX_IMAGE_BYTES
    raise UnsafeShard(f"{where}: member {name!r}: a shard holds only <key>.json and <key>.<n>.png|jpg")


def _record(data: bytes, where: str) -> dict[str, Any]:
    try:
        rec = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ShardError(f"{where}: invalid JSON ({exc})") from exc
    except RecursionError as exc:
        raise ShardError(f"{where}: JSON nested too deeply") from exc
    if not isinstance(rec, dict):
        raise ShardError(f"{where}: the record is a JSON {type(rec).__name__}, not an object")
    return rec


def listed_file(folder: Path, name: Any) -> Path:
    """`folder / name` for a shard or index file a source manifest lists: a plain file name, never a path
    out of the folder (`UnsafeShard`)."""
    if not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\\" in name:
        raise UnsafeShard(f"{folder}/manifest.json lists {name!r}: not a file name in this folder")
    return folder / name


def iter_samples(shard: str | Path | IO[bytes], decode_json: bool = True) -> Iterator[dict[str, Any]]:
    """Samples of one tar: {"__key__": key, "json": record, "0.png": bytes, ...}."""
    label = _label(shard)
    try:
        tf = tarfile.open(fileobj=shard, mode="r|") if hasattr(shard, "read") else tarfile.open(shard, "r|")
    except (tarfile.TarError, OSError) as exc:
        raise ShardError(f"{label}: not a readable tar ({exc})") from exc
    current: dict[str, Any] | None = None
    seen: set[str] = set()
    try:
        with tf:
            for m in tf:
                where = f"{label}: member {m.name!r}"
                key, field, cap = _split_name(m.name, label)
                if current is not None and current["__key__"] != key:
                    yield current  # complete: kept even if what follows is refused
                    current = None
                if not m.isfile():
                    raise UnsafeShard(f"{where} is not a regular file")
                if m.size > cap:
                    raise ShardError(f"{where} declares {m.size} bytes, over the {cap}-byte cap for "
                                     f"{'record' if field == 'json' else 'image'} members")
                if m.issparse():
                    raise UnsafeShard(f"{where} is a sparse file (the writer never writes one)")
                f = tf.extractfile(m)
                data = f.read(m.size) if f else b""
                if current is None:
                    if key in seen:
                        raise ShardError(f"{where}: key {key!r} appears twice in the tar")
                    seen.add(key)
                    current = {"__key__": key}
                if field in current:
                    raise ShardError(f"{where}: duplicate member")
                current[field] = _record(data, where) if field == "json" and decode_json else data
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ShardError(f"{label}: truncated or corrupt tar ({exc})") from exc
    if current is not None:
        yield current


def open_image(data: bytes, where: str, size: tuple[int, int] | None = None):
    """An image member opened lazily (no pixels decoded) once its header passed the pixel cap and, when
    `size` (width, height) is given, matches it. `ShardError` otherwise: nothing is decoded."""
    from PIL import Image

    from medmo_data.pixels.decode import MAX_PIXELS

    try:
        with warnings.catch_warnings():  # PIL warns from 89 M pixels; the cap below is lower
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ShardError(f"{where}: not a readable image ({exc})") from exc
    w, h = img.size
    if w * h > MAX_PIXELS:
        raise ShardError(f"{where}: declares {w}x{h} pixels, over the {MAX_PIXELS}-pixel cap")
    if size is not None and (w, h) != tuple(size):
        raise ShardError(f"{where}: is {w}x{h}, the record says {size[0]}x{size[1]}")
    return img


def check_sample(sample: dict[str, Any], where: str) -> None:
    """`ShardError` unless the sample's record follows the schema and every image member it names is
    there, with a header within the pixel cap and of the record's size (headers only: nothing decoded)."""
    rec = sample.get("json")
    if rec is None:
        raise ShardError(f"{where}: no json member")
    try:
        validate_record(rec)
    except (SchemaError, TypeError) as exc:  # TypeError: an unhashable value where a name belongs
        raise ShardError(f"{where}: {exc}") from exc
    for im in rec["images"]:
        if im["member"] not in sample:
            raise ShardError(f"{where}: member {im['member']} is missing")
        open_image(sample[im["member"]], f"{where}: {im['member']}", (im["width"], im["height"])).close()


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_sha256(path: str | Path, expected: str) -> None:
    """`ShardError` unless the file's bytes hash to `expected` (the manifest's sha256)."""
    got = file_sha256(path)
    if got != expected:
        want = f"{expected[:16]}..." if expected else "(none recorded)"
        raise ShardError(f"{path}: sha256 {got[:16]}... differs from the manifest's {want}")


def check_index(path: str | Path) -> None:
    """Refuse an index Parquet file over the caps before reading it: its size on disk, then the
    uncompressed size its footer declares for its row groups (the footer alone is read)."""
    import pyarrow.parquet as pq

    size = Path(path).stat().st_size
    if size > MAX_INDEX_BYTES:
        raise ShardError(f"{path}: index file of {size} bytes, over the {MAX_INDEX_BYTES}-byte cap")
    try:
        meta = pq.read_metadata(path)
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise ShardError(f"{path}: not a readable Parquet index ({exc})") from exc
    total = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    if total > MAX_INDEX_UNCOMPRESSED:
        raise ShardError(f"{path}: index declares {total} uncompressed bytes, over the "
                         f"{MAX_INDEX_UNCOMPRESSED}-byte cap")
