"""Build guarantees: byte-identical output across runs and worker counts, resume after SIGKILL, locks,
loading through webdataset and HF datasets unmodified, verify catching tampering."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from medmo_data.build.distributor import BuildOptions, OutputLocked, _Lock, build
from medmo_data.build.verify import verify
from medmo_data.recipe import get_recipe
from medmo_data.shards.reader import iter_samples
from tests.fixtures import make


def tree_hashes(folder: Path) -> dict[str, str]:
    """sha256 of every output file; the manifest without its timestamp; stats without timings."""
    out = {}
    for p in sorted(folder.iterdir()):
        if not p.is_file() or p.name.startswith("."):
            continue
        data = p.read_bytes()
        if p.name == "manifest.json":
            m = json.loads(data)
            m.pop("created")
            data = json.dumps(m, sort_keys=True).encode()
        elif p.name.endswith(".stats.json"):
            m = json.loads(data)
            m.pop("elapsed_s")
            data = json.dumps(m, sort_keys=True).encode()
        out[p.name] = hashlib.sha256(data).hexdigest()
    return out


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    return make("deeplesion", tmp_path_factory.mktemp("raw"))


def _build(raw: Path, out: Path, shard_samples_n: int = 3, **kw) -> Path:
    build(get_recipe("deeplesion"), raw, BuildOptions(output=out, shard_samples=shard_samples_n, **kw))
    return out / "deeplesion"


def test_deterministic_across_runs_and_workers(raw, tmp_path):
    a = tree_hashes(_build(raw, tmp_path / "a"))
    b = tree_hashes(_build(raw, tmp_path / "b"))
    c = tree_hashes(_build(raw, tmp_path / "c", workers=2))
    assert a == b == c
    # train 5 records (3 broken) -> 2 shards of 3, val 2 -> 1, test 4 -> 2
    assert sum(n.endswith(".tar") for n in a) == 5


def test_rerun_reuses_finished_shards(raw, tmp_path):
    folder = _build(raw, tmp_path / "a")
    before = {p.name: p.stat().st_mtime_ns for p in folder.glob("*.tar")}
    res = build(get_recipe("deeplesion"), raw, BuildOptions(output=tmp_path / "a", shard_samples=3))
    assert res.shards_reused == len(before)
    assert before == {p.name: p.stat().st_mtime_ns for p in folder.glob("*.tar")}


def test_changed_options_rebuild_shards(raw, tmp_path):
    _build(raw, tmp_path / "a")
    from medmo_data.build.normalize import NormalizeOptions
    res = build(get_recipe("deeplesion"), raw, BuildOptions(output=tmp_path / "a", shard_samples=3,
                                                             normalize=NormalizeOptions(max_side=256)))
    assert res.shards_reused == 0


def test_sigkill_then_resume_gives_same_bytes(raw, tmp_path):
    ref = tree_hashes(_build(raw, tmp_path / "ref", shard_samples_n=1))
    out = tmp_path / "killed"
    # Fault injection: each shard takes 0.3 s longer, so the kill lands mid-build.
    env = {**os.environ, "MEDMO_FAULT_SLOW_SHARD_S": "0.3"}
    cmd = [sys.executable, "-m", "medmo_data.cli", "build", "--recipe", "deeplesion", "--input", str(raw),
           "--output", str(out), "--shard-samples", "1"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    folder = out / "deeplesion"
    deadline = time.time() + 60
    while time.time() < deadline and len(list(folder.glob("*.stats.json"))) < 2:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(list(folder.glob("*.stats.json")))
    assert 2 <= done < 8 and not (folder / "manifest.json").exists()
    # Every shard visible under its final name is whole: only .tmp-* files may be partial.
    for tar in folder.glob("*.tar"):
        list(iter_samples(tar))
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert tree_hashes(folder) == ref


def test_lock_refuses_second_build(tmp_path):
    tmp_path.mkdir(exist_ok=True)
    with _Lock(tmp_path):
        with pytest.raises(OutputLocked, match="another build"):
            with _Lock(tmp_path):
                pass


def test_loads_through_webdataset_and_hf(raw, tmp_path):
    import webdataset as wds
    from datasets import load_dataset

    folder = _build(raw, tmp_path / "a")
    tars = sorted(str(p) for p in folder.glob("test-*.tar"))
    ds = wds.WebDataset(tars, shardshuffle=False).decode()
    samples = list(ds)
    assert len(samples) == 4 and {"json", "0.png"} <= set(samples[0])
    assert samples[0]["json"]["source"] == "deeplesion"
    hf = load_dataset("webdataset", data_files={"test": tars}, split="test")
    assert len(hf) == 4
    row = hf[0]
    assert row["json"]["task"] == "grounding" and row["0.png"].size == (512, 512)


def test_verify_detects_tampering(raw, tmp_path):
    folder = _build(raw, tmp_path / "a")
    assert verify(folder).ok
    tar = sorted(folder.glob("*.tar"))[0]
    data = bytearray(tar.read_bytes())
    data[700] ^= 0xFF
    tar.write_bytes(bytes(data))
    rep = verify(folder)
    assert not rep.ok and any("sha256" in p for p in rep.problems)
    second = sorted(folder.glob("*.tar"))[1]
    second.write_bytes(second.read_bytes()[:1000])
    third = sorted(folder.glob("*.tar"))[2]
    third.unlink()
    probs = "\n".join(verify(folder).problems)
    assert "missing shard" in probs and "truncated or corrupt tar" in probs
