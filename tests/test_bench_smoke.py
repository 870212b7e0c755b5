"""The bench's pieces on tiny inputs, so `make bench` does not rot between runs: generators write the
real layouts, baselines and builds agree on counts, the table renders, reward transcriptions agree."""

from __future__ import annotations

import io
import json
import os

import pytest

from bench import build_rows, gen
from bench.__main__ import collect, table


def test_generators_build_and_match_baselines(tmp_path):
    for case in build_rows.CASES:
        row = build_rows.throughput(case, tmp_path, n=4, repeats=1)
        assert row["samples"] == 4 and row["build_sps"] > 0 and row["baseline_sps"] > 0, case.name
        assert row["out_bytes_per_sample"] > 0


def test_dicom_generator_round_trips_hu(tmp_path):
    import pydicom
    from pydicom.pixels import apply_modality_lut

    hu = gen.phantom_hu(64, 1)
    for ts in ("explicit", "rle"):
        ds = pydicom.dcmread(io.BytesIO(gen.dicom_bytes(hu, ts)))
        assert (apply_modality_lut(ds.pixel_array, ds) == hu).all(), ts


def test_collect_and_table_quick(tmp_path):
    res = collect(("scaling", "reward"), quick=True, mix_n=0, mix_timeout=5, log=lambda m: None)
    sc = res["scaling"]
    assert sc["cpus_usable"] >= 1 and 0 <= sc["cores_free"] <= 2
    assert sc.get("same_bytes") is True or "not_measured" in sc
    assert all(r["speedup"] > 0 for r in res["reward"])
    text = table(res)
    assert "--workers 2 vs 1" in text and "box_score, 30 pred x 30 gt" in text
    json.dumps(res)  # results are JSON-ready


def test_scaling_bytes_and_not_measured_row(tmp_path):
    row = build_rows.scaling(tmp_path, n=12, shard_samples=3, min_free=0.0)  # force both builds
    assert row["same_bytes"] is True and row["workers1_s"] > 0
    busy = build_rows._not_measured({"cpus_usable": 2, "loadavg_1m": 6.5, "cores_free": 0.4, "idle_cores": 0.5,
                                     "spin_cores": 0.4}, 1000)
    text = table({"scaling": busy, "ray": busy})
    assert text.count("not measured") == 2 and "0.40 cores free" in text and "0.5 idle" in text
    idle = build_rows.idle_cores(0.2)  # /proc/stat on Linux: between none and all of the CPUs idle
    assert idle is None or 0.0 <= idle <= os.cpu_count() + 1e-9
    assert " yes" not in text and "NO" not in text  # no verdict without two free cores


def test_baselines_never_import_the_project():
    import subprocess
    import sys

    code = ("import sys, bench.baselines, bench.gen; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('medmo_data', 'medmo_train')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_baseline_window_is_the_documented_rule():
    import numpy as np

    from bench.baselines import window

    v = np.array([-1000.0, -160.0, 40.0, 239.0, 240.0, 3000.0])
    assert window(v, -160, 240).tolist() == [0, 0, 128, 254, 255, 255]  # same as tests/test_pixels.py


def test_loader_measures_as_a_dataloader_worker():
    import torch

    from bench.loader import dataloader_worker_threads

    before = torch.get_num_threads()
    with dataloader_worker_threads():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_img2dataset_row_skips_or_renders():
    from bench import img2dataset_row

    if not img2dataset_row.available():
        assert "skipped" in img2dataset_row.run(None)
    text = table({"img2dataset": {"skipped": "img2dataset is not installed (pip install 'medmo-data[bench]')"}})
    assert "img2dataset is not installed" in text
    text = table({"img2dataset": {"samples": 600, "folder_ms_per_image": 1.5, "img2dataset_ms_per_image": 2.0,
                                  "ratio": 2.0 / 1.5, "startup_s": {}}})
    assert "1.33" in text and ">= 1.00" in text


def test_missing_piece_is_reported_not_fatal():
    res = {"mix": {"skipped": "not available: medmo_data.mix.mixer is not installed"}}
    assert "not available" in table(res)


def test_naive_reward_matches_vectorized():
    from medmo_train import rewards

    from bench.reward import naive_box_score

    p, g = [[10, 10, 50, 60], [100, 100, 150, 170]], [[12, 8, 48, 66]]
    assert naive_box_score(p, g) == pytest.approx(rewards.box_score(p, g), abs=1e-12)
    assert naive_box_score(p, []) == 0.5 and naive_box_score([], g) == 0.0


def test_mix_floor_applies_the_same_rules_as_mix():
    """bench/mix_floor.py (plain polars, no project code) excludes exactly the rows `mix` excludes on the
    bench's synthetic index, where every rule has planted cases; the exact-match floor excludes fewer."""
    import subprocess
    import sys

    from bench.mix_26m import run

    code = ("import runpy, sys; sys.argv = ['mix_floor', '/nonexistent']; "
            "runpy.run_path('bench/mix_floor.py', run_name='not_main'); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('medmo_data', 'medmo_train')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    r = run(40_000)
    assert r["filters"] == {"decontam": 651, "dup_image_exact": 200, "dup_image_near": 200, "trap": 20}
    assert r["decontam"] == {"MedQA": 550, "VQA-RAD": 101}
    assert r["same_rows"] and r["baseline_excluded_rows"] == r["excluded_rows"] == 1071


def test_print_ab_restores_the_build_and_reports_each_variant():
    """bench/print_ab.py swaps the build's `fingerprint`: afterwards the real one is back, and each variant
    row is there with a positive cost (the order of costs is not asserted: 12 images are noise)."""
    import medmo_data.build.normalize as normalize
    from bench import print_ab

    real = normalize.fingerprint
    rows = print_ab.run(n=12, repeats=1)
    assert normalize.fingerprint is real
    assert list(rows) == ["build as it is", "box reduction, no resizes", "pixel hash, no print", "floor"]
    assert all(r["cpu_ms_per_sample"] > 0 for r in rows.values())
    assert rows["floor"]["floor_over_this"] == 1.0
