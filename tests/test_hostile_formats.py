"""Issue #15.1 / #15.6 in the readers: an unclosed CSV quote names its line and loses no following row,
a UTF-8 BOM before JSON Lines loses no record, deep nesting is a reject (never a RecursionError), NaN cells
are no text, and special files are refused before they are opened."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from medmo_data.build.distributor import BuildOptions, build
from medmo_data.formats.json_stream import iter_json_items, iter_json_records
from medmo_data.formats.tables import clean, iter_csv, iter_jsonl, load_json
from medmo_data.recipe import Reject, SourceError, get_recipe
from tests.fixtures._images import grey, write_png
from tests.helpers import read_samples


def _split(items):
    return [i for i in items if not isinstance(i, Reject)], [i for i in items if isinstance(i, Reject)]


@pytest.mark.parametrize("body,kept,bad_line", [
    ('1,ok\n2,"broken\n3,x\n4,y\n', ["1", "3", "4"], 3),  # never closed: runs to the end of the file
    ('1,ok\n2,"broken\n3,x\n4,"y"\n5,z\n', ["1", "3", "4", "5"], 3),  # closed mid-field on line 5
    ('1,ok\n2,"a "quoted" word"\n3,x\n', ["1", "3"], 3),  # a stray quote on one line
])
def test_unclosed_csv_quote_named_and_following_rows_kept(tmp_path, body, kept, bad_line):
    p = tmp_path / "a.csv"
    p.write_text("id,text\n" + body)
    rows, rejects = _split(list(iter_csv(p)))
    assert [r[1]["id"] for r in rows] == kept
    assert len(rejects) == 1 and rejects[0].reason == "malformed_csv"
    assert f"a.csv:{bad_line}" in rejects[0].detail and rejects[0].id == f"a.csv:{bad_line}"


def test_legit_multiline_csv_field_still_read(tmp_path):
    p = tmp_path / "a.csv"
    p.write_text('id,text\n1,"line one\nline two, with a comma and ""quotes"""\n2,b\n')
    rows, rejects = _split(list(iter_csv(p)))
    assert not rejects and rows[0][1]["text"] == 'line one\nline two, with a comma and "quotes"'


def test_unclosed_quote_through_the_folder_csv(tmp_path):
    raw = tmp_path / "raw"
    for n in range(4):
        write_png(raw / f"{n}.png", grey(16, 12, seed=n))
    (raw / "annotations.csv").write_text(
        "id,image,question,answer\n0,0.png,q,a\n1,1.png,\"q,a\n2,2.png,q,a\n3,3.png,q,a\n")
    m = build(get_recipe("folder"), raw, BuildOptions(output=tmp_path / "out")).manifest
    assert {s["json"]["id"] for s in read_samples(tmp_path / "out" / "folder")} == {"0", "2", "3"}
    assert m["rejects_by_reason"] == {"malformed_csv": 1}


def test_bom_before_jsonl_loses_no_record(tmp_path):
    p = tmp_path / "a.jsonl"
    p.write_bytes(b'\xef\xbb\xbf{"id": 1}\n{"id": 2}\n')
    for reader in (iter_jsonl, iter_json_records):
        rows, rejects = _split(list(reader(p)))
        assert [r[1]["id"] for r in rows] == [1, 2] and not rejects
    q = tmp_path / "a.json"
    q.write_bytes(b'\xef\xbb\xbf{"k": 1}')
    assert load_json(q) == {"k": 1}


def test_deep_nesting_is_a_reject_or_source_error(tmp_path):
    deep = "[" * 100_000 + "]" * 100_000
    p = tmp_path / "a.jsonl"
    p.write_text(f'{{"x": {deep}}}\n{{"id": 2}}\n')
    rows, rejects = _split(list(iter_jsonl(p)))
    assert [r[1] for r in rows] == [{"id": 2}] and rejects[0].reason == "malformed_json"
    arr = tmp_path / "a.json"
    arr.write_text(f'[\n  {{"x": {deep}}},\n  {{"id": 2}}\n]\n')
    rows, rejects = _split(list(iter_json_items(arr)))
    assert [r[1] for r in rows] == [{"id": 2}] and "nested too deeply" in rejects[0].detail
    whole = tmp_path / "w.json"
    whole.write_text(deep)
    with pytest.raises(SourceError, match="nested too deeply"):
        load_json(whole)


def test_nan_and_infinity_are_no_text():
    assert clean(float("nan")) == clean(float("inf")) == clean(float("-inf")) == ""
    assert clean(3.0) == "3" and clean(2.5) == "2.5" and clean(" x ") == "x"


def test_special_files_refused_before_open(tmp_path):
    fifo = tmp_path / "f.csv"
    os.mkfifo(fifo)
    for reader in (lambda p: list(iter_csv(p)), lambda p: list(iter_jsonl(p)), load_json,
                   lambda p: list(iter_json_items(p)), lambda p: list(iter_json_records(p))):
        with pytest.raises(SourceError, match="not a regular file"):
            reader(fifo)
    with pytest.raises(SourceError, match="not a regular file"):
        list(iter_csv(Path("/dev/zero")))


def test_jsonl_reject_rows_are_valid_json(tmp_path):
    p = tmp_path / "a.jsonl"
    p.write_bytes(b'{"id": "\\ud800"}\n')
    rows, _ = _split(list(iter_jsonl(p)))
    assert rows[0][1]["id"] == "\ud800"
    assert json.dumps(rows[0][1])  # ASCII-escaped, as RejectLog writes it


def test_jsonl_line_over_the_cap_is_skipped_not_read_whole(tmp_path, monkeypatch):
    from medmo_data.formats import tables

    monkeypatch.setattr(tables, "MAX_LINE_BYTES", 64)
    p = tmp_path / "a.jsonl"
    p.write_text('{"id": 1}\n{"id": "' + "x" * 5000 + '"}\n{"id": 3}\n')
    rows, rejects = _split(list(iter_jsonl(p)))
    assert [r[1]["id"] for r in rows] == [1, 3]
    assert rejects[0].id == "a.jsonl:2" and "longer than 64 bytes" in rejects[0].detail
