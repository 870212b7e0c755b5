"""The bench's pieces on tiny inputs, so `make bench` does not rot between runs: generators write the
real layouts, baselines and builds agree on counts, the table renders, reward transcriptions agree."""

from __future__ import annotations

import io
import json

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
    assert res["scaling"]["same_bytes"] is True
    assert all(r["speedup"] > 0 for r in res["reward"])
    text = table(res)
    assert "--workers 2 vs 1" in text and "box_score, 30 pred x 30 gt" in text
    json.dumps(res)  # results are JSON-ready


def test_missing_piece_is_reported_not_fatal():
    res = {"mix": {"skipped": "not available: medmo_data.mix.mixer is not installed"}}
    assert "not available" in table(res)


def test_naive_reward_matches_vectorized():
    from medmo_train import rewards

    from bench.reward import naive_box_score

    p, g = [[10, 10, 50, 60], [100, 100, 150, 170]], [[12, 8, 48, 66]]
    assert naive_box_score(p, g) == pytest.approx(rewards.box_score(p, g), abs=1e-12)
    assert naive_box_score(p, []) == 0.5 and naive_box_score([], g) == 0.0
