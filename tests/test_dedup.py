"""`mix.dedup.dedup` against a plain-Python transcription of its three rules (docs/mixing.md "Dedup")."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from medmo_data.mix import dedup as dedup_module
from medmo_data.mix.decontam import band_values, bands, informative
from medmo_data.mix.dedup import Parts, dedup


def frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"row": pl.Int64, "src": pl.UInt16, "family": pl.String, "img": pl.UInt64,
                                      "dh0": pl.Int64, "ph": pl.UInt64, "ah": pl.UInt64, "qkey": pl.UInt64}
                        ).with_columns(pl.col("family").cast(pl.Categorical))


def parts(frames: list[pl.DataFrame]) -> Parts:
    p = Parts()
    for f in frames:
        p.add(f)
    return p


@pytest.fixture(params=["memory", "spilled"])
def mode(request, monkeypatch):
    """In memory, or as a 260M-row stage runs: frames spilled to Parquet, rule 3 in partitions."""
    if request.param == "spilled":
        monkeypatch.setattr(dedup_module, "MEMORY_ROWS", 100)
        monkeypatch.setattr(dedup_module, "PARTITION_ROWS", 40)
    return request.param


def reference(rows: list[dict], distance: int, window: int) -> dict[int, tuple[str, int]]:
    """row -> (reason, kept row): the rules written out with dicts and loops."""
    out: dict[int, tuple[str, int]] = {}
    first: dict[tuple, int] = {}
    for r in rows:  # rows are in row order
        k = (r["img"], r["ph"], r["ah"])
        if k in first:
            out[r["row"]] = ("dup_text_exact" if r["img"] is None else "dup_exact", first[k])
        else:
            first[k] = r["row"]
    rest = [r for r in rows if r["row"] not in out and r["img"] is not None]
    first2: dict[tuple, dict] = {}
    for r in rest:
        k = (r["img"], r["family"], r["qkey"])
        if k not in first2:
            first2[k] = r
        elif first2[k]["src"] != r["src"]:
            out[r["row"]] = ("dup_image_exact", first2[k]["row"])
    rest = [r for r in rest if r["row"] not in out and r["dh0"] is not None]
    rest = [r for r in rest if informative(np.array([r["dh0"]], np.int64))[0]]
    near: dict[int, int] = {}
    if len({r["src"] for r in rest}) > 1:
        for shift, width in bands(distance):
            buckets: dict[tuple, list[dict]] = {}
            for r in rest:
                b = int(band_values(np.array([r["dh0"]], np.int64), shift, width)[0])
                buckets.setdefault((r["family"], b, r["qkey"]), []).append(r)
            for members in buckets.values():
                for j, r in enumerate(members):
                    for o in members[max(0, j - window):j]:
                        dist = bin((r["dh0"] ^ o["dh0"]) & (2**64 - 1)).count("1")
                        if o["src"] != r["src"] and dist <= distance:
                            near[r["row"]] = min(near.get(r["row"], o["row"]), o["row"])
    out.update({r: ("dup_image_near", k) for r, k in near.items()})
    return out


def random_rows(rng: random.Random, n: int) -> list[dict]:
    bases = [rng.getrandbits(64) - 2**63 for _ in range(12)]
    rows = []
    for i in range(n):
        img = rng.choice([None, *range(1, 25)])
        dh = rng.choice(bases)
        for _ in range(rng.choice([0, 0, 1, 2, 3])):
            dh ^= 1 << rng.randrange(63)
        rows.append({"row": i * 3 + rng.randrange(3), "src": rng.randrange(3), "family": rng.choice(["describe", "vqa"]),
                     "img": img, "dh0": None if img is None else dh, "ph": rng.randrange(4), "ah": rng.randrange(3),
                     "qkey": rng.choice([0, 0, 17, 2**63 + 5])})
    return rows


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(("distance", "window"), [(2, 16), (2, 2), (0, 4), (5, 3)])
def test_dedup_equals_the_rules_written_out(seed, distance, window, mode):
    rows = random_rows(random.Random(seed), 300)
    want = reference(rows, distance, window)
    # two parts, as the mixer hands them over (one per index file)
    p = parts([frame(rows[:140]), frame(rows[140:])])
    assert p.spilled == (mode == "spilled")
    got, info = dedup(p, distance=distance, window=window)
    p.close()
    assert {r: (why, k) for r, why, k in got.select("row", "reason", "kept").iter_rows()} == want
    assert got["row"].is_sorted()
    assert len(want) > 20 and {w for w, _ in want.values()} >= {"dup_exact", "dup_text_exact", "dup_image_exact"}
    assert info["near_oversize_bucket_rows"] >= 0


def test_near_rule_finds_pairs_in_long_buckets_up_to_the_window(mode):
    """60 near copies of one dHash (bit 0 flipped on odd rows; odd rows below 40 from source 1, the rest
    source 0): a row is only compared with the 16 rows before it in its bucket, never with its own source."""
    h = 0x1234_5678_9ABC_DEF0
    rows = [{"row": i, "src": i % 2 if i < 40 else 0, "family": "describe", "img": 100 + i, "dh0": h ^ (i % 2),
             "ph": 0, "ah": i, "qkey": 0} for i in range(60)]
    got, info = dedup(parts([frame(rows)]), distance=2, window=16)
    want = reference(rows, 2, 16)
    assert {r: (why, k) for r, why, k in got.select("row", "reason", "kept").iter_rows()} == want
    assert want[2] == ("dup_image_near", 1) and want[41] == ("dup_image_near", 9)  # 9: 16 odd rows back
    assert 58 not in want and 0 not in want  # the 16 rows before 58 are all source 0
    assert info["near_oversize_bucket_rows"] == 60 * len(bands(2))


def test_spilled_parts_are_removed_on_close(monkeypatch):
    monkeypatch.setattr(dedup_module, "MEMORY_ROWS", 10)
    p = parts([frame(random_rows(random.Random(0), 30))])
    folder = Path(p._files[0]).parent
    assert p.spilled and folder.is_dir() and p.gather(lambda lf: lf).height == 30
    p.close()
    assert not folder.exists()
