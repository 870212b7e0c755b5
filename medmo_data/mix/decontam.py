"""Decontamination: drop training samples that overlap the benchmarks MedMO is evaluated on.

Test items come from (a) the test splits (and, for MedQA/MedMCQA, the validation splits the harnesses
score) of every source built under the data folder, and (b) benchmark files the user names with
`--benchmark NAME=PATH` (formats in docs/mixing.md; read in test_items.py). Nothing here reads a shard: training rows come from
the per-shard indexes, test items from indexes or small benchmark files.

Rules (thresholds from the stage spec's `decontam:` block):
- text item (no image): excluded when the training prompt contains the item's normalised text
  (`text_exact`, prompt hashes equal) or at least `containment` of the item's word `ngram`-grams
  (`text_ngram`). Grams found in more than `max_gram_items` test items are boilerplate and ignored.
- image item: excluded when a training image equals an item image (`image_exact`: the exact pixel hash) or is
  within `image_dhash_distance` bits of it (`image_near`: 64-bit dHash, banded so no pair scan) and, where
  both sides carry a 16x16 grey thumbnail, the thumbnails differ by at most `image_thumb_distance` grey
  levels on average (at 9x8 pixels different patients' CT slices at one level share a dHash; a resized or
  re-encoded copy keeps its thumbnail; docs/mixing.md has the measured rates). Indexes written before the
  thumbnail column fall back to the dHash alone, counted. Or the row
  shares the item's PubMed Central article (`pmcid`, the PMC-OA vs PMC-VQA trap). Rows of the benchmark's
  own source share images with the test split by design of its official split (VQA-RAD asks train and
  test questions about the same images), so there an image hit also needs a text hit. Text alone never
  excludes for an image item: benchmark VQA questions are templated ("What modality is shown?").
- source traps (sources.md section 6.2) in TRAPS: whole sources that are test sets, and sub-sources
  named in a row's meta (MedReason's dataset_name, PubMedQA's PQA-L).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from .fingerprint import THUMB_SIDE

ThumbLookup = Callable[[pl.DataFrame], "pl.DataFrame | None"]  # rows -> (row, image_thumb), None: no column

# Benchmark -> the recipe that builds it and the splits that hold its scored items (sources.md 6.1).
BENCHMARKS: dict[str, dict[str, Any]] = {
    "VQA-RAD": {"source": "vqa_rad", "splits": ["test"]},
    "SLAKE": {"source": "slake", "splits": ["test"]},
    "PathVQA": {"source": "path_vqa", "splits": ["test"]},
    "PMC-VQA": {"source": "pmc_vqa", "splits": ["test"]},
    "OmniMedVQA": {"source": None, "splits": []},
    "MMMU-Med": {"source": None, "splits": []},
    "MedXpertQA": {"source": None, "splits": []},
    "MMLU-Med": {"source": None, "splits": []},
    "PubMedQA": {"source": "pubmedqa", "splits": ["test"]},
    "MedMCQA": {"source": "medmcqa", "splits": ["val", "test"]},  # MedEvalKit scores validation
    "MedQA": {"source": "medqa", "splits": ["test", "val"]},  # lm-eval scores dev as validation
    "Medbullets": {"source": None, "splits": []},
    "SuperGPQA": {"source": None, "splits": []},
    "MedSG-Bench": {"source": "medsg", "splits": ["test"]},
    "IU-Xray": {"source": "iu_xray", "splits": ["test"]},
    "MIMIC-CXR": {"source": "mimic_cxr", "splits": ["test"]},
    "CheXpert-Plus": {"source": "chexpert_plus", "splits": ["test"]},
    "MIMIC-CXR-VQA": {"source": "mimic_cxr_vqa", "splits": ["test"]},
}
BY_SOURCE = {v["source"]: k for k, v in BENCHMARKS.items() if v["source"]}

# Known traps (sources.md 6.2). `sources`: regex on the source name -> whole source out.
# `meta`: a row is out when one of `keys` in its meta has a listed value (value -> benchmark).
TRAPS: list[dict[str, Any]] = [
    {"sources": r"mmmlu|(^|_)mmlu", "benchmark": "MMLU-Med",
     "why": "medical_meadow_mmmlu and mmmlu-<subject> are MMLU test questions"},
    {"sources": r"usmle_self_assessment", "benchmark": "USMLE-self-assessment",
     "why": "medAlpaca's own evaluation set"},
    {"sources": r"^medreason$", "keys": ["dataset_name", "source_dataset"],
     "values": {"mmlu": "MMLU-Med", "pubmedqa_labeled": "PubMedQA", "medxpertqa": "MedXpertQA",
                "lasthumanity": "HLE"},
     "why": "MedReason built these sub-sets from benchmark test splits (configs/dataset_configs.yml)"},
    {"sources": r".*", "keys": ["subset", "config", "pubmedqa_subset"],
     "values": {"pqa_labeled": "PubMedQA", "pqa-l": "PubMedQA", "pqal": "PubMedQA", "pqa_l": "PubMedQA"},
     "why": "all 1,000 PQA-L items are evaluation material (lm-eval scores all of them)"},
    {"sources": r"^alpacare", "keys": ["subset", "file"], "values": {"medinstruct-test": "MedInstruct-test",
                                                                     "medinstruct-test.jsonl": "MedInstruct-test"},
     "why": "AlpaCare's clinician-written evaluation set"},
]
PMCID = re.compile(r"PMC\d{4,}", re.IGNORECASE)
PMC_BENCHMARKS = {"PMC-VQA"}  # test figures whose whole PMC article is kept out of training (sources.md 6.2)
_P = np.uint64(0x100000001B3)  # FNV prime: rolling n-gram hash, wraps mod 2**64


@dataclass
class DecontamOptions:
    ngram: int = 8
    containment: float = 0.5
    image_dhash_distance: int = 4
    image_thumb_distance: float = 4.0
    max_gram_items: int = 50


def benchmark_name(name: str) -> str:
    """A user's benchmark name in the table's spelling (case and punctuation ignored)."""
    k = re.sub(r"[^a-z0-9]", "", name.lower())
    for b in BENCHMARKS:
        if re.sub(r"[^a-z0-9]", "", b.lower()) == k:
            return b
    return name


def words(texts: pl.Series) -> pl.Series:
    """NFKC, lower case, runs of word characters: the polars twin of fingerprint.normalize_text. ASCII
    text is its own NFKC form, so only the other texts pay for the normalisation."""
    t = texts.fill_null("")
    t = pl.select(pl.when(t.str.contains(r"[^\x00-\x7F]")).then(t.str.normalize("NFKC")).otherwise(t)).to_series()
    return t.str.to_lowercase().str.extract_all(r"\w+")


def grams(texts: pl.Series, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(text index, 64-bit hash) for every word n-gram of every text; texts shorter than n give none."""
    w = pl.DataFrame({"r": np.arange(len(texts), dtype=np.int64), "w": words(texts)}).explode("w")
    w = w.drop_nulls("w")
    r = w["r"].to_numpy()
    h = w["w"].hash(seed=7).to_numpy().astype(np.uint64)
    m = len(h) - n + 1
    if m <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.uint64)
    g = np.zeros(m, np.uint64)
    with np.errstate(over="ignore"):
        for k in range(n):
            g = g * _P + h[k:k + m]
    ok = r[:m] == r[n - 1:n - 1 + m]
    return r[:m][ok], g[ok]


