import os
import subprocess
import sys
from pathlib import Path

from medmo_data.build.distributor import BuildOptions, build
from medmo_data.families.reports import CAPTION_PROMPTS, pick
from medmo_data.recipe import get_recipe
from tests.fixtures import medtrinity as fx
from tests.helpers import build_fixture, by_id, read_samples, texts


def test_medtrinity_full_parquet_and_tar_zst(tmp_path):
    res = build_fixture("medtrinity", tmp_path)
    m = res.manifest
    # 8 caption rows + 1 archive member without a row + 1 truncated archive.
    assert m["counts"] == {"read": 10, "written": 4, "rejected": 6}
    assert m["rejects_by_reason"] == {"corrupt_image": 1, "empty_text": 1, "image_not_in_archives": 2,
                                      "no_caption": 1, "truncated_archive": 1}
    samples = read_samples(tmp_path / "out" / "medtrinity")
    # Archives in shard-number order: shard 10 (late_0004) comes after shards 1 and 2.
    assert [s["json"]["id"] for s in samples] == ["mt-000", "mt-001", "mt-002", "mt-003"]
    s = by_id(samples)
    cap, src = fx.CAPTIONS["pmc_0001.jpg"]
    assert texts(s["mt-000"]["json"], "assistant") == cap
    assert texts(s["mt-000"]["json"], "user") == pick(CAPTION_PROMPTS, "mt-000")
    assert s["mt-000"]["json"]["meta"] == {"origin": "pmc_oa", "file_name": "pmc_0001.jpg"}
    assert s["mt-001"]["json"]["meta"]["origin"] == "NCT-CRC-HE-100K"
    assert {x["json"]["split"] for x in samples} == {"train"}
    assert s["mt-000"]["json"]["task"] == "caption"
    assert s["mt-000"]["0.jpg"] == fx.image_bytes(1)  # JPEG bytes from the archive pass through
    rejects = (tmp_path / "out" / "medtrinity" / "rejects.jsonl").read_text()
    assert '"id":"orphan_0099.jpg","reason":"no_caption"' in rejects
    assert '"id":"mt-007","reason":"image_not_in_archives"' in rejects  # lost after the break


def test_medtrinity_unmatched_ignore(tmp_path):
    res = build_fixture("medtrinity", tmp_path, recipe_options={"unmatched": "ignore"})
    assert res.manifest["counts"] == {"read": 8, "written": 4, "rejected": 4}
    assert "image_not_in_archives" not in res.manifest["rejects_by_reason"]


def test_medtrinity_demo_config(tmp_path):
    raw = tmp_path / "raw"
    fx.make_demo(raw)
    res = build(get_recipe("medtrinity"), raw, BuildOptions(output=tmp_path / "out"))
    assert res.manifest["counts"] == {"read": 3, "written": 2, "rejected": 1}
    assert res.manifest["rejects_by_reason"] == {"missing_image": 1}
    s = by_id(read_samples(tmp_path / "out" / "medtrinity"))
    assert texts(s["demo_1"]["json"], "assistant") == "An abdominal ultrasound showing a gallstone."
    assert s["demo_0"]["0.jpg"] == fx.image_bytes(0)


# VmHWM is this process's own peak; ru_maxrss would carry the parent's RSS across fork+exec.
_MEASURE = """
import sys
from pathlib import Path
from medmo_data.build.distributor import BuildOptions, build
from medmo_data.recipe import get_recipe
r = build(get_recipe("medtrinity"), Path(sys.argv[1]), BuildOptions(output=Path(sys.argv[2])))
assert r.manifest["counts"]["written"] == int(sys.argv[3]), r.manifest["counts"]
print([int(x.split()[1]) for x in open("/proc/self/status") if x.startswith("VmHWM:")][0])
"""


def _peak_kib(tmp_path: Path, n: int) -> int:
    raw = tmp_path / f"raw{n}"
    fx.make_full(raw, n, caption_chars=4000)
    # Pin the allocators so their arena/pool growth does not hide (or fake) what the build itself holds.
    env = {**os.environ, "MALLOC_ARENA_MAX": "1", "ARROW_DEFAULT_MEMORY_POOL": "system",
           "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    out = subprocess.run([sys.executable, "-c", _MEASURE, str(raw), str(tmp_path / f"out{n}"), str(n)],
                         env=env, capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1])


def test_medtrinity_streamed_build_memory_is_flat(tmp_path):
    small, large = _peak_kib(tmp_path, 2500), _peak_kib(tmp_path, 10_000)
    # 7,500 more rows carry ~30 MB more caption text (+ JPEGs); holding them would add far more than 20 MB.
    assert large - small < 20 * 1024, (small, large)
