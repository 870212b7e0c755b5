"""The pinned command line: exit codes, one-line errors naming the file/field, list/build/verify/show."""

import os
import subprocess
import sys

from tests.fixtures import make

CLI = [sys.executable, "-m", "medmo_data.cli"]


def run(*args, **kw):
    env = {**os.environ, "COLUMNS": "250"}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, **kw)


def test_list_shows_sources():
    r = run("list")
    assert r.returncode == 0
    for name in ("deeplesion", "nih_chestxray_bbox", "nih_vqa", "vqa_rad", "medqa", "folder"):
        assert name in r.stdout
    js = run("list", "--json")
    assert js.returncode == 0 and '"name": "deeplesion"' in js.stdout


def test_bad_usage_exit_2(tmp_path):
    r = run("build", "--recipe", "deeplesion", "--input", str(tmp_path / "nope"))
    assert r.returncode == 2 and "nope" in r.stderr and "does not exist" in r.stderr
    r = run("build", "--recipe", "no_such_source", "--input", str(tmp_path))
    assert r.returncode == 2 and "unknown recipe 'no_such_source'" in r.stderr
    r = run("build", "--recipe", "deeplesion", "--input", str(tmp_path))  # folder without DL_info.csv
    assert r.returncode == 2 and "DL_info.csv" in r.stderr
    r = run("build", "--recipe", "deeplesion", "--input", str(tmp_path), "--split", "training")
    assert r.returncode == 2 and "--split" in r.stderr
    r = run("verify", str(tmp_path))
    assert r.returncode == 2 and "manifest.json" in r.stderr


def test_build_verify_show_roundtrip(tmp_path):
    raw = make("vqa_rad", tmp_path / "raw")
    out = tmp_path / "out"
    r = run("build", "--recipe", "vqa_rad", "--input", str(raw), "--output", str(out), "--workers", "2")
    assert r.returncode == 0, r.stderr
    assert "written" in r.stdout and "missing_image=1" in r.stdout
    r = run("build", "--recipe", "vqa_rad", "--input", str(raw), "--output", str(out), "--split", "test")
    assert r.returncode == 0
    r = run("verify", str(out / "vqa_rad"))
    assert r.returncode == 0 and "ok" in r.stdout
    r = run("show", str(out / "vqa_rad"), "--out", str(tmp_path / "g.png"), "-n", "4")
    assert r.returncode == 0 and (tmp_path / "g.png").stat().st_size > 1000
    # A flipped byte makes verify fail with exit 1.
    tar = sorted((out / "vqa_rad").glob("*.tar"))[0]
    b = bytearray(tar.read_bytes())
    b[600] ^= 1
    tar.write_bytes(bytes(b))
    r = run("verify", str(out / "vqa_rad"))
    assert r.returncode == 1 and "sha256" in r.stderr
