"""MedTrinity-25M: ~25M medical images with long LLM-generated captions over 10 modalities (Xie et al., 2024,
arXiv 2408.02900). MedMO's stage 1 is MedTrinity alone (~18.5M samples).

Get it from Hugging Face `UCSC-VLAA/MedTrinity-25M` (gated: agree to share contact details; licence
not stated on the card). Two configs are read:
- `25M_demo`: parquet files (`25M_demo/*.parquet`, any nesting) with columns `image` (an HF Image cell),
  `id`, `caption`; one split, `train` (161,630 rows).
- `25M_full`: caption metadata as parquet (`25M_full/*.parquet`) with at least `file_name` and `caption`
  (`source`, `id` when present), and the images in `25M_accessible/dataset_shard_<N>.tar.zst`. An archive
  member belongs to the parquet row whose `file_name` equals the member's BASE name (members sit several
  folders deep). Only "accessible" sources ship images: caption rows whose image is in no archive are
  rejected as `image_not_in_archives` (`--option unmatched=ignore` skips them instead: use it when you
  downloaded only some archives, since every reject is listed in the manifest).

Streaming: parquet is read batch by batch; the `file_name -> caption` join goes through an on-disk SQLite
index (in a temporary folder, or `--option index_dir=DIR`), and each `.tar.zst` is decompressed as a
stream, one member at a time, so memory stays flat at 25M rows. Archives are read in shard-number order.
Traps: truncated archives are reported upstream (HF discussion #4): the members before the break are kept,
the rest of that archive is one `truncated_archive` reject; undecodable images are rejected by the library;
P/RGBA/LA images are converted. Everything is `train` (the release has no split). Several MedTrinity
`source`s overlap other MedMO sets (chexpert, pmc_vqa, quilt_llava, nih_chest): kept in `meta.origin`
so the mixer can deduplicate.
"""

from __future__ import annotations

import re
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from medmo_data.families.reports import caption_messages
from medmo_data.formats.tables import clean, hf_image, iter_parquet
from medmo_data.formats.tar_stream import iter_members
from medmo_data.recipe import ImageSource, RawSample, Reject, SourceError, SourceInfo

INFO = SourceInfo(
    name="medtrinity", title="MedTrinity-25M", stages=(1,), tasks=("caption",), modality="mixed",
    access="registered", license="unspecified (gated HF dataset; see the dataset card)",
    homepage="https://huggingface.co/datasets/UCSC-VLAA/MedTrinity-25M",
    citation="Xie et al., MedTrinity-25M: A Large-scale Multimodal Dataset with Multigranular Annotations "
             "for Medicine, arXiv 2408.02900",
    image_format="jpg",
)
HUB_PATTERNS = ["25M_demo/*.parquet", "*.md"]
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".gif", ".webp")


def _shard_order(p: Path) -> tuple[int, str]:
    m = re.search(r"(\d+)", p.name)
    return (int(m.group(1)) if m else -1, p.name)


def _sample(sid: str, caption: str, img: ImageSource, meta: dict[str, Any]) -> RawSample:
    return RawSample(id=sid, split="train", task="caption", images=[img],
                     messages=caption_messages(caption, sid), target={"caption": caption}, meta=meta)


def _demo(files: list[Path]) -> Iterator[RawSample | Reject]:
    for i, row in enumerate(iter_parquet(files, ["image", "id", "caption"])):
        sid = clean(row["id"]) or f"demo-{i:07d}"
        caption = clean(row["caption"])
        if not caption:
            yield Reject(sid, "empty_text", "caption is empty")
            continue
        img = hf_image(row["image"], sid)
        if isinstance(img, Reject):
            yield img
            continue
        yield _sample(sid, caption, img, {"origin": "", "file_name": ""})


