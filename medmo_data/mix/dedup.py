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

import numpy as np
import polars as pl

from .decontam import band_values, bands, informative

DESCRIBE = ("caption", "report", "summarization")


def dedup_frame(index: pl.DataFrame, src: int) -> pl.DataFrame:
    """The compact per-row frame dedup needs, from index columns (`row` already assigned)."""
    from .decontam import sha64

    has_img = pl.col("image_sha256").list.len() > 0
    return index.select(
        pl.col("row").cast(pl.Int64),
        pl.lit(src, dtype=pl.UInt16).alias("src"),
        pl.when(pl.col("task").is_in(DESCRIBE) & has_img).then(pl.lit("describe"))
          .otherwise(pl.col("task")).alias("family"),
        pl.when(has_img).then(pl.col("image_sha256").list.join("|").hash(seed=11)).otherwise(None).alias("img"),
        pl.col("image_dhash").list.first().alias("dh0"),
        sha64(pl.col("prompt_norm_sha1")).fill_null(0).alias("ph"),
        sha64(pl.col("answer_norm_sha1")).fill_null(0).alias("ah"),
    ).with_columns(
        qkey=pl.when(pl.col("family") == "describe").then(pl.lit(0, dtype=pl.UInt64)).otherwise(pl.col("ph")),
        family=pl.col("family").cast(pl.Categorical),
    )


def _in_row_order(df: pl.DataFrame) -> pl.DataFrame:
    """The frame sorted by row: the rules below rely on it; the mixer hands rows over in order already."""
    r = df["row"].to_numpy()
    return df if (r[1:] > r[:-1]).all() else df.sort("row")


def dedup(parts: list[pl.DataFrame], distance: int = 2,
          window: int = 16) -> tuple[pl.DataFrame, dict[str, int]]:
    """(dropped rows: row, reason, kept; info) for the frames from `dedup_frame` (all sources). The list
    is emptied: its frames are concatenated and released as the rules narrow the rows down."""
    df = _in_row_order(pl.concat(parts))
    parts.clear()
    out = []
    # 1. identical samples
    key = ["img", "ph", "ah"]
    d1 = df.with_columns(kept=pl.col("row").min().over(key)).filter(pl.col("row") != pl.col("kept"))
    d1 = d1.with_columns(reason=pl.when(pl.col("img").is_null()).then(pl.lit("dup_text_exact"))
                         .otherwise(pl.lit("dup_exact")))
    out.append(d1.select("row", "reason", "kept"))
    rest = _in_row_order(df.join(d1.select("row"), on="row", how="anti").filter(pl.col("img").is_not_null()))
    del df  # rule 1's input is not needed past here
    # 2. same images, same task kind (+ question), another source
    key = ["img", "family", "qkey"]
    # rows are in row order, so the group's first src is the kept row's (one window pass, no join)
    g = rest.with_columns(kept=pl.col("row").min().over(key), ksrc=pl.col("src").first().over(key))
    d2 = g.filter(pl.col("src") != pl.col("ksrc")).with_columns(reason=pl.lit("dup_image_exact"))
    out.append(d2.select("row", "reason", "kept"))
    del g
    rest = rest.join(d2.select("row"), on="row", how="anti").drop_nulls("dh0")
    # 3. near images across sources, sorted neighbourhood per band
    info = {"near_oversize_bucket_rows": 0}
    if rest.height and distance >= 0 and rest["src"].n_unique() > 1:
        h = rest["dh0"].to_numpy()
        rest = _in_row_order(rest.filter(pl.Series(informative(h))))
        h = rest["dh0"].to_numpy().astype(np.uint64)
        fam = rest["family"].to_physical().to_numpy().astype(np.uint64) << np.uint64(32)
        q = rest["qkey"].to_numpy()
        row = rest["row"].to_numpy()
        src = rest["src"].to_numpy()
        drop_row: dict[int, int] = {}
        for shift, width in bands(distance):
            # bucket = (family, band value) in one word (band < 2**32) and the question key; lexsort is
            # stable and the arrays are in row order, so each bucket comes out sorted by row
            b = band_values(h, shift, width).astype(np.uint64)
            keys = [fam | b] if width <= 32 else [b, fam]
            order = np.lexsort((*keys, q))
            kk = [k[order] for k in (*keys, q)]
            hh, rr, ss = h[order], row[order], src[order]
            for k in range(1, window + 1):
                if k >= len(order):
                    break
                same = np.logical_and.reduce([x[k:] == x[:-k] for x in kk])
                hit = same & (ss[k:] != ss[:-k]) & (np.bitwise_count(hh[k:] ^ hh[:-k]) <= distance)
                for i in np.nonzero(hit)[0]:
                    r, kr = int(rr[i + k]), int(rr[i])
                    if r not in drop_row or kr < drop_row[r]:
                        drop_row[r] = kr
            change = np.logical_or.reduce([x[1:] != x[:-1] for x in kk])
            runs = np.diff(np.flatnonzero(np.r_[True, change, True]))
            info["near_oversize_bucket_rows"] += int(runs[runs > window + 1].sum())
        if drop_row:
            rows = np.fromiter(drop_row.keys(), np.int64, len(drop_row))
            kept = np.fromiter(drop_row.values(), np.int64, len(drop_row))
            out.append(pl.DataFrame({"row": rows, "reason": ["dup_image_near"] * len(rows), "kept": kept}))
    res = pl.concat([o.cast({"row": pl.Int64, "kept": pl.Int64}) for o in out]).sort("row")
    return res, info
