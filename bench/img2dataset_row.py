"""`folder` on a JPEG folder against img2dataset (`pip install 'medmo-data[bench]'`), the tool people use to
shard images into WebDataset: the same JPEG files, img2dataset with `--skip_reencode` reading them through
file:// URLs, `folder` building them as captioned samples (bytes passed through). Both run in child
processes, one process each (img2dataset: 1 process x 1 thread); the cost compared is CPU-seconds of the
whole process tree per image after start-up: (CPU(n) - CPU(n_small)) / (n - n_small) for each tool.

img2dataset pins its own versions of numpy/pyarrow/opencv; to keep it out of the project's environment,
install it in a folder (`pip install --target DIR img2dataset`, then `rm DIR/dataclasses.py`: an old
backport it pulls in shadows the standard library's module) and set IMG2DATASET_PYTHONPATH=DIR: its child
then runs with that folder first on the path.
"""

from __future__ import annotations

import importlib.util
import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from . import gen

ROOT = Path(__file__).resolve().parent.parent

_I2D = """
import sys
from img2dataset import download
download(url_list=sys.argv[1], input_format="txt", output_folder=sys.argv[2], output_format="webdataset",
         processes_count=1, thread_count=1, resize_mode="no", skip_reencode=True, encode_format="jpg",
         number_sample_per_shard=10000, timeout=10, enable_wandb=False, disallowed_header_directives=[])
"""
_FOLDER = """
import sys
from pathlib import Path
from medmo_data.build.distributor import BuildOptions, build
from medmo_data.recipe import get_recipe
res = build(get_recipe("folder"), Path(sys.argv[1]), BuildOptions(output=Path(sys.argv[2]), shard_samples=10000))
assert res.manifest["counts"]["written"] == int(sys.argv[3]), res.manifest["counts"]
"""


def _extra_path() -> str | None:
    path = os.environ.get("IMG2DATASET_PYTHONPATH")
    return path if path and (Path(path) / "img2dataset").is_dir() else None


def available() -> bool:
    return _extra_path() is not None or importlib.util.find_spec("img2dataset") is not None


def _child_cpu(code: str, *args: str, path: str | None = None) -> float:
    """CPU seconds (user + system) of a child interpreter and everything it started."""
    env = dict(os.environ, NO_ALBUMENTATIONS_UPDATE="1")
    if path:
        env["PYTHONPATH"] = os.pathsep.join([path, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-c", code, *args], check=True, cwd=ROOT, capture_output=True, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _count_i2d(out: Path) -> int:
    return sum(json.loads(p.read_text()).get("successes", 0) for p in out.glob("*_stats.json"))


def run(work: Path, n: int = 8000, n_small: int = 100, repeats: int = 2) -> dict[str, Any]:
    """Each tool's CPU at `n_small` and `n` images, the least of `repeats` alternated runs per size. img2dataset's
    start-up (12-17 CPU-s with its polling logger) varies by ~1 CPU-s between runs: over 2,000 images that
    moved its per-image figure between 0.96 and 1.58 ms across runs, so `make bench` takes 8,000."""
    if not available():
        return {"skipped": "img2dataset is not installed (pip install 'medmo-data[bench]')"}
    costs: dict[str, dict[int, float]] = {"img2dataset": {}, "folder": {}}
    for k in (n_small, n):
        raw = gen.jpeg_folder(work / f"raw_i2d{k}", k)
        urls = raw / "urls.txt"
        urls.write_text("".join(f"file://{(raw / 'img' / f'{i:05d}.jpg').resolve()}\n" for i in range(k)))
        out = work / f"i2d{k}"
        for _ in range(repeats):
            shutil.rmtree(out, ignore_errors=True)
            c = _child_cpu(_I2D, str(urls), str(out), path=_extra_path())
            costs["img2dataset"][k] = min(c, costs["img2dataset"].get(k, c))
            got = _count_i2d(out)
            if got != k:
                raise RuntimeError(f"img2dataset wrote {got} of {k} images")
            shutil.rmtree(work / f"folder{k}", ignore_errors=True)
            c = _child_cpu(_FOLDER, str(raw), str(work / f"folder{k}"), str(k))
            costs["folder"][k] = min(c, costs["folder"].get(k, c))
        for p in (raw, out, work / f"folder{k}"):
            shutil.rmtree(p, ignore_errors=True)
    per = {t: (c[n] - c[n_small]) / (n - n_small) for t, c in costs.items()}
    start = {t: round(c[n_small], 2) for t, c in costs.items()}
    if min(per.values()) <= 0:  # img2dataset's start-up (and its polling logger) varied more than the work
        return {"samples": n, "startup_s": start, "not_measured": f"CPU of {n} images minus {n_small} is not "
                f"positive ({json.dumps({t: round(v * 1000, 2) for t, v in per.items()})} ms/image): more images"}
    return {"samples": n, "img2dataset_ms_per_image": 1000 * per["img2dataset"],
            "folder_ms_per_image": 1000 * per["folder"], "ratio": per["img2dataset"] / per["folder"],
            "startup_s": start}
