"""`medmo-data verify OUT/NAME`: re-hash every shard, re-read every sample, check it against the schema
and against the manifest (counts, member names, no extra or missing shards)."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from medmo_data.schema import SchemaError, validate_record
from medmo_data.shards.reader import ShardError, iter_samples

from .manifest import load


@dataclass
class VerifyReport:
    shards: int = 0
    samples: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify(folder: Path, decode_images: bool = True, progress: Callable[[int], None] | None = None) -> VerifyReport:
    man = load(folder)
    rep = VerifyReport()
    listed = {s["path"] for s in man["shards"]}
    on_disk = {p.name for p in folder.glob("*.tar")}
    for extra in sorted(on_disk - listed):
        rep.problems.append(f"{folder / extra}: shard not listed in the manifest")
    members: frozenset[str] | None = None
    for sh in man["shards"]:
        path = folder / sh["path"]
        rep.shards += 1
        if not path.exists():
            rep.problems.append(f"{path}: missing shard")
            continue
        if path.stat().st_size != sh["bytes"] or _sha256(path) != sh["sha256"]:
            rep.problems.append(f"{path}: sha256/size does not match the manifest")
        n = 0
        try:
            for sample in iter_samples(path):
                n += 1
                key = sample["__key__"]
                rec = sample.get("json")
                if rec is None:
                    rep.problems.append(f"{path}:{key}: no json member")
                    continue
                try:
                    validate_record(rec)
                except SchemaError as exc:
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
                        try:
                            with Image.open(io.BytesIO(sample[im["member"]])) as img:
                                img.load()
                                if img.size != (im["width"], im["height"]):
                                    rep.problems.append(f"{path}:{key}: {im['member']} is {img.size}, record says "
                                                        f"{(im['width'], im['height'])}")
                        except Exception as exc:  # noqa: BLE001 - any decode failure is a problem to report
                            rep.problems.append(f"{path}:{key}: {im['member']} does not decode ({exc})")
        except ShardError as exc:
            rep.problems.append(f"{path}: {exc}")
        if n != sh["samples"]:
            rep.problems.append(f"{path}: {n} samples, manifest says {sh['samples']}")
        rep.samples += n
        if progress:
            progress(rep.samples)
    if rep.samples != man["counts"]["written"]:
        rep.problems.append(f"{folder}: {rep.samples} samples in shards, manifest says {man['counts']['written']}")
    return rep
