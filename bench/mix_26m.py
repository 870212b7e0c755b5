"""Benchmark `mix` on a synthetic 26M-sample index (no tars, no images: mix never reads them).

    python -m bench.mix_26m [N] [--keep DIR]      # --keep: keep the index there; an index already there is reused

Writes N training rows as per-shard index Parquet files in the real schema (medmo_data.shards.writer
INDEX_SCHEMA) for four image-caption sources (medtrinity 70 %, roco, pmc_oa, pubmed_vision 10 % each),
plus two benchmark sources with test splits (20,000 VQA items with images, 10,000 long text questions).
Prompts: 90 % from 50 caption templates, 10 % unique 12-word questions. Planted: 0.01 % of rows copy a
test image; in medtrinity's first file 500 prompts hold a test question (8-gram containment), 100 images
are 2 dHash bits from a test image, 20 rows carry a PubMedQA PQA-L trap in meta, 50 carry a test
question's prompt hash; 10 % of pmc_oa rows copy a roco image (exact or 1-bit dHash change). Then it times `mix` in a child process and reads its peak RSS, and times two floors, each in its
own child, neither importing project code:
- `bench/mix_floor.py`: the same rules as plain polars queries (traps, text exact and 8-gram
  containment, image exact and near, the three dedup rules). It must exclude exactly the rows `mix`
  excludes (`same_rows`); the issue's goal is `mix` within 1.3x of it, peak RSS <= 4 GiB;
- `BASELINE` below: the exact-match rules only (test prompt hash and test image sha256 joins, identical
  samples, the same images in another source for the same task kind), for what the fuzzy rules cost.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

ROWS_PER_FILE = 1_000_000
WORDS = ("lesion nodule mass effusion fracture liver lung kidney brain heart bone chest abdomen pelvis "
         "spine axial coronal sagittal contrast enhanced opacity consolidation atelectasis edema cyst "
         "tumor margin density signal intensity region left right upper lower lateral medial anterior "
         "posterior which what where shows image finding patient scan ct mri xray ultrasound").split()
TEMPLATES = [f"Describe this medical image in detail, variant {i}." for i in range(50)]
SPEC = """stage: 9
kind: sft
title: synthetic 26M benchmark
image: {min_pixels: 65536, max_pixels: 589824}
sources: [{name: medtrinity}, {name: roco}, {name: pmc_oa}, {name: pubmed_vision}]
training: {per_device_train_batch_size: 1}
"""


def _hex(rng: np.random.Generator, n: int, nbytes: int = 32) -> pl.Series:
    raw = rng.integers(0, 256, size=(n, nbytes), dtype=np.uint8)
    return pl.Series(raw.view(f"S{nbytes}").ravel()).bin.encode("hex")


def _sentences(rng: np.random.Generator, n: int, words: int) -> pl.Series:
    idx = rng.integers(0, len(WORDS), size=n * words)
    flat = pl.Series(WORDS)[idx]
    return flat.reshape((n, words)).arr.join(" ")


def _frame(rng: np.random.Generator, n: int, start: int, shard: str, split: str, task: str,
           prompts: pl.Series, images: bool = True) -> pl.DataFrame:
    key = pl.int_range(start, start + n, eager=True).cast(pl.String).str.zfill(10)
    w = rng.integers(256, 1281, n).astype(np.int32)
    h = rng.integers(256, 1281, n).astype(np.int32)
    df = pl.DataFrame({
        "key": key, "shard": shard, "id": key, "split": split, "task": task, "modality": "mixed",
        "license": "CC-BY-4.0", "access": "open", "n_images": np.full(n, int(images), np.int32),
        "w": w, "h": h, "sha": _hex(rng, n), "dh": rng.integers(-(2**63), 2**63 - 1, n, dtype=np.int64),
        "prompt": prompts,
    })
    empty_i = pl.lit([], dtype=pl.List(pl.Int32))
    return df.select(
        "key", "shard", "id", "split", "task", "modality", "license", "access", "n_images",
        (pl.concat_list("w") if images else empty_i).alias("widths"),
        (pl.concat_list("h") if images else empty_i).alias("heights"),
        (pl.concat_list("sha") if images else pl.lit([], dtype=pl.List(pl.String))).alias("image_hash"),
        (pl.concat_list("dh") if images else pl.lit([], dtype=pl.List(pl.Int64))).alias("image_dhash"),
        "prompt",
        pl.col("prompt").hash(seed=1).cast(pl.String).alias("prompt_norm_sha1"),
        pl.col("key").hash(seed=2).cast(pl.String).alias("answer_norm_sha1"),
        pl.col("prompt").str.len_chars().cast(pl.Int64).alias("prompt_chars"),
        pl.lit(200, dtype=pl.Int64).alias("answer_chars"),
        pl.col("prompt").str.count_matches(" ").cast(pl.Int64).add(1).alias("prompt_words"),
        pl.lit(0, dtype=pl.Int32).alias("n_objects"), pl.lit([], dtype=pl.List(pl.Float64)).alias("box_areas"),
        pl.lit("").alias("system"), pl.lit("{}").alias("meta"),
    )


def write_index(d: Path, df: pl.DataFrame) -> dict:
    """One index file; its manifest entry (a placeholder tar hash: the tars never exist)."""
    d.mkdir(parents=True, exist_ok=True)
    stem = df["shard"][0].removesuffix(".tar")
    df.write_parquet(d / f"{stem}.index.parquet", compression="zstd")
    return {"path": f"{stem}.tar", "split": df["split"][0], "group": df["split"][0], "samples": df.height,
            "bytes": 0, "sha256": "0" * 64, "index": f"{stem}.index.parquet"}


def write_manifest(d: Path, name: str, shards: list[dict]) -> None:
    man = {"source": name, "license": "CC-BY-4.0", "access": "open", "shards": shards}
    (d / "manifest.json").write_text(json.dumps(man))


def write_source(root: Path, name: str, frames: list[pl.DataFrame]) -> None:
    write_manifest(root / name, name, [write_index(root / name, df) for df in frames])


def generate(root: Path, n: int, seed: int = 0) -> dict[str, int]:
    rng = np.random.default_rng(seed)
    vqa_q = _sentences(rng, 20_000, 6)
    vqa = _frame(rng, 20_000, 0, "test-000000.tar", "test", "vqa", vqa_q)
    write_source(root, "vqa_rad", [vqa])  # a benchmark source name: its test split is a benchmark
    text_q = _sentences(rng, 10_000, 40)
    write_source(root, "medqa", [_frame(rng, 10_000, 0, "test-000000.tar", "test", "mcq", text_q, images=False)])
    parts = {"medtrinity": int(n * 0.7), "roco": n // 10, "pmc_oa": n // 10}
    parts["pubmed_vision"] = n - sum(parts.values())
    start = 0
    roco_imgs: list[pl.DataFrame] = []
    for name, count in parts.items():
        shards = []  # each file is written as soon as it is made: a 260M-row index never sits in memory
        for f, a in enumerate(range(0, count, ROWS_PER_FILE)):
            m = min(ROWS_PER_FILE, count - a)
            templ = pl.Series(TEMPLATES)[rng.integers(0, len(TEMPLATES), m)]
            uniq = rng.random(m) < 0.1
            prompts = pl.select(pl.when(pl.Series(uniq)).then(_sentences(rng, m, 12)).otherwise(templ)).to_series()
            df = _frame(rng, m, start, f"train-{f:06d}.tar", "train", "caption", prompts)
            start += m
            plant = rng.random(m) < 1e-4  # copies of benchmark test images
            src_i = rng.integers(0, vqa.height, m)
            df = df.with_columns(image_hash=pl.when(pl.Series(plant)).then(vqa["image_hash"][src_i])
                                 .otherwise(pl.col("image_hash")))
            if name == "roco" and f == 0:
                roco_imgs.append(df.select("image_hash", "image_dhash").head(m // 10))
            if name == "pmc_oa" and roco_imgs and f == 0:
                k = min(m // 10, roco_imgs[0].height)
                flip = pl.Series(rng.integers(0, 2, k) << rng.integers(0, 63, k))
                copy = roco_imgs[0].head(k).with_columns(
                    image_dhash=pl.concat_list(pl.col("image_dhash").list.first().xor(flip)),
                    image_hash=pl.when(pl.Series(np.arange(k) % 2 == 0)).then(pl.col("image_hash"))
                    .otherwise(df["image_hash"].head(k)))
                df = pl.concat([copy.hstack(df.head(k).drop("image_hash", "image_dhash")).select(df.columns),
                                df.slice(k)])
            if name == "medtrinity" and f == 0:  # one case per decontamination rule and a trap
                i = pl.int_range(pl.len())
                dh = df["image_dhash"].list.first().to_numpy().copy()
                dh[500:600] = vqa["image_dhash"].list.first().to_numpy()[:100] ^ ((1 << 3) | (1 << 40))
                df = df.with_columns(
                    # 8-gram containment: the prompt holds a test question, its hash is the row's own
                    prompt=pl.when(i < 500).then(pl.lit(text_q[0])).otherwise(pl.col("prompt")),
                    # a test image 2 dHash bits away, another sha256
                    image_dhash=pl.concat_list(pl.Series(dh)),
                    meta=pl.when((i >= 600) & (i < 620)).then(pl.lit('{"subset": "PQA-L "}')).otherwise(pl.col("meta")),
                    # the normalised-prompt hash of a test question
                    prompt_norm_sha1=pl.when((i >= 620) & (i < 670))
                    .then(pl.lit(text_q.head(1).hash(seed=1).cast(pl.String)[0])).otherwise(pl.col("prompt_norm_sha1")))
            shards.append(write_index(root / name, df))
        write_manifest(root / name, name, shards)
    return parts


# The floor: exact-match rules as one lazy polars query per step, streaming, nothing from medmo_data.
BASELINE = r"""
import json, sys, time
from pathlib import Path
import polars as pl
t = time.perf_counter()
data = Path(sys.argv[1])
def files(split):
    out = []
    for d in sorted(data.iterdir()):
        man = json.loads((d / "manifest.json").read_text())
        out += [(d.name, str(d / s["index"])) for s in man["shards"] if s["split"] == split]
    return out
