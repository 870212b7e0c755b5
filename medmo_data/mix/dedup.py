"""Dedup across the sources of one stage, on index columns only (hashes, never image bytes).

Rows arrive in priority order: the `row` number grows with the source's rank in the stage spec
(`dedup.priority`, else the order of `sources:`), then shard order, then order inside a shard. The
copy with the smallest row number is kept. Three rules, applied in this order:

1. `dup_exact` / `dup_text_exact`: same images (pixel sha256 of every image), same normalised prompt and
   same normalised answer: an identical sample, inside a source or across sources. Text-only samples
   with the same prompt and answer are `dup_text_exact`.
2. `dup_image_exact`: the same images in two different sources for the same kind of task. Captions,
   reports and summaries form one kind ("describe": one text per image), so ROCO and ROCOv2 copies of a
   figure collapse; for VQA, grounding and classification the normalised question is part of the key,
   because one image legitimately carries many questions.
3. `dup_image_near`: as rule 2 with the first image's 64-bit dHash within `image_dhash_distance` bits
   (re-encoded or resized copies). Candidates come from a sorted-neighbourhood pass over dHash bands
   (d+1 bands: two hashes within d bits share one band exactly), comparing each row with the `window`
   rows before it in its band bucket, so cost is O(rows x bands x window), never O(rows^2). Rows in
   buckets larger than the window may miss a partner; their count is reported.
Near-duplicates inside one source are left alone: adjacent CT slices look alike and are not copies.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

from .decontam import bands

DESCRIBE = ("caption", "report", "summarization")


def dedup_frame(index: pl.DataFrame, src: int) -> pl.DataFrame:
    """The compact per-row frame dedup needs, from index columns (`row` already assigned)."""
    from .decontam import sha64

    has_img = pl.col("image_hash").list.len() > 0
    return index.select(
        pl.col("row").cast(pl.Int64),
        pl.lit(src, dtype=pl.UInt16).alias("src"),
        pl.when(pl.col("task").is_in(DESCRIBE) & has_img).then(pl.lit("describe"))
          .otherwise(pl.col("task")).alias("family"),
        pl.when(has_img).then(pl.col("image_hash").list.join("|").hash(seed=11)).otherwise(None).alias("img"),
        pl.col("image_dhash").list.first().alias("dh0"),
        sha64(pl.col("prompt_norm_sha1")).fill_null(0).alias("ph"),
        sha64(pl.col("answer_norm_sha1")).fill_null(0).alias("ah"),
    ).with_columns(
        qkey=pl.when(pl.col("family") == "describe").then(pl.lit(0, dtype=pl.UInt64)).otherwise(pl.col("ph")),
        family=pl.col("family").cast(pl.Categorical),
    )


Query = Callable[[pl.LazyFrame], pl.LazyFrame]
MEMORY_ROWS = 40_000_000  # past this many rows the compact frames go to a temporary folder (~54 bytes a row)
PARTITION_ROWS = 40_000_000  # rule 3 sorts at most about this many rows at a time


class Parts:
    """The compact frames of every index file, in arrival (row) order: kept in memory up to MEMORY_ROWS
    rows, past that written to Parquet in a temporary folder (under $TMPDIR, ~29 bytes a row), so a
    260M-row stage holds none of them in memory."""

    def __init__(self) -> None:
        self.frames: list[pl.DataFrame] = []
        self.rows = 0
        self._tmp: tempfile.TemporaryDirectory | None = None
        self._files: list[str] = []

    def add(self, df: pl.DataFrame) -> None:
        self.rows += df.height
        if self._tmp is None and self.rows > MEMORY_ROWS:
            self._tmp = tempfile.TemporaryDirectory(prefix="medmo-mix-dedup-")
            for f in self.frames:
                self._write(f)
            self.frames.clear()
        if self._tmp is not None:
            self._write(df)
        else:
            self.frames.append(df)

    def _write(self, df: pl.DataFrame) -> None:
        assert self._tmp is not None
        path = str(Path(self._tmp.name) / f"part-{len(self._files):06d}.parquet")
        df.write_parquet(path, compression="lz4", statistics=False)  # hashes do not compress; lz4 is ~free
        self._files.append(path)

    @property
    def spilled(self) -> bool:
        return self._tmp is not None

    def gather(self, query: Query) -> pl.DataFrame:
        """`query` run on each part alone, the results concatenated in row order. Memory holds one part's
        input at a time plus the results: one streaming query over all the spilled files instead buffered
        ~90 bytes a row in polars (22.8 GiB peak at 260M rows)."""
        parts = (pl.scan_parquet(f) for f in self._files) if self._tmp is not None else (f.lazy() for f in self.frames)
        return pl.concat([query(lf).collect() for lf in parts])

    def close(self) -> None:
        self.frames.clear()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def _in_row_order(df: pl.DataFrame) -> pl.DataFrame:
    """The frame sorted by row: the rules below rely on it; the mixer hands rows over in order already."""
    r = df["row"].to_numpy()
    return df if (r[1:] > r[:-1]).all() else df.sort("row")


def _key_hash(key: list[str]) -> pl.Expr:
    return pl.reduce(lambda a, b: a ^ b, [pl.col(c).hash(seed=13 + i) for i, c in enumerate(key)])


def _repeats(parts: Parts, key: list[str], k: int, rows: Query) -> pl.DataFrame:
    """The rows (`rows` of each part) whose `key` occurs more than once, in row order. One 64-bit hash of
    the key per row (each column hashed with its own seed; 8 bytes a row), sorted, finds the repeated
    values, one hash partition (hash mod `k`) at a time; a hash collision only adds rows, so the exact
    window that then runs on these few rows decides as it would on all rows."""
    h = _key_hash(key)
    again = []
    for p in range(k):
        hk = parts.gather(lambda lf, p=p: rows(lf).select(h.alias("h")).filter(pl.col("h") % k == p))
        hk = hk.to_series().sort()
        again.append(hk.filter(hk == hk.shift(1)).unique())
        del hk
    found = pl.concat(again).implode()
    return _in_row_order(parts.gather(lambda lf: rows(lf).filter(h.is_in(found))))


def _informative(c: pl.Expr) -> pl.Expr:
    """decontam.informative as an expression: 4 to 60 set bits."""
    n = c.bitwise_count_ones()
    return (n >= 4) & (n <= 60)


def _band(c: pl.Expr, shift: int, width: int) -> pl.Expr:
    u = c.reinterpret(signed=False)
    return u if width >= 64 else (u // pl.lit(1 << shift, pl.UInt64)) % pl.lit(1 << width, pl.UInt64)


def dedup(parts: Parts, distance: int = 2, window: int = 16) -> tuple[pl.DataFrame, dict[str, int]]:
    """(dropped rows: row, reason, kept; info) for the frames from `dedup_frame` (all sources, collected
    in `parts`). Each rule reads only the columns it needs, and past PARTITION_ROWS rows each works on
    hash partitions (a key or a bucket never spans two), so memory stays bounded at any row count."""
    k = -(-parts.rows // PARTITION_ROWS) or 1  # hash partitions of the rules' sorts
    out = []
    # 1. identical samples
    key = ["img", "ph", "ah"]
    d1 = _repeats(parts, key, k, lambda lf: lf)
    d1 = d1.with_columns(kept=pl.col("row").min().over(key)).filter(pl.col("row") != pl.col("kept"))
    d1 = d1.with_columns(reason=pl.when(pl.col("img").is_null()).then(pl.lit("dup_text_exact"))
                         .otherwise(pl.lit("dup_exact")))
    out.append(d1.select("row", "reason", "kept"))
    gone1 = d1["row"].implode()

    def rule2_rows(lf: pl.LazyFrame) -> pl.LazyFrame:
        return lf.filter(pl.col("img").is_not_null() & ~pl.col("row").is_in(gone1))

    # 2. same images, same task kind (+ question), another source
    key = ["img", "family", "qkey"]
    # rows are in row order, so the group's first src is the kept row's (one window pass, no join)
    g = _repeats(parts, key, k, rule2_rows)
    g = g.with_columns(kept=pl.col("row").min().over(key), ksrc=pl.col("src").first().over(key))
    d2 = g.filter(pl.col("src") != pl.col("ksrc")).with_columns(reason=pl.lit("dup_image_exact"))
    out.append(d2.select("row", "reason", "kept"))
    gone2 = d2["row"].implode()

    def rule3_rows(lf: pl.LazyFrame) -> pl.LazyFrame:
        return rule2_rows(lf).filter(~pl.col("row").is_in(gone2) & pl.col("dh0").is_not_null()
                                     & _informative(pl.col("dh0"))).select("row", "src", "family", "dh0", "qkey")

    # 3. near images across sources, sorted neighbourhood per band
    info = {"near_oversize_bucket_rows": 0}
    if distance >= 0:
        per_src = parts.gather(lambda lf: rule3_rows(lf).group_by("src").len())
        n, n_src = int(per_src["len"].sum()), per_src["src"].n_unique()
        drop_row: dict[int, int] = {}
        if n and n_src > 1:
            k = -(-n // PARTITION_ROWS)  # rule 3's rows may be fewer
            cols = _near_columns(_in_row_order(parts.gather(rule3_rows))) if k == 1 else None
            for shift, width in bands(distance):
                bucket = _key_hash(["family", "qkey"]) ^ _band(pl.col("dh0"), shift, width).hash(seed=29)
                for p in range(k):
                    if k > 1:  # one partition of this band's buckets: (family, question, band) hashed
                        part = parts.gather(lambda lf, b=bucket, p=p: rule3_rows(lf).filter(b % k == p))
                        cols = _near_columns(_in_row_order(part))
                        del part
                    assert cols is not None
                    info["near_oversize_bucket_rows"] += _near_band(cols, shift, width, distance, window, drop_row)
        if drop_row:
            rows = np.fromiter(drop_row.keys(), np.int64, len(drop_row))
            kept = np.fromiter(drop_row.values(), np.int64, len(drop_row))
            out.append(pl.DataFrame({"row": rows, "reason": ["dup_image_near"] * len(rows), "kept": kept}))
    res = pl.concat([o.cast({"row": pl.Int64, "kept": pl.Int64}) for o in out]).sort("row")
    return res, info


def _near_columns(rest: pl.DataFrame) -> dict[str, np.ndarray]:
    """The arrays rule 3 works on (rows of one partition, in row order). The question key becomes its rank among the distinct keys (same
    order as the key), so family, rank and band value fit one sortable 64-bit word for most bands."""
    q_rank = rest.select(pl.col("qkey").rank("dense") - 1)["qkey"].to_numpy().astype(np.uint64)
    return {"h": rest["dh0"].to_numpy().astype(np.uint64), "row": rest["row"].to_numpy(),
            "src": rest["src"].to_numpy(), "fam": rest["family"].to_physical().to_numpy().astype(np.uint64),
            "q": q_rank, "q_bits": np.uint64(int(q_rank.max()).bit_length() if len(q_rank) else 0)}


def _near_band(c: dict[str, np.ndarray], shift: int, width: int, distance: int, window: int,
               drop_row: dict[int, int]) -> int:
    """One band of rule 3: rows sorted by bucket (question, family, band value), ties in row order, each
    compared with the `window` rows before it in its bucket; hits go to `drop_row` (row -> kept row, the
    smallest). Returns the rows in buckets longer than the window (they may miss a partner)."""
    if not len(c["h"]):  # an empty partition
        return 0
    b = (c["h"] >> np.uint64(shift)) & np.uint64((1 << width) - 1)  # band_values, without an int64 copy
    fam_bits = max(int(c["fam"].max()).bit_length(), 1)
    if width + fam_bits + int(c["q_bits"]) <= 64:  # one sort key
        keys = {"k": (c["q"] << np.uint64(width + fam_bits)) | (c["fam"] << np.uint64(width)) | b}
    else:  # wide band (distance 0) or very many distinct questions: three
        keys = {"q": c["q"], "fam": c["fam"], "b": b}
    del b
    # a stable sort keeps row order inside each bucket; polars sorts the dHash and source along (multi-
    # threaded: 2.6 s at 26M rows against 6.6 s for numpy's stable argsort plus 3.1 s of gathers, one
    # run under load); rows are looked up for hits only
    srt = pl.DataFrame({**keys, "h": c["h"], "src": c["src"]}).with_row_index("i").sort(list(keys), maintain_order=True)
    del keys
    sk = [srt[k].to_numpy() for k in srt.columns[1:-2]]
    change = np.logical_or.reduce([x[1:] != x[:-1] for x in sk])
    ck = sk[0] if len(sk) == 1 else np.cumsum(np.r_[np.int64(0), change], dtype=np.int64)  # equal within a bucket
    runs = np.diff(np.flatnonzero(np.r_[True, change, True]))
    del change, sk
    hh, ss, order = srt["h"].to_numpy(), srt["src"].to_numpy(), srt["i"].to_numpy()
    for k in range(1, min(window, int(runs.max()) - 1 if len(runs) else 0) + 1):
        # pairs (i, i + k) inside one bucket from different sources, within `distance` bits; whole-array
        # comparisons, then one gather of the few hits
        m = ck[k:] == ck[:-k]
        m &= ss[k:] != ss[:-k]
        m &= np.bitwise_count(hh[k:] ^ hh[:-k]) <= distance
        i = np.flatnonzero(m)
        for r, kr in zip(c["row"][order[i + k]].tolist(), c["row"][order[i]].tolist(), strict=True):
            if r not in drop_row or kr < drop_row[r]:
                drop_row[r] = kr
    return int(runs[runs > window + 1].sum())
