"""`medmo-data verify OUT/NAME`: re-hash every shard, re-read every sample, check it against the schema
and against the manifest (counts, member names, no extra or missing shards) and each tar's keys against
its index (same keys, same order, none twice). Reading is bounded (`medmo_data.shards.reader`): an
oversized member, index file or image is a problem to report, never a read."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from medmo_data.schema import SchemaError, validate_record
from medmo_data.shards.reader import (
    ShardError,
    check_index,
    file_sha256,
    iter_samples,
    listed_file,
    open_image,
)

from .manifest import load


@dataclass
class VerifyReport:
    shards: int = 0
    samples: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


IndexKeys = dict[str, list[str]] | str  # {tar name: its keys in index order}, or why the index is unreadable


def _index_keys(folder: Path, name: str, cache: dict[str, IndexKeys]) -> IndexKeys:
    """The keys of one index file by tar (read once per verify, size-capped first)."""
    if name not in cache:
        try:
            path = listed_file(folder, name)
            check_index(path)
            t = pq.read_table(path, columns=["key", "shard"])
            by_tar: dict[str, list[str]] = {}
            for key, tar in zip(t.column("key").to_pylist(), t.column("shard").to_pylist(), strict=True):
                by_tar.setdefault(tar, []).append(key)
            cache[name] = by_tar
        except (ShardError, OSError, ValueError, KeyError) as exc:
            cache[name] = f"index unreadable ({exc})"
    return cache[name]


def _key_problem(tar_keys: list[str], index_keys: list[str]) -> str | None:
    if tar_keys == index_keys:
        return None
    for i, (a, b) in enumerate(zip(tar_keys, index_keys, strict=False)):
        if a != b:
            return f"tar key #{i} is {a!r}, the index says {b!r}"
    return f"{len(tar_keys)} keys in the tar, {len(index_keys)} in the index"


def verify(folder: Path, decode_images: bool = True, progress: Callable[[int], None] | None = None) -> VerifyReport:
    man = load(folder)
    rep = VerifyReport()
    listed = {s["path"] for s in man["shards"]}
    on_disk = {p.name for p in folder.glob("*.tar")}
    for extra in sorted(on_disk - listed):
        rep.problems.append(f"{folder / extra}: shard not listed in the manifest")
    members: frozenset[str] | None = None
    indexes: dict[str, IndexKeys] = {}
    for sh in man["shards"]:
        rep.shards += 1
        try:
            path = listed_file(folder, sh["path"])
        except ShardError as exc:
            rep.problems.append(str(exc))
            continue
        if not path.exists():
            rep.problems.append(f"{path}: missing shard")
            continue
        if path.stat().st_size != sh["bytes"] or file_sha256(path) != sh["sha256"]:
            rep.problems.append(f"{path}: sha256/size does not match the manifest")
        n = 0
        keys: list[str] = []
        try:
            for sample in iter_samples(path):
                n += 1
                key = sample["__key__"]
                keys.append(key)
                rec = sample.get("json")
                if rec is None:
                    rep.problems.append(f"{path}:{key}: no json member")
                    continue
                try:
                    validate_record(rec)
                except (SchemaError, TypeError) as exc:  # TypeError: unhashable value where a name belongs
                    rep.problems.append(f"{path}:{key}: {exc}")
                    continue
                names = frozenset(k for k in sample if k != "__key__")
                want = frozenset(["json"] + [im["member"] for im in rec["images"]])
                if names != want:
                    rep.problems.append(f"{path}:{key}: members {sorted(names)} != {sorted(want)}")
                if sh.get("group") == sh.get("split"):
                    if members is None:
                        members = names
                    elif names != members:
                        rep.problems.append(f"{path}:{key}: members {sorted(names)} differ from {sorted(members)}")
                if decode_images:
                    for im in rec["images"]:
                        where = f"{path}:{key}: {im['member']}"
                        try:  # the header is checked (pixel cap, record's size) before any decoding
                            with open_image(sample[im["member"]], where, (im["width"], im["height"])) as img:
                                img.load()
                        except ShardError as exc:
                            rep.problems.append(str(exc))
                        except Exception as exc:  # noqa: BLE001 - any decode failure is a problem to report
                            rep.problems.append(f"{where} does not decode ({exc})")
        except ShardError as exc:
            rep.problems.append(str(exc))
        index = _index_keys(folder, sh["index"], indexes) if "index" in sh else "no index in the manifest"
        why = index if isinstance(index, str) else _key_problem(keys, index.get(sh["path"], []))
        if why:
            rep.problems.append(f"{path}: keys disagree with {sh.get('index', 'the index')}: {why}")
        if n != sh["samples"]:
            rep.problems.append(f"{path}: {n} samples, manifest says {sh['samples']}")
        rep.samples += n
        if progress:
            progress(rep.samples)
    if rep.samples != man["counts"]["written"]:
        rep.problems.append(f"{folder}: {rep.samples} samples in shards, manifest says {man['counts']['written']}")
    return rep