def sha64(col: pl.Expr) -> pl.Expr:
    """First 64 bits of a hex exact-image hash as UInt64 (collision odds ~1e-5 at 26M images)."""
    return col.str.slice(0, 16).str.to_integer(base=16, dtype=pl.UInt64, strict=False)


def bands(d: int) -> list[tuple[int, int]]:
    """(shift, width) of d+1 bands over 64 bits: two hashes within d bits agree on one band."""
    k = d + 1
    edges = [round(i * 64 / k) for i in range(k + 1)]
    return [(edges[i], edges[i + 1] - edges[i]) for i in range(k)]


def radius1_bands(d: int) -> list[tuple[int, int]]:
    """(shift, width) of ceil((d+1)/2) bands: two hashes within d bits differ in at most one bit of some
    band, so a lookup table holding each test hash's band value and its one-bit variants finds every
    pair with ~d/2 joins and far fewer chance candidates than d+1 exact bands."""
    k = (d + 2) // 2
    edges = [round(i * 64 / k) for i in range(k + 1)]
    return [(edges[i], edges[i + 1] - edges[i]) for i in range(k)]


def band_values(h: np.ndarray, shift: int, width: int) -> np.ndarray:
    return ((h.astype(np.uint64) >> np.uint64(shift)) & np.uint64((1 << width) - 1)).astype(np.int64)


