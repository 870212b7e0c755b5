"""Build outputs on shared storage: fsspec URLs (`s3://`, `gs://`, `file://`, `memory://`, ...).

A shard is always written on local disk first (the same `write_shard` as every build), then committed
file by file: tars, index, and the stats file LAST, so the stats file still marks a complete shard and
resume works exactly as on a local folder. A commit never leaves a partial object under a final name:
object stores publish an upload atomically when it completes (a single PUT or a completed multipart
upload), so the file goes straight to its name; file-like stores get a temporary name and a rename.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

_URL = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")
_COLLAPSED = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):/(?!/)")  # Path("s3://b") -> "s3:/b"
# Stores whose writes become visible only when complete; everything else is renamed into place.
OBJECT_STORES = {"s3", "s3a", "gs", "gcs", "abfs", "abfss", "az", "adl", "oss", "r2", "memory"}


def as_url(output: str | Path) -> str | None:
    """The fsspec URL an output names, or None for a plain local path. Repairs the '//' that
    `pathlib.Path` collapses (the CLI parses --output as a Path)."""
    s = str(output)
    if _URL.match(s):
        return s
    m = _COLLAPSED.match(s)
    if m and len(m.group(1)) > 1:  # not a Windows drive letter
        rest = s[m.end():]
        # file:///abs/path has an empty host: Path kept one slash of three, and the path's own is gone
        return f"{m.group(1)}:///{rest}" if m.group(1) in ("file", "local") else f"{m.group(1)}://{rest}"
    return None


class RemoteDir:
    """One source's output folder on an fsspec filesystem."""

    def __init__(self, url: str) -> None:
        import fsspec

        self.url = url.rstrip("/")
        self.fs, self.root = fsspec.core.url_to_fs(self.url)
        protocol = self.fs.protocol if isinstance(self.fs.protocol, str) else self.fs.protocol[0]
        self.atomic_put = protocol in OBJECT_STORES
        self.fs.makedirs(self.root, exist_ok=True)

    def path(self, name: str) -> str:
        return f"{self.root}/{name}"

    def exists(self, name: str) -> bool:
        return self.fs.exists(self.path(name))

    def read_bytes(self, name: str) -> bytes:
        return self.fs.cat_file(self.path(name))

    def names(self) -> list[str]:
        return sorted(p.rsplit("/", 1)[-1] for p in self.fs.ls(self.root, detail=False))

    def commit(self, local: Path, name: str | None = None) -> None:
        """Publish a finished local file under `name` (default: its own name), never partially."""
        final = self.path(name or local.name)
        if self.atomic_put:
            self.fs.put_file(str(local), final)
            return
        tmp = self.path(f".{name or local.name}.tmp-upload")
        self.fs.put_file(str(local), tmp)
        self.fs.mv(tmp, final)

    def remove(self, name: str) -> None:
        self.fs.rm_file(self.path(name))

    def finished(self, task: Any) -> dict[str, Any] | None:
        """`medmo_data.shards.writer.finished` over the store: stats of a complete shard with the same chunk and options."""
        from .writer import STATS_SUFFIX

        try:
            stats = json.loads(self.read_bytes(f"{task.name}{STATS_SUFFIX}"))
        except (FileNotFoundError, OSError, json.JSONDecodeError):
            return None
        if stats.get("chunk_digest") != task.chunk_digest or stats.get("options_digest") != task.options_digest:
            return None
        if not all(self.exists(t["path"]) for t in stats.get("tars", [])):
            return None
        return stats

    def commit_shard(self, staging: Path, stats: dict[str, Any]) -> None:
        """Upload a shard written under `staging`: tar parts, index, then the stats file last."""
        from .writer import STATS_SUFFIX

        for t in stats["tars"]:
            self.commit(staging / t["path"])
        self.commit(staging / stats["index"]["path"])
        self.commit(staging / f"{stats['name']}{STATS_SUFFIX}")

    def remove_stale(self, keep: set[str]) -> None:
        for name in self.names():
            if name not in keep and (name.endswith((".tar", ".index.parquet", ".stats.json")) or ".tmp-" in name):
                self.remove(name)


def staged(fn: Callable[[Path], dict[str, Any]], remote: RemoteDir) -> dict[str, Any]:
    """Run a shard writer into a fresh local folder, commit its files to `remote`, clean up."""
    staging = Path(tempfile.mkdtemp(prefix="medmo-stage-"))
    try:
        stats = fn(staging)
        remote.commit_shard(staging, stats)
        return stats
    finally:
        shutil.rmtree(staging, ignore_errors=True)
