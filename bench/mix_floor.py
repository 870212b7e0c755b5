"""The `mix` floor: the rules `mix` applies to the bench's spec, written as plain polars queries.

    python bench/mix_floor.py DATA_DIR        # one JSON line: seconds, excluded rows (per rule), peak RSS

Never imports medmo_data (tests/test_bench_smoke.py checks it). It numbers rows as `mix` does (sources
in the spec's priority order, index files sorted, rows in file order) and applies, with the settings of
the spec `bench/mix_26m.py` writes (decontam and dedup defaults, docs/mixing.md):
- traps: a row whose meta names `subset` / `config` / `pubmedqa_subset` with a PQA-L value;
- decontamination against the test splits of the data folder: text items (no image) by normalised
  prompt hash and by 8-gram containment >= 0.5 (grams of more than 50 items ignored); image items by
  pixel sha256 and by a dHash within 4 bits (informative hashes only; 5 pigeonhole bands);
- dedup: identical samples; the same images in another source for the same task kind (+ question);
  near images (first dHash within 2 bits) across sources, each row compared with the 16 rows before it
  in its (task kind, question, band) bucket, 3 bands.
Left out because the bench index cannot trigger them: thumbnail confirmation (no image_thumb column:
`mix` then counts a near hit unconfirmed and excludes, as here), PMC article ids (no PMC-VQA items), the
task filter and token budget (not in the spec). The bench compares the excluded row count with `mix`'s.
"""

from __future__ import annotations

import json
import sys
import time
from functools import reduce
from pathlib import Path

import polars as pl

SOURCES = ["medtrinity", "roco", "pmc_oa", "pubmed_vision"]  # the spec's order: numbering and dedup priority
NGRAM, CONTAIN, MAX_GRAM_ITEMS, NEAR_TEST, NEAR_DUP, WINDOW = 8, 0.5, 50, 4, 2, 16
TRAP_KEYS = ("subset", "config", "pubmedqa_subset")
TRAP_VALUES = ["pqa_labeled", "pqa-l", "pqal", "pqa_l"]
DESCRIBE = ["caption", "report", "summarization"]
P = 0x100000001B3


def peak_mib() -> float:
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def index_files(data: Path, name: str, split: str) -> list[str]:
    man = json.loads((data / name / "manifest.json").read_text())
    return sorted({str(data / name / s["index"]) for s in man["shards"] if s["split"] == split})


def sha64(c: pl.Expr) -> pl.Expr:
    return c.str.slice(0, 16).str.to_integer(base=16, dtype=pl.UInt64, strict=False)


def informative(c: pl.Expr) -> pl.Expr:
    n = c.bitwise_count_ones()
    return (n >= 4) & (n <= 60)