def informative(h: np.ndarray) -> np.ndarray:
    """dHashes of near-flat images (fewer than 4 or more than 60 set bits) say nothing about identity."""
    c = np.bitwise_count(h.astype(np.uint64))
    return (c >= 4) & (c <= 60)


class ItemSet:
    """Test items with the lookup tables the matcher joins training chunks against."""

    def __init__(self, items: pl.DataFrame, opts: DecontamOptions) -> None:
        self.opts = opts
        items = items.unique(["benchmark", "item_id", "prompt_sha1"], maintain_order=True)
        self.items = items.with_row_index("item").with_columns(
            is_image=(pl.col("shas").list.len() > 0) | (pl.col("dhashes").list.len() > 0)
                     | (pl.col("pmcids").list.len() > 0))
        it = self.items
        self.meta = it.select("item", "benchmark", "own", "item_id", "is_image")
        self.exact_text = it.filter(pl.col("prompt_sha1") != "").select("prompt_sha1", "item")
        r, g = grams(it["prompt"], opts.ngram)
        gi = pl.DataFrame({"item": r.astype(np.uint32), "gram": g}).unique()
        per = gi.group_by("gram").len()
        stop = per.filter(pl.col("len") > opts.max_gram_items)["gram"]
        self.stop_grams = len(stop)
        self.grams = gi.filter(~pl.col("gram").is_in(stop.implode()))
        self.den = self.grams.group_by("item").len("den")
        self.gram_keys = self.grams["gram"].unique().implode()  # a hash set for is_in (~8x a binary search)
        ex = it.select("item", "shas").explode("shas").drop_nulls()
        self.img_exact = ex.select(sha64(pl.col("shas")).alias("sha"), "item")
        dh = _with_pos(it.select("item", "dhashes"), "dhashes", "ipos").drop_nulls()
        dh = dh.filter(pl.Series(informative(dh["dhashes"].to_numpy())))
        self.item_thumbs = _with_pos(it.select("item", "thumbs"), "thumbs", "ipos").drop_nulls()
        self.near_checks = {"confirmed": 0, "rejected_by_thumb": 0, "unconfirmed_no_thumb": 0}
        self.bands = []
        for shift, width in radius1_bands(opts.image_dhash_distance):
            bv = band_values(dh["dhashes"].to_numpy(), shift, width)
            flips = np.r_[np.int64(0), np.left_shift(np.int64(1), np.arange(width, dtype=np.int64))]
            table = pl.concat([dh.with_columns(pl.Series("b", bv ^ f)) for f in flips])
            self.bands.append((shift, width, table))
        self.pmc = it.select("item", "pmcids").explode("pmcids").drop_nulls().rename({"pmcids": "pmcid"})

    def __len__(self) -> int:
        return self.items.height

    def counts(self) -> dict[str, int]:
        return dict(sorted(self.items.group_by("benchmark").len().iter_rows()))

    def match(self, chunk: pl.DataFrame, thumbs: ThumbLookup | None = None) -> pl.DataFrame:
        """Hits of one chunk of training rows: (row, item, rule, score). `chunk` needs row, prompt,
        prompt_norm_sha1, image_hash, image_dhash, id; `thumbs` gives the image_thumb lists of the
        rows with a dHash near match (None or a None answer: an index without thumbnails)."""
        o = self.opts
        hits: list[pl.DataFrame] = []
        cols = ["row", "item", "rule", "score"]
        t = chunk.select("row", pl.col("prompt_norm_sha1").alias("prompt_sha1")).join(self.exact_text, on="prompt_sha1")
        hits.append(t.select("row", "item", pl.lit("text_exact").alias("rule"), pl.lit(1.0).alias("score")))
        if self.grams.height:
            u = chunk.select("row", "prompt").with_columns(p=pl.col("prompt").hash(seed=3))
            first = u.unique("p", keep="first", maintain_order=True)
            r, g = grams(first["prompt"], o.ngram)
            keep = pl.Series(g, dtype=pl.UInt64).is_in(self.gram_keys).to_numpy()
            if keep.any():
                tg = pl.DataFrame({"u": r[keep], "gram": g[keep]}).unique()
                c = tg.join(self.grams, on="gram").group_by("u", "item").len("n").join(self.den, on="item")
                c = c.with_columns(score=pl.col("n") / pl.col("den")).filter(pl.col("score") >= o.containment)
                c = c.join(first.with_row_index("u").select(pl.col("u").cast(pl.Int64), "p"), on="u")
                c = u.select("row", "p").join(c, on="p")
                hits.append(c.select("row", "item", pl.lit("text_ngram").alias("rule"), pl.col("score").cast(pl.Float64)))
        im = chunk.select("row", "image_hash").explode("image_hash").drop_nulls()
        im = im.select("row", sha64(pl.col("image_hash")).alias("sha")).join(self.img_exact, on="sha")
        hits.append(im.select("row", "item", pl.lit("image_exact").alias("rule"), pl.lit(1.0).alias("score")))
        near = self._near(chunk, thumbs)
        if near is not None:
            hits.append(near)
        if self.pmc.height:
            pm = chunk.select("row", pl.col("id").str.to_uppercase().str.extract_all(PMCID.pattern)
                              .alias("pmcid")).explode("pmcid").drop_nulls().join(self.pmc, on="pmcid")
            hits.append(pm.select("row", "item", pl.lit("pmcid").alias("rule"), pl.lit(1.0).alias("score")))
        hits = [h.select(cols).cast({"row": pl.Int64, "item": pl.UInt32, "score": pl.Float64}) for h in hits]
        return pl.concat(hits)

    def _near(self, chunk: pl.DataFrame, thumbs: ThumbLookup | None) -> pl.DataFrame | None:
        """`image_near` hits: dHash candidates from band joins, confirmed by the 16x16 thumbnails."""
        o = self.opts
        dh = _with_pos(chunk.select("row", "image_dhash"), "image_dhash", "tpos").drop_nulls()
        if not dh.height or not any(b.height for _, _, b in self.bands):
            return None
        dh = dh.filter(pl.Series(informative(dh["image_dhash"].to_numpy())))
        h = dh["image_dhash"].to_numpy()
        near = []
        for shift, width, tb in self.bands:
            q = dh.with_columns(pl.Series("b", band_values(h, shift, width))).join(tb, on="b")
            if q.height:
                x = q["image_dhash"].to_numpy().astype(np.uint64) ^ q["dhashes"].to_numpy().astype(np.uint64)
                near.append(q.with_columns(pl.Series("dist", np.bitwise_count(x).astype(np.int64)))
                            .filter(pl.col("dist") <= o.image_dhash_distance))
        if not near:
            return None
        c = pl.concat(near).select("row", "tpos", "item", "ipos", "dist").unique(maintain_order=True)
        if not c.height:
            return None
        c = c.join(self.item_thumbs, on=["item", "ipos"], how="left")
        got = thumbs(c.select("row").unique()) if thumbs is not None else None
        if got is not None:
            c = c.join(_with_pos(got.select("row", "image_thumb"), "image_thumb", "tpos"), on=["row", "tpos"],
                       how="left")
        else:
            c = c.with_columns(image_thumb=pl.lit(None, dtype=pl.Binary))
        both = (c["thumbs"].bin.size() == THUMB_SIDE ** 2) & (c["image_thumb"].bin.size() == THUMB_SIDE ** 2)
        both = both.fill_null(False).to_numpy()
        mad = np.full(c.height, np.inf)
        if both.any():
            a = np.frombuffer(b"".join(c["thumbs"].filter(pl.Series(both)).to_list()), np.uint8)
            b = np.frombuffer(b"".join(c["image_thumb"].filter(pl.Series(both)).to_list()), np.uint8)
            mad[both] = np.abs(a.astype(np.int16) - b).reshape(-1, THUMB_SIDE ** 2).mean(axis=1)
        c = c.select("row", "item", "dist").with_columns(
            status=pl.Series(np.where(~both, 1, np.where(mad <= o.image_thumb_distance, 0, 2))))
        per = c.group_by("row", "item").agg(pl.col("status").min())  # confirmed < no thumb < rejected
        for code, name in enumerate(("confirmed", "unconfirmed_no_thumb", "rejected_by_thumb")):
            self.near_checks[name] += int((per["status"] == code).sum())
        n = c.filter(pl.col("status") < 2).group_by("row", "item").agg(pl.col("dist").min())
        return n.select("row", "item", pl.lit("image_near").alias("rule"), (1.0 - pl.col("dist") / 64.0).alias("score"))

    def decide(self, hits: pl.DataFrame, src: pl.DataFrame) -> pl.DataFrame:
        """Excluding hits, one per (row, benchmark): `src` maps row -> source name."""
        h = hits.join(self.meta, on="item").join(src, on="row")
        text = h.filter(pl.col("rule").str.starts_with("text")).select("row", "item").unique()
        text = text.with_columns(has_text=pl.lit(True))
        h = h.join(text, on=["row", "item"], how="left").with_columns(pl.col("has_text").fill_null(False))
        is_text_rule = pl.col("rule").str.starts_with("text")
        same = pl.col("own").is_not_null() & (pl.col("own") == pl.col("source"))
        ok = (~pl.col("is_image") & is_text_rule) | (pl.col("is_image") & ~is_text_rule & (~same | pl.col("has_text")))
        h = h.filter(ok).sort("row", "benchmark", "score", "item_id", "rule", descending=[False, False, True, False, False])
        return h.unique(["row", "benchmark"], keep="first", maintain_order=True).select(
            "row", "benchmark", "rule", "item_id", "score")


