"""`medmo-data mix`: a stage spec (manifests/stageN.yaml) + built sources -> manifests/stageN.json.

One streaming pass over the per-shard indexes (never the tars, never image bytes): per index file it
applies the contamination traps, decontamination against every benchmark's test items, and the
prompt token budget; then one global dedup over compact hash columns; then a second, narrow read
(key and id only) of the files that hold dedup drops. Output: the stage manifest (schema
medmo-stage/v1, medmo_data/mix/stage.py) and `<manifest stem>.excluded.jsonl`, one line per excluded key.
No timestamps, sorted keys: the same inputs, options and seed give the same bytes. docs/mixing.md
describes the spec, the weights, the benchmark file formats and every rule.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from medmo_data.schema import ACCESS

from .budget import TextCounter, image_tokens
from .decontam import (
    BENCHMARKS,
    BY_SOURCE,
    DecontamOptions,
    ItemSet,
    ThumbLookup,
    trap_hits,
)
from .dedup import Parts, dedup, dedup_frame
from .indices import read_index, same_fingerprints
from .publish import publish
from .spec import LICENCE_CLASSES, WEIGHT_MEANINGS, MixError, licence_classes, load_spec
from .stage import STAGE_SCHEMA
from .test_items import items_from_index, read_benchmark

COLS = ["key", "shard", "id", "split", "task", "image_hash", "image_dhash", "prompt", "prompt_norm_sha1",
        "answer_norm_sha1", "meta"]
BUDGET_COLS = ["n_images", "widths", "heights", "prompt_chars", "system"]  # read only for a token budget


@dataclass
class MixOptions:
    data: Path = Path("data")
    out: Path | None = None
    seed: int = 42
    allow_missing: bool = False
    splits: list[str] | None = None
    benchmarks: dict[str, Path] = field(default_factory=dict)
    exclude_access: list[str] = field(default_factory=list)
    exclude_licence: list[str] = field(default_factory=list)
    tokenizer: str | None = None
    decontaminate: bool = True
    deduplicate: bool = True


def _rel(p: Path, base: Path) -> str:
    return os.path.relpath(p.resolve(), base.resolve()).replace(os.sep, "/")


def _sha256(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _resolve(spec: dict[str, Any], opts: MixOptions, splits: list[str]) -> tuple[list[dict], list[dict]]:
    from medmo_data.recipe import all_recipes

    known = set(all_recipes())
    ready, missing = [], []
    for s in spec["sources"]:
        name = s["name"]
        mpath = opts.data / name / "manifest.json"
        if not mpath.exists():
            why = "not built" if name in known else "no recipe with this name (see `medmo-data list`)"
            missing.append({"name": name, "reason": why,
                            "build": f"medmo-data build --recipe {name} --input RAW_DIR --output {opts.data}"})
            continue
        man = json.loads(mpath.read_text(encoding="utf-8"))
        shards = [sh for sh in man["shards"] if sh["split"] in splits]
        if not shards:
            missing.append({"name": name, "reason": f"built, but {mpath} has no {'/'.join(splits)} shards",
                            "build": f"medmo-data build --recipe {name} --input RAW_DIR --output {opts.data}"})
            continue
        ready.append({"name": name, "weight": float(s.get("weight", 1.0)), "manifest": mpath, "man": man,
                      "shards": shards})
    return ready, missing


def _test_indices(opts: MixOptions) -> list[tuple[str, list[str], list[Path]]]:
    """(source, the splits that are its test items, their index files) of every source built under data/."""
    out = []
    for d in sorted(p for p in opts.data.iterdir() if (p / "manifest.json").exists()) if opts.data.is_dir() else []:
        man = json.loads((d / "manifest.json").read_text(encoding="utf-8"))
        name = man.get("source", d.name)
        splits = BENCHMARKS[BY_SOURCE[name]]["splits"] if name in BY_SOURCE else ["test"]
        out.append((name, splits, [d / i for i in sorted({sh["index"] for sh in man["shards"] if sh["split"] in splits})]))
    return out


def _test_items(opts: MixOptions, tests: list[tuple[str, list[str], list[Path]]],
                version: int) -> tuple[pl.DataFrame, list[dict[str, Any]]]:
    frames, files = [], []
    cols = ["key", "id", "split", "prompt", "prompt_norm_sha1", "image_hash", "image_dhash", "image_thumb"]
    for name, splits, paths in tests:
        for idx in paths:
            df = read_index(idx, cols).filter(pl.col("split").is_in(splits))
            if df.height:
                frames.append(items_from_index(df, name))
    for name, path in sorted(opts.benchmarks.items()):
        if not path.exists():
            raise MixError(f"{path}: benchmark file for {name} not found")
        try:
            bf = read_benchmark(name, path, version)
        except (ValueError, KeyError, json.JSONDecodeError) as exc:
            raise MixError(f"{path}: cannot read benchmark {name}: {exc}") from exc
        frames.append(bf.items)
        # Counted, never fatal: a release's file may name images kept elsewhere (PMC-VQA's test_2.csv beside
        # images_2.zip), and its PMC-article rule still holds; the CLI warns with the first few.
        files.append({"name": name, "path": str(path), "sha256": _sha256(path), "items": bf.items.height,
                      "images": bf.images, "images_unreadable": len(bf.unreadable),
                      "unreadable_examples": [f"{img} ({why})" for img, why in bf.unreadable[:3]]})
    return (pl.concat(frames) if frames else pl.DataFrame()), files


def mix(spec_path: Path, opts: MixOptions) -> tuple[dict[str, Any], Path]:
    """Resolve, filter, decontaminate, dedup; write the stage manifest and its exclusions file."""
    t0 = time.perf_counter()
    spec = load_spec(spec_path)
    stage = int(spec["stage"])
    splits = opts.splits or list(spec.get("splits", ["train"]))
    out = opts.out or Path("manifests") / f"stage{stage}.json"
    bad = [a for a in opts.exclude_access if a not in ACCESS]
    bad += [c for c in opts.exclude_licence if c not in LICENCE_CLASSES]
    if bad:
        raise MixError(f"unknown filter value(s) {bad}: access is one of {ACCESS}, licence one of {LICENCE_CLASSES}")
    ready, missing = _resolve(spec, opts, splits)
    if missing and not opts.allow_missing:
        lines = [f"  {m['name']}: {m['reason']} -> {m['build']}" for m in missing]
        raise MixError(f"stage {stage}: {len(missing)} of {len(spec['sources'])} sources are not ready under "
                       f"{opts.data}/:\n" + "\n".join(lines) + "\nre-run with --allow-missing to mix without them")
    dropped_sources = []
    kept = []
    for s in ready:
        lic, acc = s["man"].get("license", ""), s["man"].get("access", "")
        why = [f"access {acc}"] if acc in opts.exclude_access else []
        why += [f"licence {c} ({lic})" for c in sorted(licence_classes(lic, acc) & set(opts.exclude_licence))]
        if why:
            dropped_sources.append({"name": s["name"], "reason": "; ".join(why),
                                    "samples": sum(sh["samples"] for sh in s["shards"])})
        else:
            kept.append(s)
    prio = spec.get("dedup", {}).get("priority") or [s["name"] for s in spec["sources"]]
    rank = {n: i for i, n in enumerate(prio)}
    kept.sort(key=lambda s: (rank.get(s["name"], len(rank)), s["name"]))
    dopts = DecontamOptions(**{k: v for k, v in (spec.get("decontam") or {}).items()
                               if k in DecontamOptions.__dataclass_fields__})
    tests = _test_indices(opts) if opts.decontaminate else []
    version = same_fingerprints({s["name"]: [s["manifest"].parent / i for i in sorted({sh["index"] for sh in s["shards"]})]
                             for s in kept} | {f"{n} (test)": paths for n, _, paths in tests})
    items, bfiles = _test_items(opts, tests, version) if opts.decontaminate else (pl.DataFrame(), [])
    ts = ItemSet(items, dopts) if items.height else None
    budget = spec.get("budget") or {}
    max_tokens = budget.get("max_prompt_tokens")
    image = spec.get("image") or {}
    counter = TextCounter(opts.tokenizer, budget.get("system_prompt")) if max_tokens else None
    tasks: list[str] | None = spec.get("tasks")

    excl: list[pl.DataFrame] = []
    dd = Parts()
    files: list[tuple[int, Path, int, int]] = []
    tokens_seen: list[np.ndarray] = []
    row0 = 0
    for si, s in enumerate(kept):
        folder = s["manifest"].parent
        tars = {sh["path"] for sh in s["shards"]}
        for idx in sorted({sh["index"] for sh in s["shards"]}):
            df = read_index(folder / idx, COLS + (BUDGET_COLS if max_tokens else []))
            df = df.filter(pl.col("split").is_in(splits) & pl.col("shard").is_in(list(tars)))
            df = df.with_row_index("row", offset=row0).with_columns(pl.col("row").cast(pl.Int64))
            files.append((si, folder / idx, row0, row0 + df.height))
            row0 += df.height
            ex, keys = [], df.select("row", "key", "id")
            if tasks is not None:  # rows of other tasks are listed (reason `task`) so the loader skips them
                other = ~pl.col("task").is_in(tasks)
                ex.append(df.filter(other).select("row", reason=pl.lit("task"), rule=pl.col("task")))
                df = df.filter(~other)
            ex.append(trap_hits(df, s["name"]).with_columns(reason=pl.lit("trap")))
            if ts is not None:
                hits = ts.match(df, _thumb_lookup(folder / idx, splits, list(tars), files[-1][2]))
                if hits.height:
                    d = ts.decide(hits, df.select("row", pl.lit(s["name"]).alias("source")))
                    ex.append(d.with_columns(reason=pl.lit("decontam")))
            if max_tokens:
                tok = _prompt_tokens(df, counter, image)
                tokens_seen.append(tok)
                over = df.select("row").filter(pl.Series(tok > max_tokens))
                ex.append(over.with_columns(reason=pl.lit("prompt_tokens"),
                                            rule=pl.lit(f"> {max_tokens}")))
            e = pl.concat([x.cast({"row": pl.Int64}) for x in ex], how="diagonal_relaxed")
            if e.height:
                e = e.join(keys, on="row").with_columns(source=pl.lit(s["name"]))
                excl.append(e)
            if opts.deduplicate:
                gone = e.select("row") if e.height else pl.DataFrame(schema={"row": pl.Int64})
                dd.add(dedup_frame(df.join(gone, on="row", how="anti"), si))
    dinfo: dict[str, Any] = {}
    if dd.rows and opts.deduplicate:
        try:
            drops, dinfo = dedup(dd, distance=int((spec.get("dedup") or {}).get("image_dhash_distance", 2)))
        finally:
            dd.close()
        if drops.height:
            excl.append(_resolve_keys(drops, files, kept))
    man = _write(spec, spec_path, opts, out, stage, splits, kept, missing, dropped_sources, excl, ts, bfiles,
                 max_tokens, tokens_seen, counter, dopts, dinfo, tasks)
    man["_seconds"] = time.perf_counter() - t0
    return man, out


def _thumb_lookup(path: Path, splits: list[str], tars: list[str], offset: int) -> ThumbLookup:
    """Thumbnails of a few rows of one index file, read only when a dHash near match needs them (the
    row numbering repeats the first pass's filter); None for an index written before the column."""

    def lookup(rows: pl.DataFrame) -> pl.DataFrame | None:
        if "image_thumb" not in pq.read_schema(path).names:
            return None
        lf = pl.scan_parquet(path).select("split", "shard", "image_thumb")
        lf = lf.filter(pl.col("split").is_in(splits) & pl.col("shard").is_in(tars))
        lf = lf.with_row_index("row", offset=offset).with_columns(pl.col("row").cast(pl.Int64))
        return lf.join(rows.lazy(), on="row").select("row", "image_thumb").collect()

    return lookup


def _prompt_tokens(df: pl.DataFrame, counter: TextCounter, image: dict[str, Any]) -> np.ndarray:
    text = counter.count(df["prompt"].fill_null("").to_list(), df["system"].fill_null("").to_list(),
                         df["n_images"].to_list(), df["prompt_chars"].to_numpy())
    ex = df.select("row", "widths", "heights").explode(["widths", "heights"]).drop_nulls()
    if ex.height and image:
        n = image_tokens(ex["widths"].to_numpy(), ex["heights"].to_numpy(), int(image.get("min_pixels", 0)),
                         int(image.get("max_pixels", 1 << 40)), counter.factor)
        per = ex.select("row").with_columns(t=pl.Series(n - 1)).group_by("row").agg(pl.col("t").sum())
        extra = df.select("row").join(per, on="row", how="left")["t"].fill_null(0).to_numpy()
        return text + extra
    return text


def _resolve_keys(drops: pl.DataFrame, files: list[tuple[int, Path, int, int]], kept: list[dict]) -> pl.DataFrame:
    """Second, narrow pass: key and id of dropped rows and of the copies kept in their place."""
    need = np.union1d(drops["row"].to_numpy(), drops["kept"].to_numpy())
    parts = []
    for si, path, a, b in files:
        lo, hi = np.searchsorted(need, [a, b])
        if lo == hi:
            continue
        df = read_index(path, ["key", "id", "split", "shard"])
        # the same filter as the first pass keeps the row numbering identical
        df = df.filter(pl.col("split").is_in(_read_splits(kept[si])) & pl.col("shard").is_in(
            [sh["path"] for sh in kept[si]["shards"]]))
        df = df.with_row_index("row", offset=a).with_columns(pl.col("row").cast(pl.Int64), source=pl.lit(kept[si]["name"]))
        parts.append(df.filter(pl.col("row").is_in(need[lo:hi].tolist())).select("row", "source", "key", "id"))
    keys = pl.concat(parts)
    k2 = keys.select(pl.col("row").alias("kept"), (pl.col("source") + "/" + pl.col("key")).alias("kept_key"))
    return drops.join(keys, on="row").join(k2, on="kept").drop("kept").rename({"kept_key": "kept"})


def _read_splits(s: dict) -> list[str]:
    return sorted({sh["split"] for sh in s["shards"]})


def _write(spec, spec_path, opts, out, stage, splits, kept, missing, dropped_sources, excl, ts, bfiles,
           max_tokens, tokens_seen, counter, dopts, dinfo, tasks) -> dict[str, Any]:
    base = out.parent
    base.mkdir(parents=True, exist_ok=True)
    ex_path = out.with_name(out.stem + ".excluded.jsonl")
    order = {s["name"]: i for i, s in enumerate(kept)}
    cols = ["source", "key", "id", "reason", "benchmark", "rule", "item_id", "score", "kept"]
    e = pl.concat(excl, how="diagonal_relaxed") if excl else pl.DataFrame(schema={c: pl.String for c in cols} | {"row": pl.Int64})
    e = e.with_columns([pl.lit(None, dtype=pl.String).alias(c) for c in cols if c not in e.columns])
    e = e.sort("row", "reason", "benchmark", nulls_last=True)
    lines = []
    for r in e.select(cols).iter_rows(named=True):
        d = {k: v for k, v in r.items() if v is not None}
        if "score" in d:
            d["score"] = round(float(d["score"]), 4)
        lines.append(json.dumps(d, sort_keys=True, ensure_ascii=False))
    rows_out = e.unique("row").group_by("source").len() if e.height else pl.DataFrame({"source": [], "len": []})
    n_out = dict(rows_out.iter_rows())
    by_task = e.filter(pl.col("reason") == "task")
    task_out = dict(by_task.group_by("source").len().iter_rows()) if by_task.height else {}
    total = sum(sh["samples"] for s in kept for sh in s["shards"]) or 1
    meaning = spec.get("weight_meaning", "epochs")
    n_after = {s["name"]: sum(sh["samples"] for sh in s["shards"]) - n_out.get(s["name"], 0) for s in kept}
    mass = {s["name"]: s["weight"] * (n_after[s["name"]] if meaning == "epochs" else 1.0) for s in kept}
    norm = sum(mass.values()) or 1.0
    sources = []
    for s in kept:
        n = n_after[s["name"]]
        src = {"name": s["name"], "manifest": _rel(s["manifest"], base), "weight": round(mass[s["name"]] / norm, 10),
               "samples": n, "spec_weight": s["weight"],
               "license": s["man"].get("license"), "access": s["man"].get("access"),
               "shards": [{"path": _rel(s["manifest"].parent / sh["path"], base), "sha256": sh["sha256"],
                           "samples": sh["samples"]} for sh in s["shards"]],
               "excluded_keys": ex_path.name if n_out.get(s["name"]) else None,
               "filtered_by_task": task_out.get(s["name"], 0)}
        if meaning == "epochs":
            src["epochs"], src["draws"] = s["weight"], int(round(s["weight"] * n))
        sources.append(src)
    by = lambda df, k: dict(sorted(df.group_by(k).len().iter_rows())) if df.height else {}  # noqa: E731
    filters = {
        "exclusions_file": ex_path.name,
        "splits": splits,
        "rows_before": sum(sh["samples"] for s in kept for sh in s["shards"]) if total else 0,
        "rows_excluded": int(e["row"].n_unique()) if e.height else 0,
        "by_reason": by(e.unique("row", keep="first"), "reason"),
        "by_source": {k: v for k, v in sorted(n_out.items(), key=lambda kv: order.get(kv[0], 0))},
        "decontam": {"by_benchmark": by(e.filter(pl.col("reason") == "decontam"), "benchmark"),
                     "by_rule": by(e.filter(pl.col("reason") == "decontam"), "rule"),
                     "settings": vars(dopts), "test_items": ts.counts() if ts else {},
                     "image_near_checks": dict(ts.near_checks) if ts else {},
                     "boilerplate_grams_ignored": ts.stop_grams if ts else 0, "benchmark_files": [
                         {**b, "path": _rel(Path(b["path"]), base)} for b in bfiles], "enabled": opts.decontaminate},
        "traps": by(e.filter(pl.col("reason") == "trap"), "benchmark"),
        "dedup": {"by_rule": by(e.filter(pl.col("reason").str.starts_with("dup")), "reason"),
                  "priority": [s["name"] for s in kept], "enabled": opts.deduplicate,
                  "image_dhash_distance": int((spec.get("dedup") or {}).get("image_dhash_distance", 2)), **dinfo},
        "budget": {"max_prompt_tokens": max_tokens, "tokenizer": counter.name if counter else None,
                   "dropped": int((e["reason"] == "prompt_tokens").sum()) if e.height else 0,
                   "max_tokens_seen": int(max(t.max() for t in tokens_seen if t.size)) if any(
                       t.size for t in tokens_seen) else None},
        "licence": {"exclude_access": sorted(opts.exclude_access), "exclude_licence": sorted(opts.exclude_licence),
                    "sources_excluded": dropped_sources},
        "missing_sources": missing,
        "tasks": {"keep": tasks, "rows_filtered": by_task.height,
                  "by_source": {k: task_out[k] for k in sorted(task_out, key=lambda n: order.get(n, 0))},
                  "by_task": by(by_task, "rule")},
    }
    man = {"schema": STAGE_SCHEMA, "stage": stage, "kind": spec["kind"], "title": spec.get("title", ""),
           "seed": opts.seed, "box_format": spec.get("box_format", "qwen3"), "image": spec.get("image"),
           "weight_meaning": "probability", "weight_meaning_text": WEIGHT_MEANINGS["probability"],
           "spec_weight_meaning": meaning, "draws_per_epoch": sum(s.get("draws", 0) for s in sources) or None,
           "spec": {"path": _rel(spec_path, base), "sha256": _sha256(spec_path)},
           "tasks": tasks, "sources": sources, "samples": sum(s["samples"] for s in sources), "filters": filters,
           "training": spec["training"]}
    # exclusions first, the manifest last; all or nothing (a full disk leaves the previous pair as it was)
    publish([(ex_path, "".join(line + "\n" for line in lines).encode("utf-8")),
             (out, (json.dumps(man, sort_keys=True, indent=1, ensure_ascii=False) + "\n").encode("utf-8"))])
    return man