def band(c: pl.Expr, lo: int, hi: int) -> pl.Expr:
    return (c.reinterpret(signed=False) // (1 << lo)) % (1 << (hi - lo))


def grams(texts: pl.LazyFrame, key: str) -> pl.LazyFrame:
    """(key, gram): word 8-grams of NFKC-lower-cased text, hashed."""
    w = texts.select(key, pl.col("text").fill_null("").str.normalize("NFKC").str.to_lowercase()
                     .str.extract_all(r"\w+").alias("w")).explode("w").drop_nulls("w")
    w = w.with_columns(h=pl.col("w").hash(seed=7))
    g = reduce(lambda acc, k: acc * P + pl.col("h").shift(-k), range(1, NGRAM), pl.col("h"))
    return w.select(key, g.alias("gram"), (pl.col(key).shift(-(NGRAM - 1)) == pl.col(key)).alias("ok")) \
        .filter(pl.col("ok")).select(key, "gram").unique()


def main(data: Path) -> dict:
    t0 = time.perf_counter()
    train = pl.concat([pl.scan_parquet(f).filter(pl.col("split") == "train").with_columns(src=pl.lit(i, pl.UInt16))
                       for i, name in enumerate(SOURCES) for f in index_files(data, name, "train")])
    train = train.with_row_index("row").select(
        "row", "src", "task", "prompt", "meta", "prompt_norm_sha1", "answer_norm_sha1", "image_hash", "image_dhash")
    test_src = [d.name for d in sorted(data.iterdir()) if d.name not in SOURCES]
    test = pl.concat([pl.scan_parquet(f).filter(pl.col("split") == "test").with_columns(bench=pl.lit(n))
                      for n in test_src for f in index_files(data, n, "test")]).with_row_index("item")
    test = test.with_columns(is_image=pl.col("image_hash").list.len() > 0).collect()

    # traps
    trap = pl.concat([train.filter(pl.col("meta").str.contains(f'"{k}"', literal=True)).filter(
        pl.col("meta").str.json_path_match(f"$.{k}").str.to_lowercase().str.strip_chars().is_in(TRAP_VALUES))
        .select("row") for k in TRAP_KEYS])
    # decontamination: text items
    text_items = test.filter(~pl.col("is_image")).lazy()
    d_text = train.join(text_items.select("prompt_norm_sha1"), on="prompt_norm_sha1", how="semi").select("row")
    ig = grams(test.lazy().select("item", pl.col("prompt").alias("text")), "item")
    ig = ig.filter(pl.col("gram").count().over("gram") <= MAX_GRAM_ITEMS)
    ig = ig.join(text_items.select("item"), on="item", how="semi").collect()
    den = ig.group_by("item").len("den")
    prompts = train.select(pl.col("prompt").alias("text")).unique().with_row_index("u")
    tg = grams(prompts.select("u", "text"), "u").join(ig.lazy(), on="gram")
    hit = tg.group_by("u", "item").len("n").join(den.lazy(), on="item") \
        .filter(pl.col("n") / pl.col("den") >= CONTAIN).select("u").unique()
    d_gram = train.join(prompts.join(hit, on="u").select(pl.col("text").alias("prompt")), on="prompt").select("row")
    # decontamination: image items
    timg = test.filter(pl.col("is_image")).select(pl.col("image_hash").explode().alias("s"),
                                                  pl.col("image_dhash").explode().alias("dh"))
    d_img = train.select("row", pl.col("image_hash").explode().alias("s")).join(
        timg.lazy().select("s").unique(), on="s", how="semi").select("row")
    tdh = timg.select("dh").filter(informative(pl.col("dh"))).unique().lazy()
    edges = [round(i * 64 / (NEAR_TEST + 1)) for i in range(NEAR_TEST + 2)]
    tdh_train = train.select("row", pl.col("image_dhash").explode().alias("h")).drop_nulls().filter(informative(pl.col("h")))
    d_near = pl.concat([
        tdh_train.with_columns(b=band(pl.col("h"), lo, hi)).join(tdh.with_columns(b=band(pl.col("dh"), lo, hi)), on="b")
        .filter((pl.col("h") ^ pl.col("dh")).bitwise_count_ones() <= NEAR_TEST).select("row")
        for lo, hi in zip(edges, edges[1:], strict=False)])
    gone = pl.concat([trap, d_text, d_gram, d_img, d_near]).unique().collect(engine="streaming")
    n_decontam = gone.height

    # dedup over the rows left
    has_img = pl.col("image_hash").list.len() > 0
    rows = train.join(gone.lazy(), on="row", how="anti").select(
        "row", "src",
        pl.when(pl.col("task").is_in(DESCRIBE) & has_img).then(pl.lit("describe")).otherwise(pl.col("task")).alias("fam"),
        pl.when(has_img).then(pl.col("image_hash").list.join("|").hash(seed=11)).alias("img"),
        pl.col("image_dhash").list.first().alias("dh0"),
        sha64(pl.col("prompt_norm_sha1")).fill_null(0).alias("ph"), sha64(pl.col("answer_norm_sha1")).fill_null(0).alias("ah"),
    ).with_columns(q=pl.when(pl.col("fam") == "describe").then(pl.lit(0, pl.UInt64)).otherwise(pl.col("ph")))
    rows = rows.collect(engine="streaming").with_columns(pl.col("fam").cast(pl.Categorical))
    d1 = rows.filter(pl.col("row") != pl.col("row").min().over("img", "ph", "ah")).select("row")
    rest = rows.join(d1, on="row", how="anti").drop_nulls("img")
    del rows
    first = rest.with_columns(k=pl.col("row").min().over("img", "fam", "q"))
    ksrc = first.select(pl.col("row").alias("k"), pl.col("src").alias("ksrc"))
    d2 = first.join(ksrc, on="k").filter(pl.col("src") != pl.col("ksrc")).select("row")
    rest = rest.join(d2, on="row", how="anti").drop_nulls("dh0").filter(informative(pl.col("dh0")))
    d3 = []
    if rest["src"].n_unique() > 1:
        e = [round(i * 64 / (NEAR_DUP + 1)) for i in range(NEAR_DUP + 2)]
        for lo, hi in zip(e, e[1:], strict=False):
            # rows are in row order; a stable sort keeps that order inside each bucket
            s = rest.with_columns(b=band(pl.col("dh0"), lo, hi)).sort("fam", "q", "b", maintain_order=True)
            same = [((pl.col("fam") == pl.col("fam").shift(k)) & (pl.col("q") == pl.col("q").shift(k))
                     & (pl.col("b") == pl.col("b").shift(k)) & (pl.col("src") != pl.col("src").shift(k))
                     & ((pl.col("dh0") ^ pl.col("dh0").shift(k)).bitwise_count_ones() <= NEAR_DUP))
                    for k in range(1, WINDOW + 1)]
            d3.append(s.filter(pl.any_horizontal(same).fill_null(False)).select("row"))
    dd = pl.concat([d1, d2, *d3]).unique()
    out = pl.concat([gone, dd]).unique()
    return {"baseline_s": time.perf_counter() - t0, "excluded_rows": out.height, "decontam_rows": n_decontam,
            "dup_rows": dd.join(gone, on="row", how="anti").height, "peak_rss_mib": peak_mib()}


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))))
