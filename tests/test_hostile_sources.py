"""Issue #15 through source recipes (not only `folder`): DeepLesion's per-row DICOM_windows and hostile
slice files, MedMCQA's JSON Lines (surrogate ids, deep nesting, BOM, NaN), special files in place of metadata, and the
privacy of every output file (`--redact-paths`)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from medmo_data.build.distributor import BuildOptions, build
from medmo_data.recipe import get_recipe
from tests.bad_inputs import make_hostile_files
from tests.fixtures import make
from tests.fixtures._images import write_png
from tests.fixtures.deeplesion import slice_array
from tests.helpers import read_samples

SECRET = "Smith_John_MRN778812"  # an input folder named after a patient


def _rejects(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "rejects.jsonl").read_bytes().decode("utf-8").splitlines()]


def _all_output_text(folder: Path) -> str:
    """Every file of a built source as text (parquet indexes as their decoded rows)."""
    out = []
    for p in sorted(folder.iterdir()):
        if p.suffix == ".parquet":
            out.append(json.dumps(pq.read_table(p).to_pylist(), ensure_ascii=False, default=bytes.hex))  # thumbnails are bytes
        elif p.is_file():
            out.append(p.read_bytes().decode("utf-8", "replace"))
    return "\n".join(out)


# --- DeepLesion: per-row windows and hostile slice files ----------------------------------------------

DL_ROWS = {  # File_name -> (DICOM_windows, slice file to write: "png" | a make_hostile_files() name)
    "000300_01_01_001.png": ("100, -100", "png"),  # inverted
    "000301_01_01_002.png": ("40, 40", "png"),  # zero width
    "000302_01_01_003.png": ("nan, 400", "png"),  # not finite
    "000303_01_01_004.png": ("inf, -inf", "png"),
    "000304_01_01_005.png": ("-175, 275", "pipe.png"),  # a FIFO where the slice should be
    "000305_01_01_006.png": ("-175, 275", "huge.png"),  # 3 GB sparse file
    "000306_01_01_007.png": ("-175, 275", "zero.png"),  # a character device
}
DL_REASONS = {"000300_01_01_001": "bad_window", "000301_01_01_002": "bad_window", "000302_01_01_003": "bad_window",
              "000303_01_01_004": "bad_window", "000304_01_01_005": "not_a_regular_file",
              "000305_01_01_006": "file_too_large", "000306_01_01_007": "not_a_regular_file"}


@pytest.fixture(scope="module")
def deeplesion(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dlh")
    raw = make("deeplesion", tmp / SECRET)
    hostile = tmp / "hostile"
    hostile.mkdir()
    make_hostile_files(hostile)
    with open(raw / "DL_info.csv", newline="") as f:
        first = next(csv.DictReader(f))
    with open(raw / "DL_info.csv", "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(first))
        for name, (window, kind) in DL_ROWS.items():
            w.writerow({**first, "File_name": name, "DICOM_windows": window, "Train_Val_Test": "1"})
            folder, _, sl = name.rpartition("_")
            target = raw / "Images_png" / folder / sl
            if kind == "png":
                write_png(target, slice_array([[10, 10, 40, 40]]))
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.rename(hostile / kind, target)
    res = build(get_recipe("deeplesion"), raw, BuildOptions(output=tmp / "out"))
    return res.manifest, tmp / "out" / "deeplesion"


def test_deeplesion_bad_windows_and_special_files_are_rejects(deeplesion):
    m, folder = deeplesion
    reasons = {r["id"]: r["reason"] for r in _rejects(folder)}
    for sid, reason in DL_REASONS.items():
        assert reasons[sid] == reason, sid
    assert m["counts"]["written"] == 8  # the fixture's 8 good slices survive every hostile row
    assert m["counts"]["read"] == m["counts"]["written"] + m["counts"]["rejected"] == 11 + len(DL_ROWS)


def test_deeplesion_outputs_hold_no_input_path(deeplesion):
    m, folder = deeplesion
    text = _all_output_text(folder)
    assert SECRET not in text and "/tmp" not in text.replace("tmp-", "")
    files = {r["id"]: r.get("file") for r in _rejects(folder)}
    assert files["000304_01_01_005"] == "Images_png/000304_01_01/005.png"


def test_redact_paths_hashes_every_path_with_a_key(tmp_path, monkeypatch):
    raw = make("deeplesion", tmp_path / SECRET)
    monkeypatch.setenv("MEDMO_REDACT_KEY", "k1")
    build(get_recipe("deeplesion"), raw, BuildOptions(output=tmp_path / "a", redact_paths=True))
    rows = _rejects(tmp_path / "a" / "deeplesion")
    text = (tmp_path / "a" / "deeplesion" / "rejects.jsonl").read_text()
    assert "Images_png" not in text and SECRET not in text and "000200_01_01" not in text.replace(
        '"id":"000200_01_01_010"', "")
    missing = next(r for r in rows if r["reason"] == "missing_image")
    import hashlib
    import hmac

    want = hmac.new(b"k1", b"Images_png/000200_01_01/010.png", hashlib.sha256).hexdigest()[:16]
    assert missing["file"] == f"path-{want}"
    # Another key, another hash; no env key: a per-output key file (mode 0600) is made and reused.
    monkeypatch.setenv("MEDMO_REDACT_KEY", "k2")
    build(get_recipe("deeplesion"), raw, BuildOptions(output=tmp_path / "b", redact_paths=True))
    other = next(r for r in _rejects(tmp_path / "b" / "deeplesion") if r["reason"] == "missing_image")
    assert other["file"].startswith("path-") and other["file"] != missing["file"]
    monkeypatch.delenv("MEDMO_REDACT_KEY")
    for _ in range(2):
        build(get_recipe("deeplesion"), raw, BuildOptions(output=tmp_path / "c", redact_paths=True))
        again = next(r for r in _rejects(tmp_path / "c" / "deeplesion") if r["reason"] == "missing_image")
        assert again["file"].startswith("path-")
    key = tmp_path / "c" / ".redact-key"
    assert key.exists() and (key.stat().st_mode & 0o777) == 0o600
    assert json.loads((tmp_path / "c" / "deeplesion" / "manifest.json").read_text())["options"]["redact_paths"]


# --- MedMCQA: a JSON Lines source ----------------------------------------------------------------------

def _mcq(qid: str, cop: object = 1, opa: object = "Radial") -> dict:
    return {"id": qid, "question": "Nerve of the deltoid?", "opa": opa, "opb": "Ulnar", "opc": "Median",
            "opd": "Axillary", "cop": cop, "exp": "", "subject_name": "Anatomy", "topic_name": None,
            "choice_type": "single"}


@pytest.fixture(scope="module")
def medmcqa(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mcqh")
    raw = make("medmcqa", tmp / "raw")
    lines = (raw / "train.json").read_bytes()
    extra = [
        json.dumps(_mcq("\ud800-written")),  # would be written but for its id: non_utf8_text
        json.dumps(_mcq("\udc00-rejected", cop=9)),  # rejected anyway: bad_answer, row still valid UTF-8
        '{"id": "deep", "question": ' + "[" * 200_000 + "]" * 200_000 + "}",
        json.dumps(_mcq("nan-answer", cop=1, opa=float("nan"))),  # the correct option is NaN
        json.dumps(_mcq("inf-answer", cop=1, opa=float("inf"))),
    ]
    (raw / "train.json").write_bytes(b"\xef\xbb\xbf" + lines + "\n".join(extra).encode() + b"\n")
    res = build(get_recipe("medmcqa"), raw, BuildOptions(output=tmp / "out"))
    return res.manifest, tmp / "out" / "medmcqa", raw


def test_medmcqa_hostile_lines_are_rejects_and_bom_line_is_read(medmcqa):
    m, folder, raw = medmcqa
    rows = _rejects(folder)
    by_id = {r["id"]: r["reason"] for r in rows}
    assert by_id["\\ud800-written"] == "non_utf8_text"
    assert by_id["\\udc00-rejected"] == "bad_answer"
    assert by_id["nan-answer"] == by_id["inf-answer"] == "empty_text"
    deep = [r for r in rows if r["reason"] == "malformed_json" and "nested too deeply" in r["detail"]]
    assert len(deep) == 1
    first_id = json.loads((raw / "train.json").read_bytes()[3:].split(b"\n")[0])["id"]
    written = {s["json"]["id"] for s in read_samples(folder)}
    assert first_id in written  # the line after the BOM is a record, not a malformed_json reject
    assert "nan" not in json.dumps([s["json"]["messages"] for s in read_samples(folder)]).lower().split('"')


def test_fifo_metadata_file_exits_2_without_hanging(tmp_path):
    raw = make("medmcqa", tmp_path / "raw")
    (raw / "dev.json").unlink()
    os.mkfifo(raw / "dev.json")
    r = subprocess.run([sys.executable, "-m", "medmo_data.cli", "build", "--recipe", "medmcqa", "--input", str(raw),
                        "--output", str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "not a regular file" in r.stderr and "Traceback" not in r.stderr
    folder = tmp_path / "f"
    folder.mkdir()
    os.mkfifo(folder / "annotations.jsonl")
    r = subprocess.run([sys.executable, "-m", "medmo_data.cli", "build", "--recipe", "folder", "--input",
                        str(folder), "--output", str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "not a regular file" in r.stderr


def test_cli_drop_burned_in_any_yes_and_redact_paths(tmp_path):
    import io

    import numpy as np

    from tests.fixtures._dicom import ct_dataset

    raw = tmp_path / SECRET
    raw.mkdir()
    for name, flag in (("clean", None), ("multi", ["NO", "YES"]), ("yes", "YES")):
        ds = ct_dataset(np.zeros((16, 16), np.int16))
        if flag is not None:
            ds.BurnedInAnnotation = flag
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        (raw / f"{name}.dcm").write_bytes(buf.getvalue())
    (raw / "annotations.jsonl").write_text("".join(json.dumps(
        {"id": n, "images": [f"{n}.dcm"], "task": "caption", "caption": "CT"}) + "\n" for n in ("clean", "multi", "yes")))
    env = {k: v for k, v in os.environ.items() if k != "MEDMO_REDACT_KEY"}
    r = subprocess.run([sys.executable, "-m", "medmo_data.cli", "build", "--recipe", "folder", "--input", str(raw),
                        "--output", str(tmp_path / "out"), "--drop-burned-in", "--redact-paths", "--max-reject-rate",
                        "1"], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    folder = tmp_path / "out" / "folder"
    rows = _rejects(folder)
    assert {x["id"]: x["reason"] for x in rows} == {"multi": "burned_in_annotation", "yes": "burned_in_annotation"}
    assert all(x["file"].startswith("path-") and len(x["file"]) == 21 for x in rows)
    everything = _all_output_text(folder)  # rejects.jsonl and the stats files alike
    assert "multi.dcm" not in everything and "yes.dcm" not in everything and SECRET not in everything
    assert (tmp_path / "out" / ".redact-key").exists()
