"""Test items: the benchmark rows `mix` decontaminates against, from built sources' test indices and from
benchmark files (docs/mixing.md "Benchmark files"), with their image fingerprints in the indices' version."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from medmo_data.formats.tables import MAX_METADATA_BYTES, FileRefused, check_regular, read_small

from .decontam import BENCHMARKS, BY_SOURCE, PMC_BENCHMARKS, PMCID, benchmark_name
from .fingerprint import FINGERPRINT_VERSION, HASH_COLUMN, fingerprint, text_sha1

ITEM_COLS = {"benchmark": pl.String, "own": pl.String, "item_id": pl.String, "prompt": pl.String,
             "prompt_sha1": pl.String, "shas": pl.List(pl.String), "dhashes": pl.List(pl.Int64),
             "pmcids": pl.List(pl.String), "thumbs": pl.List(pl.Binary)}


def items_from_index(df: pl.DataFrame, source: str) -> pl.DataFrame:
    """Test items from one built source's index rows."""
    bench = BY_SOURCE.get(source, f"{source}:test")
    return df.select(
        pl.lit(bench).alias("benchmark"), pl.lit(source).alias("own"), pl.col("id").alias("item_id"),
        pl.col("prompt"), pl.col("prompt_norm_sha1").alias("prompt_sha1"), pl.col("image_hash").alias("shas"),
        pl.col("image_dhash").alias("dhashes"),
        (pl.col("id").str.to_uppercase().str.extract_all(PMCID.pattern) if bench in PMC_BENCHMARKS
         else pl.lit([], dtype=pl.List(pl.String))).alias("pmcids"),
        pl.col("image_thumb").fill_null([]).alias("thumbs"),
    ).cast(ITEM_COLS)


def _text(path: Path) -> str:
    data = _refused_as_value_error(read_small, path, MAX_METADATA_BYTES)
    return data.decode("utf-8").removeprefix("\ufeff")  # a bad byte: UnicodeDecodeError, a ValueError


def _refused_as_value_error(read: Any, *args: Any) -> Any:
    """Regular files only (a FIFO named as a benchmark file would block `mix` forever), and capped; a refusal
    is the ValueError `mix` reports with the file's name, so its reason only."""
    try:
        return read(*args)
    except FileRefused as exc:
        raise ValueError(exc.reason.replace("_", " ")) from exc


def _rows(path: Path) -> list[dict[str, Any]]:
    suf = path.suffix.lower()
    if suf == ".jsonl":
        # split on newlines only: JSON strings may hold a raw U+2028, which splitlines() would cut at
        return [json.loads(line) for line in _text(path).split("\n") if line.strip()]
    if suf == ".json":
        data = json.loads(_text(path))
        data = data.get("data", data) if isinstance(data, dict) else data
        if isinstance(data, dict):  # e.g. PubMedQA ori_pqal.json: {PMID: {...}}, the key is the id
            return [{"id": k, **v} if isinstance(v, dict) else {"id": k, "question": v} for k, v in data.items()]
        return list(data)
    if suf in (".csv", ".tsv"):
        return list(csv.DictReader(io.StringIO(_text(path), newline=""), delimiter="\t" if suf == ".tsv" else ","))
    if suf == ".parquet":
        _refused_as_value_error(check_regular, path)
        return pl.read_parquet(path).to_dicts()
    raise ValueError(f"benchmark files are .jsonl, .json, .csv, .tsv or .parquet, not {suf or 'no suffix'}")


Q_KEYS = ("question", "Question", "QUESTION", "problem", "input", "prompt", "text", "query", "sent1")
ID_KEYS = ("id", "qid", "item_id", "question_id", "uid", "index")
IMG_KEYS = ("image", "image_path", "img_name", "Figure_path", "figure", "img", "image_name")


