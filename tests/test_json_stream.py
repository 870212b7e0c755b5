"""medmo_data.formats.json_stream: items of one big JSON array/object, streamed, with per-item rejects."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pytest

from medmo_data.formats.json_stream import iter_json_items, iter_json_records
from medmo_data.recipe import Reject, SourceError

ROWS = [{"instruction": "Summarise", "input": f"abstract {i} – é ü", "output": "t" * (i % 7)} for i in range(40)]


def _items(path: Path, chunk: int) -> list:
    return [x if isinstance(x, Reject) else x for x in iter_json_items(path, chunk_size=chunk)]


@pytest.mark.parametrize("chunk", [1, 7, 64, 1 << 20])
@pytest.mark.parametrize("indent", [4, None])
def test_array_round_trips_at_any_chunk_size(tmp_path, chunk, indent):
    p = tmp_path / "a.json"
    p.write_text(json.dumps(ROWS, indent=indent, ensure_ascii=False), encoding="utf-8")
    got = _items(p, chunk)
    assert got == [(str(i), r) for i, r in enumerate(ROWS)]


def test_numbers_cut_at_chunk_edges_and_object_top_level(tmp_path):
    p = tmp_path / "n.json"
    p.write_text('[123456789, -7.25e3, true, null, "x", [1, {"a": 2}]]')
    assert [v for _, v in iter_json_items(p, chunk_size=2)] == [123456789, -7250.0, True, None, "x", [1, {"a": 2}]]
    o = tmp_path / "o.json"
    o.write_text(json.dumps({"21645374": {"YEAR": None, "CONTEXTS": ["a", "b"]}, "9": {"YEAR": "2001"}}, indent=4))
    assert list(iter_json_items(o, chunk_size=3)) == [("21645374", {"YEAR": None, "CONTEXTS": ["a", "b"]}),
                                                       ("9", {"YEAR": "2001"})]


def test_bom_trailing_comma_and_empty(tmp_path):
    p = tmp_path / "b.json"
    p.write_bytes(b'\xef\xbb\xbf[ {"a": 1},\n {"a": 2},\n]')
    assert list(iter_json_items(p)) == [("0", {"a": 1}), ("1", {"a": 2})]
    e = tmp_path / "e.json"
    e.write_text("[]")
    assert list(iter_json_items(e)) == []


def test_non_utf8_byte_rejects_only_its_item(tmp_path):
    p = tmp_path / "u.json"
    raw = json.dumps(ROWS[:5], indent=4, ensure_ascii=False).encode()
    raw = raw.replace("abstract 1 – é ü".encode(), b"abstract 1 \xff\xfe")
    p.write_bytes(raw)
    for chunk in (1, 5, 1 << 20):
        got = list(iter_json_items(p, chunk_size=chunk))
        assert [g.reason if isinstance(g, Reject) else g[0] for g in got] == ["0", "non_utf8_text", "2", "3", "4"]
        assert got[1].id == "u.json:1"


def test_malformed_item_is_rejected_and_reading_resumes(tmp_path):
    p = tmp_path / "m.json"
    text = json.dumps(ROWS[:6], indent=4, ensure_ascii=False)
    text = text.replace('"input": "abstract 2', '"input" "abstract 2', 1)  # missing colon in item 2
    p.write_text(text, encoding="utf-8")
    got = list(iter_json_items(p, chunk_size=16))
    assert [g.reason if isinstance(g, Reject) else g[0] for g in got] == ["0", "1", "malformed_json", "3", "4", "5"]
    assert got[2].id == "m.json:2" and "Expecting ':' delimiter" in got[2].detail
    assert got[3][1] == ROWS[3]


def test_minified_malformed_item_rejects_the_unreadable_rest(tmp_path):
    p = tmp_path / "m.json"
    p.write_text(json.dumps(ROWS[:4]).replace('"input": "abstract 1', '"input" "abstract 1', 1))
    got = list(iter_json_items(p, chunk_size=8))
    assert got[0] == ("0", ROWS[0])
    assert [g.reason for g in got[1:]] == ["malformed_json", "malformed_json"]
    assert "cannot re-synchronise" in got[2].detail


def test_truncated_file_is_a_reject(tmp_path):
    p = tmp_path / "t.json"
    p.write_text(json.dumps(ROWS[:3], indent=4)[:-40])
    got = list(iter_json_items(p, chunk_size=16))
    assert [g.reason if isinstance(g, Reject) else g[0] for g in got] == ["0", "1", "malformed_json"]


def test_not_a_container_or_missing_is_source_error(tmp_path):
    p = tmp_path / "s.json"
    p.write_text('"just a string"')
    with pytest.raises(SourceError, match="not a JSON array or object"):
        list(iter_json_items(p))
    with pytest.raises(SourceError, match="missing"):
        list(iter_json_items(tmp_path / "nope.json"))


def test_records_tell_array_from_json_lines(tmp_path):
    a = tmp_path / "a.json"
    a.write_text(json.dumps(ROWS[:2]))
    assert list(iter_json_records(a)) == [("a.json:0", ROWS[0]), ("a.json:1", ROWS[1])]
    j = tmp_path / "b.jsonl"
    j.write_bytes(b'{"x": 1}\n{bad\n{"x": "\xff"}\n')
    got = list(iter_json_records(j))
    assert got[0] == ("b.jsonl:1", {"x": 1})
    assert [g.reason for g in got[1:]] == ["malformed_json", "non_utf8_text"]


def _peak(path: Path) -> tuple[int, int]:
    tracemalloc.start()
    try:
        n = sum(1 for _ in iter_json_items(path, chunk_size=64 * 1024))
        return n, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_stays_flat_as_the_array_grows(tmp_path):
    """Peak traced memory for a 10x larger array stays within 1.5x (and far below the file size)."""
    row = {"instruction": "Please summerize the given abstract to a title", "input": "x" * 300, "output": "y" * 40}
    small, big = tmp_path / "small.json", tmp_path / "big.json"
    for path, n in ((small, 3_000), (big, 30_000)):
        with open(path, "w") as f:
            f.write("[\n")
            f.write(",\n".join("    " + json.dumps(dict(row, id=i)) for i in range(n)))
            f.write("\n]")
    n_small, peak_small = _peak(small)
    n_big, peak_big = _peak(big)
    assert (n_small, n_big) == (3_000, 30_000)
    assert big.stat().st_size > 10 * 1024 * 1024
    assert peak_big < 1.5 * peak_small
    assert peak_big < big.stat().st_size / 10