def _index(db: sqlite3.Connection, files: list[Path]) -> Iterator[Reject]:
    """Load file_name -> (caption, source, id) into SQLite; rows that cannot be joined become Rejects."""
    db.execute("CREATE TABLE cap (name TEXT PRIMARY KEY, caption TEXT, source TEXT, id TEXT, used INT)")
    cols = ["file_name", "caption"]
    names = _columns(files[0])
    cols += [c for c in ("source", "id") if c in names]
    for i, row in enumerate(iter_parquet(files, cols)):
        name = clean(row["file_name"]).replace("\\", "/").rsplit("/", 1)[-1]
        rid = clean(row.get("id")) or name or f"row-{i}"
        caption = clean(row["caption"])
        if not name:
            yield Reject(rid, "missing_field", f"row {i}: file_name is empty")
        else:  # an empty caption is rejected when its image turns up (one outcome per row)
            cur = db.execute("INSERT OR IGNORE INTO cap VALUES (?, ?, ?, ?, 0)",
                             (name, caption, clean(row.get("source")), clean(row.get("id"))))
            if cur.rowcount == 0:
                yield Reject(rid, "duplicate_id", f"file_name {name!r} repeats in the parquet")
    db.commit()


def _columns(path: Path) -> list[str]:
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path).schema_arrow.names
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for bad files
        raise SourceError(f"{path}: unreadable Parquet ({exc})") from exc


def _full(files: list[Path], archives: list[Path], options: dict[str, str]) -> Iterator[RawSample | Reject]:
    unmatched = options.get("unmatched", "reject")
    if unmatched not in ("reject", "ignore"):
        raise SourceError(f"--option unmatched={unmatched!r}: expected reject or ignore")
    with tempfile.TemporaryDirectory(prefix="medtrinity-", dir=options.get("index_dir")) as tmp:
        db = sqlite3.connect(Path(tmp) / "captions.sqlite")
        try:
            yield from _index(db, files)
            for archive in archives:
                for item in iter_members(archive, IMAGE_EXTS):
                    if isinstance(item, Reject):
                        yield item
                        continue
                    path, data = item
                    name = path.rsplit("/", 1)[-1]
                    row = db.execute("SELECT caption, source, id, used FROM cap WHERE name = ?", (name,)).fetchone()
                    if row is None:
                        yield Reject(name, "no_caption", f"{archive.name}:{path}: no parquet row has this file_name")
                    elif row[3]:
                        yield Reject(name, "duplicate_id", f"{archive.name}:{path}: image already read")
                    elif not row[0]:
                        db.execute("UPDATE cap SET used = 1 WHERE name = ?", (name,))
                        yield Reject(row[2] or name, "empty_text", f"{name}: caption is empty")
                    else:
                        db.execute("UPDATE cap SET used = 1 WHERE name = ?", (name,))
                        yield _sample(row[2] or name, row[0], ImageSource(data=data),
                                      {"origin": row[1], "file_name": name})
            if unmatched == "reject":
                for name, rid in db.execute("SELECT name, id FROM cap WHERE used = 0 ORDER BY rowid"):
                    yield Reject(rid or name, "image_not_in_archives", f"{name}: in no .tar.zst archive")
        finally:
            db.close()


def records(root: Path, options: dict[str, str]) -> Iterator[RawSample | Reject]:
    parquet = sorted(root.rglob("*.parquet"))
    full = [p for p in parquet if "file_name" in _columns(p)]
    demo = [p for p in parquet if p not in full and "image" in _columns(p)]
    archives = sorted((p for p in root.rglob("*.tar*") if p.name.endswith((".tar.zst", ".tar"))), key=_shard_order)
    if full:
        if not archives:
            raise SourceError(f"{root}: 25M_full captions found but no 25M_accessible/*.tar.zst image archives")
        yield from _full(full, archives, options)
    elif demo:
        yield from _demo(demo)
    else:
        raise SourceError(f"{root}: no 25M_demo parquet (image, id, caption) or 25M_full parquet (file_name, caption)")
