"""Readers shared by recipes: JSON/JSONL/CSV/Parquet with line-level rejects, HF image cells, chat
builders. Recipes stay short and read like the dataset's README because the plumbing lives here."""

from __future__ import annotations

import csv
import json
import math
import os
import re
import stat
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from medmo_data.recipe import ImageSource, Reject, SourceError
from medmo_data.schema import image, turn

MAX_METADATA_BYTES = 2 << 30  # a whole-file JSON read (load_json) is refused above this
MAX_LINE_BYTES = 256 << 20  # one JSON Lines record; a longer line is a reject, never read whole
MAX_RECORD_FILE_BYTES = 256 << 20  # one record's own file (a report, an XML document, a label file)


class FileRefused(SourceError):
    """A file refused before it is read, with the reject reason a caller that reads one file per record
    records (`not_a_regular_file`, `file_too_large`, `missing_file`, `unreadable_file`); a caller that
    needs the file for the whole source lets it stop the build as the SourceError it is."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def check_regular(path: Path) -> int:
    """Size of `path`, checked without opening it: a FIFO, socket or device in the input would block a
    reader forever (or never end), so it is refused before any open()."""
    try:
        st = os.stat(path)
    except FileNotFoundError as exc:
        raise FileRefused("missing_file", f"{path}: missing") from exc
    except OSError as exc:
        raise FileRefused("unreadable_file", f"{path}: cannot stat ({exc.strerror or exc})") from exc
    if not stat.S_ISREG(st.st_mode):
        raise FileRefused("not_a_regular_file", f"{path}: not a regular file (a FIFO, socket, device or folder)")
    return st.st_size


def read_small(path: Path, cap: int = MAX_RECORD_FILE_BYTES) -> bytes:
    """A whole file that is read at once (a report, an XML document, a list): refused before open() when it
    is not a regular file or is over `cap`, and read at the size the stat gave (+1 to see a file that grew
    since, still capped). The image decoder (`pixels.decode`) reads its files the same way under its own
    reject reasons; the two steps do not import each other (tests/test_layout.py)."""
    size = check_regular(path)
    if size > cap:
        raise FileRefused("file_too_large", f"{path}: {size} bytes is over the {cap}-byte cap of a whole-file read")
    try:
        with open(path, "rb") as f:
            data = f.read(size + 1)  # not read(cap + 1): that allocates the whole cap for every file
            if len(data) > size:
                data += f.read(cap + 1 - len(data))
    except FileNotFoundError as exc:
        raise FileRefused("missing_file", f"{path}: missing") from exc
    except OSError as exc:
        raise FileRefused("unreadable_file", f"{path}: cannot read ({exc.strerror or exc})") from exc
    if len(data) > cap:
        raise FileRefused("file_too_large", f"{path}: grew over the {cap}-byte cap while read")
    return data


def load_json(path: Path) -> Any:
    """A whole JSON file (small metadata files only); a broken file stops the build with exit 2."""
    data = read_small(path, MAX_METADATA_BYTES)
    try:
        return json.loads(data.decode("utf-8").removeprefix("\ufeff"))
    except UnicodeDecodeError as exc:
        raise SourceError(f"{path}: not UTF-8 at byte {exc.start}") from exc
    except json.JSONDecodeError as exc:
        raise SourceError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}") from exc
    except RecursionError as exc:
        raise SourceError(f"{path}: JSON nested too deeply to read") from exc


def _capped_lines(f: Any) -> Iterator[bytes | None]:
    """Lines of a binary file, each read up to MAX_LINE_BYTES; a longer line is skipped (None), chunk by
    chunk, so no single line is ever held whole."""
    while line := f.readline(MAX_LINE_BYTES + 1):
        if len(line) <= MAX_LINE_BYTES or line.endswith(b"\n"):
            yield line
            continue
        while (rest := f.readline(1 << 20)) and not rest.endswith(b"\n"):
            pass
        yield None


def iter_jsonl(path: Path) -> Iterator[tuple[str, dict[str, Any]] | Reject]:
    """(line id, object) per line; malformed, non-UTF-8, too deeply nested or non-object lines become
    Rejects. A UTF-8 byte order mark before the first line is skipped (as CSV reading does)."""
    check_regular(path)
    name = path.name
    with open(path, "rb") as f:
        for n, raw in enumerate(_capped_lines(f), 1):
            lid = f"{name}:{n}"
            if raw is None:
                yield Reject(lid, "malformed_json", f"{path}:{n}: line longer than {MAX_LINE_BYTES} bytes, skipped")
                continue
            if n == 1:
                raw = raw.removeprefix(b"\xef\xbb\xbf")
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as exc:
                yield Reject(lid, "non_utf8_text", f"{path}:{n}: byte {exc.start} is not UTF-8")
                continue
            except json.JSONDecodeError as exc:
                yield Reject(lid, "malformed_json", f"{path}:{n}: {exc.msg}")
                continue
            except RecursionError:
                yield Reject(lid, "malformed_json", f"{path}:{n}: nested too deeply to read")
                continue
            if not isinstance(obj, dict):
                yield Reject(lid, "malformed_json", f"{path}:{n}: expected an object")
                continue
            yield lid, obj


def _has_surrogates(cells: list[str]) -> bool:
    return any(c and not c.isascii() and any("\udc80" <= ch <= "\udcff" for ch in c) for c in cells)


class _Lines:
    """The file's lines as csv.reader reads them, kept since the last row, so that the lines an unclosed
    quote swallowed can be read again."""

    def __init__(self, lines: Iterator[str]) -> None:
        self.lines = lines
        self.buf: list[str] = []

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = next(self.lines)
        self.buf.append(line)
        return line


def iter_csv(path: Path, required: Sequence[str] = (), id_column: str | None = None, **reader_kw: Any
             ) -> Iterator[tuple[str, dict[str, str]] | Reject]:
    """(row id, row) per data row of a UTF-8 CSV; bad rows become Rejects and reading goes on.

    The row id is `<file>:<line>`, or, for rows with every field, their `id_column` value when given and
    readable (so rejects are named by the source's own id). Non-UTF-8 bytes reject only their row (the file is read with
    surrogateescape). Extra trailing empty fields (NIH's `,,,`) are tolerated; a short row is not.
    A quote that is never closed (or closed in the middle of a field) would swallow the following lines into
    one field: the reader is strict, rejects the row naming the line the quote opened on, and reads the
    swallowed lines again as rows.
    """
    csv.field_size_limit(1 << 30)  # clinical notes exceed the 128 KiB default
    check_regular(path)
    try:
        f = open(path, encoding="utf-8", errors="surrogateescape", newline="")  # noqa: SIM115 - generator owns it
    except FileNotFoundError as exc:
        raise SourceError(f"{path}: missing") from exc
    kw = {"strict": True, **reader_kw}
    with f:
        lines = _Lines(f)
        reader = csv.reader(lines, **kw)
        try:
            header = next(reader)
        except StopIteration as exc:
            raise SourceError(f"{path}: empty CSV") from exc
        except csv.Error as exc:
            raise SourceError(f"{path}: header line {reader.line_num}: {exc}") from exc
        if _has_surrogates(header):
            raise SourceError(f"{path}: header is not UTF-8")
        header = [h.strip().lstrip("\ufeff") for h in header]
        missing = [c for c in required if c not in header]
        if missing:
            raise SourceError(f"{path}: header lacks column(s) {missing}; found {header}")
        yield from _csv_rows(path, header, reader, lines, 0, id_column, kw)


def _csv_rows(path: Path, header: list[str], reader: Any, lines: _Lines, offset: int, id_column: str | None,
              kw: dict[str, Any]) -> Iterator[tuple[str, dict[str, str]] | Reject]:
    width = len(header)
    needed = len([h for h in header if h])
    while True:
        lines.buf.clear()
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            end = offset + reader.line_num
            start = end - len(lines.buf) + 1
            swallowed = lines.buf[1:]
            if not swallowed:
                yield Reject(f"{path.name}:{end}", "malformed_csv", f"{path}:{end}: {exc}")
                continue
            yield Reject(f"{path.name}:{start}", "malformed_csv",
                         f"{path}:{start}: the quoted field opened on line {start} is not closed properly ({exc}); "
                         f"lines {start + 1}-{end} are read again as rows")
            again = _Lines(iter(swallowed))
            yield from _csv_rows(path, header, csv.reader(again, **kw), again, start, id_column, kw)
            continue
        line = offset + reader.line_num
        rid = f"{path.name}:{line}"
        if not any(c.strip() for c in row):
            continue
        if id_column in header and len(row) >= needed:
            own = row[header.index(id_column)].strip()  # a short row's columns may be shifted: line id
            if own and not _has_surrogates([own]):
                rid = own
        if _has_surrogates(row):
            yield Reject(rid, "non_utf8_text", f"{path}:{line}: bytes that are not UTF-8")
            continue
        if len(row) < needed:
            yield Reject(rid, "malformed_csv", f"{path}:{line}: {len(row)} fields, header has {width}")
            continue
        if len(row) > width and any(c.strip() for c in row[width:]):
            yield Reject(rid, "malformed_csv", f"{path}:{line}: extra non-empty fields")
            continue
        yield rid, dict(zip(header, row, strict=False))  # trailing empty fields dropped


def iter_parquet(paths: Iterable[Path], columns: Sequence[str] | None = None,
                 batch_size: int = 256) -> Iterator[dict[str, Any]]:
    """Rows of Parquet files in order, one row group at a time (memory bounded by the largest row group;
    pyarrow's iter_batches grows with the file)."""
    import pyarrow.parquet as pq

    for p in paths:
        try:
            pf = pq.ParquetFile(p)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for bad files
            raise SourceError(f"{p}: unreadable Parquet ({exc})") from exc
        if columns:
            lacking = [c for c in columns if c not in pf.schema_arrow.names]
            if lacking:
                raise SourceError(f"{p}: no column(s) {lacking}; has {pf.schema_arrow.names}")
        for g in range(pf.num_row_groups):
            table = pf.read_row_group(g, columns=list(columns) if columns else None)
            for batch in table.to_batches(max_chunksize=batch_size):
                yield from batch.to_pylist()
            del table


def hf_splits(root: Path, names: dict[str, str]) -> dict[str, list[Path]]:
    """Parquet files of a Hugging Face dataset repo by our split name, e.g.
    {"train": [data/train-00000-of-00001-xxx.parquet]} for names {"train": "train", "test": "test"}."""
    found: dict[str, list[Path]] = {}
    for ours, theirs in names.items():
        files = sorted(root.glob(f"**/{theirs}-*.parquet")) or sorted(root.glob(f"**/{theirs}/*.parquet"))
        if files:
            found[ours] = files
    return found


def hf_image(cell: Any, sid: str) -> ImageSource | Reject:
    """An HF `Image` feature cell ({"bytes", "path"}) as an ImageSource (bytes kept, nothing re-encoded),
    or the `missing_image` Reject of sample `sid` when the cell holds no bytes."""
    if isinstance(cell, dict) and cell.get("bytes"):
        return ImageSource(data=cell["bytes"])
    if isinstance(cell, (bytes, bytearray)):
        return ImageSource(data=bytes(cell))
    return Reject(sid, "missing_image", f"{sid}: image cell has no bytes")


def vqa_messages(question: str, answer: str, n_images: int = 1, system: str | None = None) -> list[dict]:
    """User: the images then the question; assistant: the answer."""
    msgs = [turn("system", system)] if system else []
    msgs += [turn("user", *([image()] * n_images), question), turn("assistant", answer)]
    return msgs


def clean(text: Any) -> str:
    """A cell as stripped text (ints from JSON answers become strings)."""
    if type(text) is str:  # most cells: str() of a str is itself
        return text.strip()
    if text is None:
        return ""
    if isinstance(text, float) and not math.isfinite(text):
        return ""  # a NaN / Infinity cell is a missing value (pandas, JSON NaN), never the text "nan"
    if isinstance(text, float) and text.is_integer():
        text = int(text)
    return str(text).strip()


_PMCID = re.compile(r"^(PMC\d+)")


def pmcid(figure: str) -> str:
    """The PubMed Central article id a figure file is named after (`PMC3017433_...jpg` -> `PMC3017433`),
    or "" (PMC-VQA figures and PMC-OA subfigures share it: the decontamination key between them)."""
    m = _PMCID.match(Path(figure).name)
    return m.group(1) if m else ""