def _with_pos(df: pl.DataFrame, col: str, pos: str) -> pl.DataFrame:
    """Explode a list column with each element's position in its list (image index)."""
    return df.with_columns(pl.int_ranges(pl.col(col).list.len()).alias(pos)).explode(col, pos)


def trap_hits(chunk: pl.DataFrame, source: str) -> pl.DataFrame:
    """(row, benchmark, rule) for rows caught by TRAPS; `chunk` needs row and meta (JSON text)."""
    out = []
    for t in TRAPS:
        if not re.search(t["sources"], source):
            continue
        if "keys" not in t:
            out.append(chunk.select("row", pl.lit(t["benchmark"]).alias("benchmark")))
            continue
        for k in t["keys"]:
            # parse only rows whose meta text names the key (most rows: none); same rows as parsing all
            sub = chunk.select("row", "meta").filter(pl.col("meta").str.contains(f'"{k}"', literal=True))
            v = sub["meta"].str.json_path_match(f"$.{k}").str.to_lowercase().str.strip_chars()
            m = sub.select("row").with_columns(v=v).filter(pl.col("v").is_in(list(t["values"])))
            if m.height:
                out.append(m.select("row", pl.col("v").replace_strict(t["values"]).alias("benchmark")))
    if not out:
        return pl.DataFrame(schema={"row": pl.Int64, "benchmark": pl.String, "rule": pl.String})
    df = pl.concat([o.cast({"row": pl.Int64}) for o in out]).unique("row", keep="first", maintain_order=True)
    return df.with_columns(rule=pl.lit("trap"))
