"""Stream the items of one huge JSON array (or the entries of one huge JSON object) without loading it.

Some releases ship a single JSON document far larger than memory should hold: Medical Meadow's
`medical_meadow_cord19.json` is one 1.38 GB array, PubMedQA's `ori_pqaa.json` one object of 211k PMIDs.
`iter_json_items` reads such a file in chunks through an incremental UTF-8 decoder and hands each top-level
item to `json.JSONDecoder.raw_decode`, so memory is bounded by the chunk size plus the largest single item,
never by the file.

Bad input becomes `Reject`s, like `sources.iter_jsonl` does for JSON Lines:
- an item holding bytes that are not UTF-8 -> `non_utf8_text` (bytes are decoded with `surrogateescape`, so
  one bad byte spoils only the item it sits in);
- an item that does not parse -> `malformed_json`; the reader then re-synchronises on the next line that
  starts at the first item's indentation (a raw newline cannot occur inside a JSON string, so in a
  pretty-printed file such a line is always the start of a top-level item). A single-line (minified) file
  cannot be re-synchronised: the rest of it becomes one reject and reading stops.
A file that is missing, or whose top level is neither an array nor an object, is a `SourceError` (exit 2).
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from medmo_data.recipe import Reject, SourceError

_DECODER = json.JSONDecoder()
_NON_WS = re.compile(r"[^ \t\n\r]")
_SURROGATE = re.compile("[\ud800-\udfff]")  # what undecodable bytes become under surrogateescape
CHUNK = 1 << 20
MAX_ITEM_CHARS = 512 * 1024 * 1024  # one item larger than this is refused rather than buffered


class _Malformed(ValueError):
    pass


class _Buffer:
    """Decoded text of a binary file, read chunk by chunk; `pos` is the read position in `text`."""

    def __init__(self, f: BinaryIO, chunk_size: int) -> None:
        self.f = f
        self.chunk_size = chunk_size
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape")
        self.text = ""
        self.pos = 0
        self.consumed = 0  # characters dropped from the front of `text` so far
        self.eof = False

    def where(self) -> int:
        return self.consumed + self.pos

    def more(self) -> bool:
        """Append the next chunk (dropping what was already read); False at end of file."""
        if self.eof:
            return False
        data = self.f.read(self.chunk_size)
        if not data:
            self.eof = True
        new = self.decoder.decode(data, final=not data)
        if self.pos:
            self.consumed += self.pos
            self.text = self.text[self.pos:]
            self.pos = 0
        self.text += new
        if len(self.text) > MAX_ITEM_CHARS:
            raise _Malformed(f"an item is larger than {MAX_ITEM_CHARS} characters")
        return bool(data) or bool(new)

    def peek(self) -> str | None:
        """The next non-blank character (position moved onto it), or None at end of file."""
        while True:
            m = _NON_WS.search(self.text, self.pos)
            if m:
                self.pos = m.start()
                return self.text[self.pos]
            self.pos = len(self.text)
            if not self.more():
                return None

    def value(self) -> Any:
        """Decode one JSON value at the read position, reading more text while it may be incomplete."""
        while True:
            try:
                obj, end = _DECODER.raw_decode(self.text, self.pos)
            except RecursionError as exc:
                raise _Malformed(f"nested too deeply to read at character {self.where()}") from exc
            except json.JSONDecodeError as exc:
                incomplete = exc.msg.startswith("Unterminated string") or len(self.text) - exc.pos <= 64
                if incomplete and self.more():
                    continue
                raise _Malformed(f"{exc.msg} at character {self.consumed + exc.pos}") from exc
            cut = end >= len(self.text) or (
                isinstance(obj, (int, float)) and not isinstance(obj, bool) and len(self.text) - end <= 64)
            if cut and self.more():
                continue  # a number near the chunk edge may go on ("12" of "123", "-7" of "-7.25e3")
            self.pos = end
            return obj

    def resync(self, indent: int, opener: str) -> bool:
        """Move to the next line that starts an item at `indent` columns; False when none is left."""
        pattern = re.compile("\n" + " " * indent + re.escape(opener))
        self.pos = min(self.pos + 1, len(self.text))
        while True:
            m = pattern.search(self.text, self.pos)
            if m:
                self.pos = m.start() + 1 + indent
                return True
            self.pos = max(self.pos, len(self.text) - indent - 2)  # keep a possible partial match
            if not self.more():
                return False


def has_bad_text(value: Any) -> bool:
    """True when a decoded value holds a lone surrogate (an undecodable byte or an invalid escape)."""
    if isinstance(value, str):
        return _SURROGATE.search(value) is not None
    if isinstance(value, dict):
        return any(has_bad_text(k) or has_bad_text(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_bad_text(v) for v in value)
    return False


def _column(buf: _Buffer) -> int | None:
    """Indentation of the item at the read position, or None when it does not start its own line."""
    nl = buf.text.rfind("\n", 0, buf.pos)
    if nl < 0 or buf.text[nl + 1:buf.pos].strip(" "):
        return None
    return buf.pos - nl - 1


def iter_json_items(path: Path, chunk_size: int | None = None) -> Iterator[tuple[str, Any] | Reject]:
    """(key, value) per top-level item: the index as a string for an array, the key for an object."""
    from .tables import check_regular

    check_regular(path)
    try:
        f = open(path, "rb")  # noqa: SIM115 - the generator owns the file
    except FileNotFoundError as exc:
        raise SourceError(f"{path}: missing") from exc
    with f:
        buf = _Buffer(f, chunk_size or CHUNK)
        first = buf.peek()
        if first == "\ufeff":
            buf.pos += 1
            first = buf.peek()
        if first not in ("[", "{"):
            raise SourceError(f"{path}: not a JSON array or object (starts with {first!r})")
        close, is_object = ("}", True) if first == "{" else ("]", False)
        buf.pos += 1
        index = 0
        need_comma = False
        indent: int | None = None
        opener = '"' if is_object else ""
        while True:
            c = buf.peek()
            if c is None:
                yield Reject(f"{path.name}:{index}", "malformed_json", f"{path}: ends before the closing {close!r}")
                return
            if c == close:
                return
            rid = f"{path.name}:{index}"
            try:
                if need_comma:
                    if c != ",":
                        raise _Malformed(f"expected ',' or {close!r} at character {buf.where()}")
                    buf.pos += 1
                    c = buf.peek()
                    if c == close:  # a trailing comma: tolerated
                        return
                    if c is None:
                        continue
                if indent is None and index == 0:
                    indent = _column(buf)
                    opener = opener or buf.text[buf.pos]
                if is_object:
                    key = buf.value()
                    if not isinstance(key, str):
                        raise _Malformed(f"object key is not a string at character {buf.where()}")
                    rid = key
                    if buf.peek() != ":":
                        raise _Malformed(f"expected ':' after key {key!r} at character {buf.where()}")
                    buf.pos += 1
                    if buf.peek() is None:
                        raise _Malformed("file ends after a key")
                else:
                    key = str(index)
                value = buf.value()
            except _Malformed as exc:
                yield Reject(rid, "malformed_json", f"{path}: item {index}: {exc}")
                index += 1
                need_comma = False
                if indent is None or not buf.resync(indent, opener):
                    if indent is None and buf.peek() not in (None, close):
                        yield Reject(f"{path.name}:{index}", "malformed_json",
                                     f"{path}: everything after item {index - 1} is unread: items do not start "
                                     "their own lines, so the reader cannot re-synchronise")
                    return
                continue
            index += 1
            need_comma = True
            try:
                bad_text = has_bad_text(value) or has_bad_text(key)
            except RecursionError:
                yield Reject(rid, "malformed_json", f"{path}: item {index - 1} is nested too deeply to read")
                continue
            if bad_text:
                yield Reject(rid, "non_utf8_text", f"{path}: item {index - 1} holds bytes that are not UTF-8")
                continue
            yield key, value


def iter_json_records(path: Path, chunk_size: int | None = None) -> Iterator[tuple[str, Any] | Reject]:
    """Records of a file that is either one JSON array (streamed) or JSON Lines, told apart by its first
    byte. Array items get ids `<file>:<index>`, lines `<file>:<line number>`."""
    from .tables import check_regular, iter_jsonl

    check_regular(path)
    try:
        with open(path, "rb") as f:
            head = f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    except FileNotFoundError as exc:
        raise SourceError(f"{path}: missing") from exc
    if head.startswith(b"["):
        for item in iter_json_items(path, chunk_size):
            yield item if isinstance(item, Reject) else (f"{path.name}:{item[0]}", item[1])
    else:
        yield from iter_jsonl(path)


def iter_json_objects(records: Iterator[tuple[str, Any] | Reject]) -> Iterator[tuple[str, dict] | Reject]:
    """Pass Rejects through and turn items that are not JSON objects into `malformed_json` Rejects."""
    for item in records:
        if isinstance(item, Reject) or isinstance(item[1], dict):
            yield item
        else:
            yield Reject(item[0], "malformed_json", "record is not an object")
