"""The Medical Meadow release shape (medAlpaca, `medalpaca/medical_meadow_*` on the Hugging Face hub).

Every Medical Meadow set is one Alpaca-style file: a JSON array of `{"instruction", "input", "output"}`
string triples, single `train` split, no ids (`kbressem/medAlpaca`, checked on `medical_meadow_small.json`).
The same rows also circulate as parquet (the hub's `refs/convert/parquet` branch, `default/train/0000.parquet`,
or the `lavita/medical-qa-datasets` config folders MedMO read), so a recipe accepts either: the named JSON
file anywhere under the input folder, else every `*.parquet` below it in sorted order.

Traps handled here, once for all the Meadow recipes:
- the files can be huge (`medical_meadow_cord19.json` is a single 1.38 GB array): JSON is streamed item by
  item (`json_stream`), parquet batch by batch; memory stays flat;
- the `instruction` is often a constant ("Answer this question truthfully") and the question lives in
  `input`: both are kept, instruction first (dropping or deduplicating on `instruction` collapses a set);
- an `input` that is empty or a placeholder (`<noinput>`, `N/A`, ...) is dropped from the prompt where the
  set allows it, and is a reject (`empty_text`) where the input is the question or the document;
- non-UTF-8 bytes, malformed items and rows whose fields are missing or not strings are counted rejects.
Ids are the 0-based row position (`0000042`), the same for the JSON file and an order-preserving parquet copy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from medmo_data.formats.json_stream import iter_json_records
from medmo_data.formats.tables import iter_parquet
from medmo_data.recipe import RawSample, Reject, SourceError

from .text_qa import instruction_messages

FIELDS = ("instruction", "input", "output")
PLACEHOLDERS = frozenset({"", "<noinput>", "noinput", "no input", "<no input>", "n/a", "na", "none", "null",
                          "nan", "-", "."})

Row = dict[str, str]
Builder = Callable[[str, Row, dict[str, Any]], RawSample | Reject]


def is_placeholder(text: str) -> bool:
    return text.strip().lower() in PLACEHOLDERS


def hub_patterns(json_names: Sequence[str]) -> list[str]:
    """What to fetch when --input is a hub id: the release JSON (and the card)."""
    return [*json_names, "README.md"]


def find_files(root: Path, json_names: Sequence[str]) -> tuple[str, list[Path]]:
    """("json", [file]) for the release JSON (first name that exists, at the top or anywhere below),
    else ("parquet", [files]); a folder with neither is a SourceError (exit 2)."""
    if not root.is_dir():
        raise SourceError(f"{root}: input folder does not exist")
    for name in json_names:
        if (root / name).is_file():
            return "json", [root / name]
        below = sorted(root.rglob(name))
        if below:
            return "json", [below[0]]
    parquet = sorted(root.rglob("*.parquet"))
    if parquet:
        return "parquet", parquet
    raise SourceError(f"{root}: none of {list(json_names)} and no *.parquet found")


def _check(rid: str, obj: Any) -> Row | Reject:
    if not isinstance(obj, dict):
        return Reject(rid, "malformed_record", f"expected an object with {FIELDS}, got {type(obj).__name__}")
    missing = [k for k in FIELDS if obj.get(k) is None]
    if missing:
        return Reject(rid, "missing_field", f"no {missing}")
    wrong = [k for k in FIELDS if not isinstance(obj[k], str)]
    if wrong:
        return Reject(rid, "malformed_record", f"{wrong} not strings")
    return {k: obj[k] for k in FIELDS}


def iter_rows(root: Path, json_names: Sequence[str]) -> Iterator[tuple[str, Row, str] | Reject]:
    """(id, {instruction, input, output}, file name) per row, ids by position; bad rows become Rejects."""
    kind, files = find_files(root, json_names)
    index = 0
    if kind == "json":
        for item in iter_json_records(files[0]):
            rid = f"{index:07d}"
            index += 1
            if isinstance(item, Reject):
                yield Reject(rid, item.reason, item.detail)
                continue
            row = _check(rid, item[1])
            yield row if isinstance(row, Reject) else (rid, row, files[0].name)
        return
    for path in files:
        for obj in iter_parquet([path], FIELDS):
            rid = f"{index:07d}"
            index += 1
            row = _check(rid, obj)
            yield row if isinstance(row, Reject) else (rid, row, path.name)


def records(root: Path, json_names: Sequence[str], task: str, input_required: bool = True,
            build: Builder | None = None) -> Iterator[RawSample | Reject]:
    """Samples of one Meadow set. Default: an instruction sample (instruction, blank line, input; the
    output as the answer); `build(id, row, meta)` replaces that for sets with structure (MedQA's options)."""
    for item in iter_rows(root, json_names):
        if isinstance(item, Reject):
            yield item
            continue
        rid, row, file = item
        meta = {"file": file}
        if is_placeholder(row["output"]):
            yield Reject(rid, "empty_text", f"output is empty or a placeholder ({row['output']!r})")
            continue
        if is_placeholder(row["input"]):
            if input_required:
                yield Reject(rid, "empty_text", f"input is empty or a placeholder ({row['input']!r})")
                continue
            row = dict(row, input="")
        if not row["instruction"].strip() and not row["input"]:
            yield Reject(rid, "empty_text", "instruction and input are both empty")
            continue
        if build is not None:
            yield build(rid, row, meta)
            continue
        yield RawSample(id=rid, split="train", task=task,
                        messages=instruction_messages(row["instruction"], row["input"], row["output"]),
                        target={"answer": row["output"].strip()}, meta=meta)
