"""Reliability and security: the bad-input corpus, faults, determinism under other locales/time zones,
privacy scans, and safe shard reading."""

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from medmo_data.build.distributor import BuildOptions, build
from medmo_data.build.verify import verify
from medmo_data.keys import is_safe_key, make_key
from medmo_data.recipe import get_recipe
from medmo_data.shards import writer
from medmo_data.shards.reader import ShardError, UnsafeShard, iter_samples
from tests.bad_inputs import CASES, CLASSES, GOOD, LINE_REJECTS, PHI_VALUES, SURROGATE_ID, make_bad_tree
from tests.fixtures import make
from tests.fixtures._dicom import PHI, write_ct
from tests.helpers import read_samples

INPUT_NAME = "Doe_Jane_MRN0042"  # hospital exports name folders after patients: it must reach no output


@pytest.fixture(scope="module")
def bad(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad")
    raw = make_bad_tree(tmp / INPUT_NAME)
    res = build(get_recipe("folder"), raw, BuildOptions(output=tmp / "out"))
    return tmp / "out" / "folder", res.manifest


def _escaped(s: str) -> str:
    return s.encode("utf-8", "backslashreplace").decode("utf-8")


def test_every_bad_case_rejected_with_its_reason(bad):
    folder, m = bad
    text = (folder / "rejects.jsonl").read_bytes().decode("utf-8")  # strict: valid UTF-8 despite "\ud800" ids
    rejects = [json.loads(line) for line in text.splitlines()]
    by_id = {}
    for r in rejects:
        by_id.setdefault(r["id"], []).append(r["reason"])
    for sid, reason in CASES.items():
        assert reason in by_id.get(_escaped(sid), []), (sid, by_id.get(_escaped(sid)))
    assert by_id[_escaped(SURROGATE_ID)] == ["non_utf8_text"]
    for reason, n in LINE_REJECTS.items():
        assert m["rejects_by_reason"][reason] == n
    c = m["counts"]
    assert c["read"] == c["written"] + c["rejected"] == len(CASES) + len(GOOD) - 1 + sum(LINE_REJECTS.values()) + 1
    written = {s["json"]["id"]: s for s in read_samples(folder)}
    assert set(written) == set(GOOD)  # "ok-1", the first line after a BOM, among them
    assert written["dup"]["json"]["messages"][1]["content"][0]["text"] == "kept"
    assert verify(folder).ok


def test_bad_cases_per_class_counted(bad):
    """The report's numbers: bad-input cases per class of issue #15 in the folder corpus."""
    counts = {k: len(v) for k, v in CLASSES.items()}
    print("bad-input cases per class:", counts)
    assert all(n >= 2 for n in counts.values())


def _output_bytes(folder: Path, with_rejects: bool = True) -> bytes:
    """Every output file's bytes; parquet indexes as their decoded rows."""
    scanned = b""
    for p in sorted(folder.iterdir()):
        if p.suffix == ".parquet":
            scanned += json.dumps(pq.read_table(p).to_pylist(), ensure_ascii=False, default=bytes.hex).encode()
        elif p.is_file() and (with_rejects or p.name != "rejects.jsonl"):
            scanned += p.read_bytes()
    return scanned


def test_no_input_path_or_header_value_in_any_output(bad):
    folder, m = bad
    everything = _output_bytes(folder)
    assert INPUT_NAME.encode() not in everything
    for value in PHI_VALUES:
        assert value.encode() not in everything, value
    rows = [json.loads(line) for line in (folder / "rejects.jsonl").read_text().splitlines()]
    files = {r["id"]: r.get("file") for r in rows}
    assert files["missing-image"] == "gone.png" and files["fifo-image"] == "pipe.png"
    assert any(r["detail"].startswith("annotations.jsonl:") for r in rows if r["reason"] == "malformed_json")
    assert "name" not in m["input"] and set(m["input"]) == {"fingerprint"}
    photometric = next(r for r in rows if r["id"] == "dicom-phi-photometric")
    assert "PhotometricInterpretation" in photometric["detail"]


def test_keys_are_safe_unique_and_stable():
    ids = ["with.dots/and\\slashes", "WITH.DOTS/AND\\SLASHES", "a.b", "a/b", "a_b", "x" * 300, "ok-1"]
    keys = [make_key(i) for i in ids]
    assert len(set(keys)) == len(keys) and all(is_safe_key(k) for k in keys)
    assert keys[-1] == "ok-1" and make_key("a.b") == make_key("a.b")
    assert "." not in "".join(keys) and "/" not in "".join(keys)


def _tar_with(members: dict[str, bytes]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in members.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    buf.seek(0)
    return buf


@pytest.mark.parametrize("name", ["s1.pyd", "s1.pickle", "s1.pkl", "s1.pth", "s1.x.pyd"])
def test_reader_refuses_code_members(name):
    with pytest.raises(UnsafeShard):
        list(iter_samples(_tar_with({"s1.json": b"{}", name: b"\x80\x04K\x01."})))


@pytest.mark.parametrize("name", ["/etc/s1.json", "../s1.json", "a/../../s1.json"])
def test_reader_refuses_escaping_paths(name):
    with pytest.raises(UnsafeShard):
        list(iter_samples(_tar_with({name: b"{}"})))


def test_reader_rejects_bad_json_and_truncation():
    with pytest.raises(ShardError):
        list(iter_samples(_tar_with({"s1.json": b"{nope"})))
    data = _tar_with({"s1.json": b"{}" * 400}).getvalue()
    with pytest.raises(ShardError):
        list(iter_samples(io.BytesIO(data[:700])))


def test_disk_full_leaves_no_partial_shard(tmp_path, monkeypatch):
    raw = make("vqa_rad", tmp_path / "raw")
    real_replace = os.replace

    def full(src, dst):
        if str(dst).endswith(".tar"):
            raise OSError(28, "No space left on device", str(dst))
        return real_replace(src, dst)

    monkeypatch.setattr(writer.os, "replace", full)
    with pytest.raises(OSError):
        build(get_recipe("vqa_rad"), raw, BuildOptions(output=tmp_path / "out"))
    folder = tmp_path / "out" / "vqa_rad"
    assert not list(folder.glob("*.tar")) and not list(folder.glob(".*tmp-*"))
    monkeypatch.setattr(writer.os, "replace", real_replace)
    res = build(get_recipe("vqa_rad"), raw, BuildOptions(output=tmp_path / "out"))
    assert res.manifest["counts"]["written"] == 9


def test_cli_reports_disk_errors_in_one_line(tmp_path):
    raw = make("vqa_rad", tmp_path / "raw")
    out = tmp_path / "out"
    out.mkdir()
    (out / "vqa_rad").write_text("a file where the output folder should be")
    r = subprocess.run([sys.executable, "-m", "medmo_data.cli", "build", "--recipe", "vqa_rad", "--input", str(raw),
                        "--output", str(out)], capture_output=True, text=True)
    assert r.returncode in (1, 2) and "vqa_rad" in r.stderr and "Traceback" not in r.stderr


def _hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.tar"))}


def test_same_bytes_under_other_locale_and_timezone(tmp_path):
    raw = make("deeplesion", tmp_path / "raw")
    outs = []
    for i, env in enumerate(({"TZ": "UTC", "LC_ALL": "C"}, {"TZ": "Asia/Kathmandu", "LC_ALL": "C.UTF-8"})):
        out = tmp_path / f"o{i}"
        subprocess.run([sys.executable, "-m", "medmo_data.cli", "build", "--recipe", "deeplesion", "--input",
                        str(raw), "--output", str(out)], check=True, capture_output=True, env={**os.environ, **env})
        outs.append(out / "deeplesion")
    assert _hashes(outs[0]) == _hashes(outs[1])
    m0, m1 = (json.loads((o / "manifest.json").read_text()) for o in outs)
    m0.pop("created"), m1.pop("created")
    assert m0 == m1


def test_phi_never_reaches_output_and_burned_in_dropped(tmp_path):
    import numpy as np

    raw = tmp_path / "raw"
    write_ct(raw / "a.dcm", np.zeros((32, 32), np.int16))
    write_ct(raw / "b.dcm", np.zeros((32, 32), np.int16), burned_in=True)
    (raw / "annotations.jsonl").write_text("\n".join(json.dumps(
        {"id": n, "images": [f"{n}.dcm"], "task": "caption", "caption": "CT"}) for n in "ab") + "\n")
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "medmo_data.cli", "build", "--recipe", "folder", "--input", str(raw),
                        "--output", str(out), "--drop-burned-in"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    m = json.loads((out / "folder" / "manifest.json").read_text())
    assert m["rejects_by_reason"] == {"burned_in_annotation": 1}
    scanned = b""
    for p in (out / "folder").iterdir():
        if p.suffix == ".parquet":  # compressed: scan the decoded rows instead
            scanned += json.dumps(pq.read_table(p).to_pylist(), default=bytes.hex).encode()  # thumbnails
        elif p.is_file():
            scanned += p.read_bytes()
    assert len(scanned) > 1000
    print(f"PHI scan: {len(scanned)} output bytes, {len(PHI)} identifiers")
    for value in PHI.values():
        for token in {value, *value.split("^")}:
            assert token.encode() not in scanned, token


def test_csv_bad_rows_rejected_reading_goes_on(tmp_path):
    from medmo_data.formats.tables import iter_csv
    from medmo_data.recipe import Reject

    p = tmp_path / "a.csv"
    p.write_bytes(b"id,text\n1,ok\n2,caf\xe9\n3,short,x,extra\n4\n5,fine\n")
    out = list(iter_csv(p, required=["id", "text"]))
    assert [o[1]["id"] for o in out if not isinstance(o, Reject)] == ["1", "5"]
    assert [o.reason for o in out if isinstance(o, Reject)] == ["non_utf8_text", "malformed_csv", "malformed_csv"]


def test_metadata_paths_cannot_leave_the_input(tmp_path):
    raw = make("vqa_rad", tmp_path / "raw")
    secret = tmp_path / "secret.jpg"
    secret.write_bytes((raw / "VQA_RAD Image Folder" / "synpic54610.jpg").read_bytes())
    recs = json.loads((raw / "VQA_RAD Dataset Public.json").read_text())
    recs[0]["image_name"] = "../../secret.jpg"
    (raw / "VQA_RAD Dataset Public.json").write_text(json.dumps(recs))
    res = build(get_recipe("vqa_rad"), raw, BuildOptions(output=tmp_path / "out"))
    assert res.manifest["rejects_by_reason"]["bad_path"] == 1
    assert all(s["json"]["id"] != str(recs[0]["qid"]) for s in read_samples(tmp_path / "out" / "vqa_rad"))
