"""`--engine ray` on a local 2-CPU Ray cluster: same bytes as `--engine local`, retried crashes, resume,
fsspec URL outputs. One cluster for the module (starting Ray costs seconds)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medmo_data.build.distributor import BuildOptions, build
from medmo_data.recipe import get_recipe
from medmo_data.shards.storage import RemoteDir, as_url
from tests.fixtures import make

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.ray

TIMINGS = {"created", "elapsed_s"}  # the only fields that may differ between two builds


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _strip(obj):
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if k not in TIMINGS}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def snapshot(folder: Path) -> dict[str, object]:
    """Every file of a built source: raw bytes, JSON files without their timing fields."""
    out: dict[str, object] = {}
    for p in sorted(folder.iterdir()):
        if p.name == ".build.lock":
            continue
        data = p.read_bytes()
        out[p.name] = _strip(json.loads(data)) if p.name.endswith(".json") else data
    return out


def _local(name: str, raw: Path, out: Path, **kw) -> Path:
    build(get_recipe(name), raw, BuildOptions(output=out, **kw))
    return out / name


@pytest.mark.parametrize("name", ["vqa_rad", "deeplesion"])
def test_ray_matches_local_byte_for_byte(cluster, tmp_path, name):
    from medmo_data.build.ray_engine import build_ray

    raw = make(name, tmp_path / "raw")
    ref = snapshot(_local(name, raw, tmp_path / "local", shard_samples=3))
    res = build_ray(get_recipe(name), raw, BuildOptions(output=tmp_path / "ray", shard_samples=3))
    got = snapshot(tmp_path / "ray" / name)
    assert sorted(got) == sorted(ref)
    assert got == ref
    assert len(res.manifest["shards"]) >= 3  # several partitions really ran as separate tasks
    assert any(n.endswith(".tar") for n in got)


def test_killed_task_is_retried_and_output_matches(cluster, tmp_path):
    from medmo_data.build.ray_engine import build_ray

    raw = make("vqa_rad", tmp_path / "raw")
    ref = snapshot(_local("vqa_rad", raw, tmp_path / "local", shard_samples=4))
    faults = tmp_path / "faults"
    faults.mkdir()
    # Each shard's first attempt kills its worker process after 1 sample (partial temp tar on disk).
    build_ray(get_recipe("vqa_rad"), raw, BuildOptions(output=tmp_path / "ray", shard_samples=4),
              _fault=(str(faults), 1))
    killed = sorted(p.stem for p in faults.iterdir())
    assert killed == ["test-000000", "train-000000", "train-000001"]
    assert snapshot(tmp_path / "ray" / "vqa_rad") == ref  # no temp file left, same bytes


def test_resume_after_driver_death_skips_complete_shards(cluster, tmp_path):
    from medmo_data.build.ray_engine import build_ray

    raw = make("deeplesion", tmp_path / "raw")
    opts = BuildOptions(output=tmp_path / "ray", shard_samples=2)
    build_ray(get_recipe("deeplesion"), raw, opts)
    out = tmp_path / "ray" / "deeplesion"
    ref = snapshot(out)
    # A driver killed before the end: no manifest, one shard's stats (its completion mark) missing.
    (out / "manifest.json").unlink()
    (out / "train-000001.stats.json").unlink()
    res = build_ray(get_recipe("deeplesion"), raw, opts)
    assert res.shards_reused == len(res.manifest["shards"]) - 1
    assert snapshot(out) == ref


def test_fsspec_url_output(cluster, tmp_path):
    from medmo_data.build.ray_engine import build_ray

    raw = make("vqa_rad", tmp_path / "raw")
    ref = snapshot(_local("vqa_rad", raw, tmp_path / "local", shard_samples=3))
    url = f"file://{tmp_path}/bucket/data"
    # The CLI parses --output as a Path, which collapses '//': the engine repairs it.
    res = build_ray(get_recipe("vqa_rad"), raw, BuildOptions(output=Path(url), shard_samples=3))
    assert res.manifest["counts"] == {"read": 10, "written": 9, "rejected": 1}
    got = snapshot(tmp_path / "bucket" / "data" / "vqa_rad")
    assert got == ref
    again = build_ray(get_recipe("vqa_rad"), raw, BuildOptions(output=url, shard_samples=3))
    assert again.shards_reused == len(again.manifest["shards"])


def test_memory_url_is_refused_with_a_reason(cluster, tmp_path):
    from medmo_data.build.ray_engine import build_ray
    from medmo_data.recipe import SourceError

    raw = make("vqa_rad", tmp_path / "raw")
    with pytest.raises(SourceError, match="in-memory filesystem lives in one process"):
        build_ray(get_recipe("vqa_rad"), raw, BuildOptions(output="memory://x/data"))


def test_remote_dir_commit_is_atomic_on_memory_store(tmp_path):
    """Object stores get one PUT per file (visible only when complete); file stores a rename."""
    assert as_url(Path("s3://bucket/out")) == "s3://bucket/out"
    assert as_url(Path("file:///tmp/out")) == "file:///tmp/out"
    assert as_url("data/out") is None
    mem = RemoteDir("memory://medmo-test/out")
    assert mem.atomic_put
    f = tmp_path / "a.tar"
    f.write_bytes(b"x" * 1000)
    mem.commit(f)
    assert mem.read_bytes("a.tar") == b"x" * 1000 and mem.names() == ["a.tar"]
    local = RemoteDir(f"file://{tmp_path}/store")
    assert not local.atomic_put
    local.commit(f)
    assert sorted(p.name for p in (tmp_path / "store").iterdir()) == ["a.tar"]


def test_ray_tests_run_in_a_child_process():
    """tests/process_isolation.py: this module's clusters start and stop outside the main test process."""
    import os

    from tests.process_isolation import CHILD_ENV

    assert os.environ.get(CHILD_ENV)
