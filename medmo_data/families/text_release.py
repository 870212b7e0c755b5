"""Plumbing shared by the stage-3 text releases that ship as one JSON array (ChatDoctor, AlpaCare,
FreedomIntelligence's medical-o1 / R1-distill) or as a Hugging Face parquet re-packaging.

- `check_options` validates a recipe's `-o key=value` options (unknown names and values exit 2).
- `json_array_rows` streams a top-level JSON array record by record (`json_stream.iter_json_items`), so
  memory stays flat and one bad record is a counted `Reject` (`malformed_json`, `non_utf8_text`), not a
  dead build.
- `release_rows` finds a source's JSON file or its hub parquet files and yields `(id, row)` pairs; ids
  are the 0-based row index (`000012`), identical for the JSON original and an order-preserving hub copy.
- `reasoning_samples` turns question / chain-of-thought / answer rows into `reasoning` samples.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from medmo_data.formats.json_stream import iter_json_items
from medmo_data.formats.tables import clean, hf_splits, iter_parquet
from medmo_data.recipe import RawSample, Reject, SourceError

from .text_qa import THINK_STYLES, reasoning_messages

Rows = Iterator[tuple[str, dict[str, Any]] | Reject]
THINK_OPTION = {"think": THINK_STYLES}  # first value is the default


def check_options(options: Mapping[str, str], allowed: Mapping[str, Sequence[str] | None],
                  recipe: str) -> dict[str, str]:
    """Options with defaults filled in. `allowed` maps a name to its values (the first is the default)
    or to None for a free value the recipe checks itself. Anything else raises SourceError (exit 2)."""
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise SourceError(f"{recipe}: unknown option(s) {unknown}; known: {sorted(allowed)}")
    out: dict[str, str] = {}
    for name, values in allowed.items():
        if values is None:
            if name in options:
                out[name] = str(options[name]).strip()
            continue
        value = str(options.get(name, values[0])).strip()
        if value not in values:
            raise SourceError(f"{recipe}: option {name}={value!r} must be one of {list(values)}")
        out[name] = value
    return out


def int_option(value: str | None, name: str, default: int, recipe: str, minimum: int = 1) -> int:
    if value is None or value == "":
        return default
    try:
        n = int(value)
    except ValueError as exc:
        raise SourceError(f"{recipe}: option {name}={value!r} is not an integer") from exc
    if n < minimum:
        raise SourceError(f"{recipe}: option {name}={n} must be >= {minimum}")
    return n


def json_array_rows(path: Path) -> Rows:
    """(row index, object) per element of a top-level JSON array, streamed (`json_stream`): elements
    that are not objects, do not parse, or hold non-UTF-8 bytes are Rejects with the same `000012` ids."""
    prefix = f"{path.name}:"
    for item in iter_json_items(path):
        if isinstance(item, Reject):
            tail = item.id[len(prefix):] if item.id.startswith(prefix) else ""
            yield Reject(f"{int(tail):06d}", item.reason, item.detail) if tail.isdigit() else item
            continue
        key, obj = item
        rid = f"{int(key):06d}" if key.isdigit() else key
        if not isinstance(obj, dict):
            yield Reject(rid, "malformed_json", f"{path.name}[{key}]: expected an object, got {type(obj).__name__}")
        else:
            yield rid, obj


def find_file(root: Path, names: Sequence[str]) -> Path | None:
    """The first of `names` directly under root, else anywhere below it (sorted, so deterministic)."""
    for n in names:
        if (root / n).is_file():
            return root / n
    for n in names:
        hits = sorted(p for p in root.rglob(n) if p.is_file())
        if hits:
            return hits[0]
    return None


def release_rows(root: Path, json_names: Sequence[str], columns: Sequence[str], recipe: str,
                 hub_splits: Sequence[str] = ("train",)) -> tuple[str, Rows]:
    """The name of the release file found under root (its JSON file, or its first hub parquet file)
    and its rows.

    Rows of every parquet file are numbered on across files in file order. `columns` must exist in
    the parquet schema (a JSON record that lacks one is the recipe's to reject)."""
    if (path := find_file(root, json_names)) is not None:
        return path.name, json_array_rows(path)
    files = [f for split in hub_splits for f in hf_splits(root, {split: split}).get(split, [])]
    if files:
        def rows() -> Rows:
            for i, row in enumerate(iter_parquet(files, columns)):
                yield f"{i:06d}", row
        return files[0].name, rows()
    raise SourceError(f"{root}: {recipe}: found neither {' / '.join(json_names)} nor hub parquet files "
                      f"({'|'.join(hub_splits)}-*.parquet)")


def first_field(row: Mapping[str, Any], keys: Sequence[str]) -> tuple[bool, str]:
    """(present, stripped text) of the first of `keys` present in row (spelling variants of one field)."""
    for k in keys:
        if k in row:
            return True, clean(row[k])
    return False, ""


def strip_think(text: str) -> str:
    """Reasoning stored with its own `<think>` wrapper would nest inside ours: drop the wrapper."""
    t = text.strip()
    if t.startswith("<think>"):
        t = t[len("<think>"):]
    if t.endswith("</think>"):
        t = t[: -len("</think>")]
    return t.strip()


def reasoning_samples(rows: Rows, question: Sequence[str], reasoning: Sequence[str], answer: Sequence[str],
                      think: str, meta: Mapping[str, Any], id_prefix: str = "") -> Iterator[RawSample | Reject]:
    """One `reasoning` sample per row: user = question, assistant = reasoning (in `think` style) + answer;
    `target` keeps {"reasoning", "answer"} apart so either can be scored or dropped later.
    Each of question / reasoning / answer lists the spellings of that column, first match wins."""
    for item in rows:
        if isinstance(item, Reject):
            yield Reject(id_prefix + item.id, item.reason, item.detail)
            continue
        rid, row = id_prefix + item[0], item[1]
        values = {}
        for name, keys in (("question", question), ("reasoning", reasoning), ("answer", answer)):
            present, values[name] = first_field(row, keys)
            if not present:
                yield Reject(rid, "missing_field", f"no {' / '.join(keys)} field; has {sorted(row)[:8]}")
                break
        else:
            q, r, a = values["question"], strip_think(values["reasoning"]), values["answer"]
            empty = [k for k, v in (("question", q), ("reasoning", r), ("answer", a)) if not v]
            if empty:
                yield Reject(rid, "empty_text", f"empty {', '.join(empty)}")
                continue
            yield RawSample(id=rid, split="train", task="reasoning",
                            messages=reasoning_messages(q, r, a, think=think),
                            target={"reasoning": r, "answer": a}, meta=dict(meta))


def reasoning_release(root: Path, options: Mapping[str, str], recipe: str, files: Mapping[str, str],
                      question: Sequence[str], reasoning: Sequence[str], answer: Sequence[str]
                      ) -> Iterator[RawSample | Reject]:
    """A reasoning release shipped as one JSON array per config (`-o config=`, the first of `files` is
    the default) read with `-o think=`; ids are `<config>-<row index>`."""
    opts = check_options(options, {"config": tuple(files), **THINK_OPTION}, recipe)
    name = files[opts["config"]]
    path = find_file(root, [name])
    if path is None:
        raise SourceError(f"{root}: {recipe}: no {name} (config {opts['config']})")
    yield from reasoning_samples(json_array_rows(path), question, reasoning, answer, opts["think"],
                                 {"config": opts["config"], "file": path.name}, id_prefix=f"{opts['config']}-")