test = pl.concat([pl.scan_parquet(f).filter(pl.col("split") == "test") for _, f in files("test")])
tprompt = test.select("prompt_norm_sha1").unique()
timg = test.select(pl.col("image_hash").explode().alias("sha")).drop_nulls().unique()
train = pl.concat([pl.scan_parquet(f).filter(pl.col("split") == "train").with_columns(src=pl.lit(n))
                   for n, f in files("train")]).with_row_index("row")
train = train.select("row", "src", "task", "prompt_norm_sha1", "answer_norm_sha1",
                     pl.col("image_hash").list.join("|").hash(seed=11).alias("img"), "image_hash")
text = train.join(tprompt, on="prompt_norm_sha1", how="semi").select("row")
img = train.select("row", pl.col("image_hash").explode().alias("sha")).join(timg, on="sha", how="semi").select("row")
dup1 = train.with_columns(k=pl.col("row").min().over("img", "prompt_norm_sha1", "answer_norm_sha1")).filter(
    pl.col("row") != pl.col("k")).select("row")
fam = pl.when(pl.col("task").is_in(["caption", "report", "summarization"])).then(pl.lit("d")).otherwise(pl.col("task"))
q = pl.when(fam == "d").then(pl.lit("")).otherwise(pl.col("prompt_norm_sha1"))
g = train.with_columns(fam=fam, q=q).with_columns(k=pl.col("row").min().over("img", "fam", "q"))
ksrc = g.select(pl.col("row").alias("k"), pl.col("src").alias("ksrc"))
dup2 = g.join(ksrc, on="k").filter(pl.col("src") != pl.col("ksrc")).select("row")
out = pl.concat([text, img, dup1, dup2]).unique().collect(engine="streaming")
print(json.dumps({"baseline_s": time.perf_counter() - t, "excluded_rows": out.height, "peak_rss_mib": HWM()}))
"""
# Peak RSS of this process only. ru_maxrss is not: Linux carries it across fork and exec, so a child of
# the generating process (7+ GiB) reported the generator's peak, not its own. VmHWM belongs to the
# process's own address space, which exec replaces.
HWM = ("def HWM():\n"
       "    for line in open('/proc/self/status'):\n"
       "        if line.startswith('VmHWM:'): return int(line.split()[1]) / 1024\n"
       "    import resource; return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\n")


def baseline(data: Path, rules: bool = True) -> dict:
    """A floor over `data` in a child process (rules=True: bench/mix_floor.py, all rules; else the
    exact-match query): seconds, rows it excludes, peak RSS."""
    cmd = [str(Path(__file__).with_name("mix_floor.py"))] if rules else ["-c", HWM + BASELINE]
    proc = subprocess.run([sys.executable, *cmd, str(data)], capture_output=True, text=True, check=False)
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(n: int = 26_000_000, keep: Path | None = None) -> dict:
    """Generate the index (timed), then time `mix` over it in a child process; seconds and peak RSS."""
    tmp = tempfile.TemporaryDirectory(prefix="mix26m-") if keep is None else None
    root = Path(tmp.name) if tmp else keep
    assert root is not None
    t0 = time.perf_counter()
    if keep is not None and (root / "data" / "medtrinity" / "manifest.json").exists():  # reuse a kept index
        parts = {d.name: sum(s["samples"] for s in json.loads((d / "manifest.json").read_text())["shards"])
                 for d in sorted((root / "data").iterdir()) if d.name not in ("vqa_rad", "medqa")}
        n = sum(parts.values())
    else:
        parts = generate(root / "data", n)
    gen_s = time.perf_counter() - t0
    (root / "spec.yaml").write_text(SPEC)
    code = (HWM + "import json,sys,time;from pathlib import Path;from medmo_data.mix.mixer import mix,MixOptions;"
            "t=time.perf_counter();m,_=mix(Path(sys.argv[1]),MixOptions(data=Path(sys.argv[2]),out=Path(sys.argv[3])));"
            "print(json.dumps({'mix_s':time.perf_counter()-t,'samples':m['samples'],'filters':m['filters']['by_reason'],"
            "'decontam':m['filters']['decontam']['by_benchmark'],'excluded_rows':m['filters']['rows_excluded'],"
            "'peak_rss_mib':HWM()}))")
    proc = subprocess.run([sys.executable, "-c", code, str(root / "spec.yaml"), str(root / "data"),
                           str(root / "out" / "stage9.json")], capture_output=True, text=True, check=False)
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res.update(n=n, sources=parts, generate_s=round(gen_s, 1), mix_s=round(res["mix_s"], 1),
               peak_rss_mib=round(res["peak_rss_mib"]),
               index_bytes=sum(p.stat().st_size for p in (root / "data").rglob("*.parquet")))
    base = baseline(root / "data")
    exact = baseline(root / "data", rules=False)
    res.update(baseline_s=round(base["baseline_s"], 1), baseline_peak_rss_mib=round(base["peak_rss_mib"]),
               baseline_excluded_rows=base["excluded_rows"], same_rows=base["excluded_rows"] == res["excluded_rows"],
               ratio_vs_baseline=round(res["mix_s"] / base["baseline_s"], 2),
               exact_floor_s=round(exact["baseline_s"], 1), exact_floor_peak_rss_mib=round(exact["peak_rss_mib"]),
               ratio_vs_exact_floor=round(res["mix_s"] / exact["baseline_s"], 2),
               goal="mix_s <= 1.3 x baseline_s (same rules), peak_rss_mib <= 4096",
               uptime=os.popen("uptime").read().strip())
    if tmp:
        tmp.cleanup()
    return res


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    keep = Path(sys.argv[sys.argv.index("--keep") + 1]) if "--keep" in sys.argv else None
    if keep is not None and str(keep) in args:
        args.remove(str(keep))
    print(json.dumps(run(int(float(args[0])) if args else 26_000_000, keep), indent=1))