def _first(row: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for k in keys:
        if row.get(k) not in (None, ""):
            return row[k]
    return None


def _image_print(src: Path | bytes, version: int) -> tuple[str, int, bytes] | str:
    """The image's fingerprints (a file, or the bytes of a hub parquet's image struct), or why it could not be
    read (the decoder's reject reason)."""
    from medmo_data.pixels.decode import decode
    from medmo_data.pixels.transform import DecodeError
    from medmo_data.recipe import ImageSource

    try:
        img = decode(ImageSource(data=src) if isinstance(src, bytes) else ImageSource(path=str(src))).image()
    except DecodeError as exc:
        return exc.reason
    except Exception as exc:  # noqa: BLE001 - counted and reported by the caller, never silently dropped
        return type(exc).__name__
    return fingerprint(img, version=version)


def _precomputed(r: dict[str, Any], version: int, where: str) -> tuple[list[str], list[int]]:
    """A row's own exact hash and dHash: `image_sha256` is version 1, `image_hash` version 2 (or the row's
    `fingerprint_version`). Values of another version than the indices' would never match: an error."""
    given = [k for _, k in sorted(HASH_COLUMN.items()) if r.get(k) not in (None, "")]
    key = HASH_COLUMN[version] if HASH_COLUMN.get(version) in given else next(iter(given), None)
    if key is None and r.get("image_dhash") in (None, ""):
        return [], []
    have = int(r.get("fingerprint_version") or (1 if key == HASH_COLUMN[1] else FINGERPRINT_VERSION))
    if have != version:
        raise ValueError(f"{where}: precomputed image fingerprints are version {have}, the indices version "
                         f"{version}; give the image file or `{HASH_COLUMN.get(version)}`/`image_dhash` of "
                         f"version {version} (docs/mixing.md#fingerprints)")
    return ([str(r[key])] if key else []), ([int(r["image_dhash"])] if r.get("image_dhash") not in (None, "") else [])


@dataclass
class BenchmarkFile:
    """One benchmark file's test items, and the images its rows name that could not be fingerprinted: those
    items can only be matched by text, so a copy of their image in a training source would not be found."""

    items: pl.DataFrame
    images: int = 0  # rows that name an image file (not precomputed hashes)
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (image as named, reason)


def items_from_file(name: str, path: Path, version: int = FINGERPRINT_VERSION) -> pl.DataFrame:
    """Test items of one benchmark file (docs/mixing.md): question, optional id, image, hashes, PMCID;
    images are fingerprinted in `version`, the one of the indices they are compared with."""
    return read_benchmark(name, path, version).items


def read_benchmark(name: str, path: Path, version: int = FINGERPRINT_VERSION) -> BenchmarkFile:
    """`items_from_file`, with the count of named images and the ones that could not be read."""
    bench = benchmark_name(name)
    own = BENCHMARKS.get(bench, {}).get("source")
    rows, images, unreadable = [], 0, []
    first = None
    for i, r in enumerate(_rows(path)):
        if not isinstance(r, dict):
            raise ValueError(f"row {i} is a {type(r).__name__}, not an object with a question or image")
        first = r if first is None else first
        if isinstance(r.get("data"), dict):  # openlifescienceai layout: {"id", "data": {"Question", ...}}
            r = {**r["data"], "id": r.get("id")}
        q = _first(r, Q_KEYS)
        q = q if isinstance(q, str) else ("" if q is None else str(q))
        rid = str(_first(r, ID_KEYS) if _first(r, ID_KEYS) is not None else i)
        img, thumbs = _first(r, IMG_KEYS), []
        if isinstance(img, dict):  # a hub parquet's image feature: {"bytes": ..., "path": ...}
            named = img.get("path") if isinstance(img.get("path"), str) else None
            img = img.get("bytes") if isinstance(img.get("bytes"), bytes) and img.get("bytes") else named
        else:
            named = img if isinstance(img, str) else None
        try:
            shas, dh = _precomputed(r, version, f"{path} row {i}")
        except ValueError:
            if not isinstance(img, (str, bytes)):  # no image to fingerprint instead
                raise
            shas, dh = [], []
        pmc = PMCID.findall(" ".join(str(x) for x in (rid, named, r.get("pmcid")) if x)) if bench in PMC_BENCHMARKS else []
        if isinstance(img, (str, bytes)) and img and not shas:
            images += 1
            fp = _image_print(img if isinstance(img, bytes) else path.parent / img, version)
            if isinstance(fp, str):
                unreadable.append((f"row {i} image bytes" if isinstance(img, bytes) else img, fp))
            else:
                shas, dh, thumbs = [fp[0]], [fp[1]], [fp[2]]
        rows.append({"benchmark": bench, "own": own, "item_id": rid, "prompt": q,
                     "prompt_sha1": text_sha1(q) if q else "", "shas": shas, "dhashes": dh,
                     "pmcids": [p.upper() for p in pmc], "thumbs": thumbs})
    if not any(r["prompt"] or r["shas"] or r["dhashes"] or r["pmcids"] for r in rows) and not images:
        raise ValueError(_nothing_to_match(path, first))
    return BenchmarkFile(pl.DataFrame(rows, schema=ITEM_COLS), images, unreadable)


def _nothing_to_match(path: Path, first: dict[str, Any] | None) -> str:
    """Why a file gave no item anything to match on: no rows, or none of the columns `mix` reads (e.g. a CSV
    without a header row, as MMLU's test CSVs ship: its first question became the column names)."""
    if first is None:
        return "the file has no rows"
    seen = ", ".join(repr(k)[:40] for k in list(first)[:8])
    return (f"no row has a question, an image or an image hash; its columns are {seen}; questions are read from "
            f"{', '.join(Q_KEYS)} (docs/mixing.md, Benchmark files)")
