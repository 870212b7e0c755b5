"""`medmo-data stats manifests/stageN.json --out report.html`: what a stage mixture holds, as one HTML
page with its plots embedded (and the same plots as PNG files beside it).

Reads the stage manifest, each source's manifest and the per-shard indexes (never the tars), drops the
excluded keys, and draws: samples by source, task and modality; image sizes and image tokens at the
stage's resolution; prompt token estimates; boxes per sample and box sizes; what was filtered and why.
"""

from __future__ import annotations

import base64
import html
import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from medmo_data.shards.reader import ShardError, check_index

from .budget import CHARS_PER_TOKEN, image_tokens
from .publish import publish
from .stage import StageManifestError, load_stage_manifest

COLS = ["key", "shard", "task", "modality", "n_images", "widths", "heights", "prompt_chars", "n_objects",
        "box_areas"]


def collect(manifest_path: Path) -> pl.DataFrame:
    """One row per kept sample of the stage, with the index columns the plots need and its source."""
    man = load_stage_manifest(manifest_path)
    base = manifest_path.parent
    frames = []
    for src, raw in zip(man.sources, man.raw["sources"], strict=True):
        smpath = (base / raw["manifest"]).resolve()
        sman = json.loads(smpath.read_text(encoding="utf-8"))
        wanted = {s.path.resolve() for s in src.shards}
        by_index: dict[str, set[str]] = {}
        for sh in sman["shards"]:
            if (smpath.parent / sh["path"]).resolve() in wanted:
                by_index.setdefault(sh["index"], set()).add(sh["path"])
        for idx, tars in sorted(by_index.items()):
            try:
                check_index(smpath.parent / idx)  # size caps before any read
            except ShardError as exc:
                raise StageManifestError(str(exc)) from exc
            df = pl.read_parquet(smpath.parent / idx, columns=COLS).filter(pl.col("shard").is_in(list(tars)))
            if src.excluded_keys:
                df = df.filter(~pl.col("key").is_in(list(src.excluded_keys)))
            frames.append(df.with_columns(source=pl.lit(src.name)))
    if not frames:
        return pl.DataFrame(schema={c: pl.String for c in COLS} | {"source": pl.String})
    return pl.concat(frames, how="vertical_relaxed")


def _fig_png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return buf.getvalue()


def _subtitle(raw: dict[str, Any]) -> str:
    """The spec's title without its own "Stage N:" prefix (the heading already says the stage)."""
    return re.sub(rf"^\s*stage\s*{raw['stage']}\s*[:\-–]\s*", "", raw.get("title", ""), flags=re.I)


def _bar(ax, counts: dict[str, int], title: str) -> None:
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:40]
    if not items:
        ax.text(0.5, 0.5, "nothing", ha="center", va="center")
    else:
        names, vals = zip(*items, strict=True)
        ax.barh(range(len(vals)), vals, color="#3b7dd8")
        ax.set_yticks(range(len(vals)), names, fontsize=8)
        ax.invert_yaxis()
        for i, v in enumerate(vals):
            ax.text(v, i, f" {v:,}", va="center", fontsize=7)
    ax.set_title(title)


def _hist(ax, values: np.ndarray, title: str, xlabel: str, log: bool = False) -> None:
    if values.size == 0:
        ax.text(0.5, 0.5, "no data", ha="center", va="center")
    else:
        bins = np.logspace(np.log10(max(values.min(), 1e-3)), np.log10(values.max() + 1), 40) if log else 40
        ax.hist(values, bins=bins, color="#d8843b")
        if log:
            ax.set_xscale("log")
        ax.axvline(np.median(values), color="k", ls="--", lw=1, label=f"median {np.median(values):,.0f}")
        ax.legend(fontsize=8)
    ax.set_title(title)
    ax.set_xlabel(xlabel)


def plots(df: pl.DataFrame, raw: dict[str, Any]) -> dict[str, bytes]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out: dict[str, bytes] = {}
    counts = lambda col: dict(df.group_by(col).len().iter_rows()) if df.height else {}  # noqa: E731
    fig, axes = plt.subplots(1, 3, figsize=(16, max(3, 0.25 * max(len(counts("source")), 8))))
    _bar(axes[0], counts("source"), "samples by source")
    _bar(axes[1], counts("task"), "samples by task")
    _bar(axes[2], counts("modality"), "samples by modality")
    out["composition"] = _fig_png(fig)
    plt.close(fig)

    img = df.select("widths", "heights").explode(["widths", "heights"]).drop_nulls() if df.height else df
    w = img["widths"].to_numpy().astype(np.float64) if img.height else np.zeros(0)
    h = img["heights"].to_numpy().astype(np.float64) if img.height else np.zeros(0)
    bounds = raw.get("image") or {}
    toks = image_tokens(w, h, int(bounds.get("min_pixels", 0)), int(bounds.get("max_pixels", 1 << 40))) \
        if w.size and bounds else np.zeros(0)
    fig, axes = plt.subplots(1, 3, figsize=(16, 3.5))
    _hist(axes[0], np.maximum(w, h), "stored image size (longest side)", "pixels")
    _hist(axes[1], toks.astype(np.float64), "image tokens at the stage's resolution", "tokens")
    per_row = df["n_images"].to_numpy() if df.height else np.zeros(0)
    _hist(axes[2], per_row.astype(np.float64), "images per sample", "images")
    out["images"] = _fig_png(fig)
    plt.close(fig)

    fig, axes = plt.subplots(1, 3, figsize=(16, 3.5))
    text_tok = np.ceil(df["prompt_chars"].to_numpy() / CHARS_PER_TOKEN) if df.height else np.zeros(0)
    _hist(axes[0], text_tok + 1, "prompt text tokens (estimate, chars / 3.5)", "tokens", log=True)
    boxes = df.filter(pl.col("n_objects") > 0) if df.height else df
    _hist(axes[1], boxes["n_objects"].to_numpy().astype(np.float64) if boxes.height else np.zeros(0),
          "boxes per grounding sample", "boxes")
    if boxes.height:
        b = boxes.select(pl.col("box_areas"), area=pl.col("widths").list.first() * pl.col("heights").list.first())
        b = b.explode("box_areas").drop_nulls()
        rel = np.sqrt(b["box_areas"].to_numpy() / np.maximum(b["area"].to_numpy(), 1))
    else:
        rel = np.zeros(0)
    _hist(axes[2], rel, "box size: sqrt(box area / image area)", "fraction of the image side")
    out["text_boxes"] = _fig_png(fig)
    plt.close(fig)

    f = raw.get("filters", {})
    reasons = dict(f.get("by_reason", {}))
    bench = {f"decontam: {k}": v for k, v in f.get("decontam", {}).get("by_benchmark", {}).items()}
    fig, axes = plt.subplots(1, 2, figsize=(16, 3.5))
    _bar(axes[0], reasons, "excluded samples by reason")
    _bar(axes[1], bench | {f"trap: {k}": v for k, v in f.get("traps", {}).items()}, "excluded by benchmark")
    out["filtered"] = _fig_png(fig)
    plt.close(fig)
    return out


def _table(rows: list[list[Any]], head: list[str]) -> str:
    th = "".join(f"<th>{html.escape(str(h))}</th>" for h in head)
    trs = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{th}</tr>{trs}</table>"


def report(manifest_path: Path, out: Path) -> list[Path]:
    """Write the HTML report and its PNGs; returns the files written."""
    raw = load_stage_manifest(manifest_path).raw  # a clear error for a missing or malformed manifest
    df = collect(manifest_path)
    pngs = plots(df, raw)
    written = [out.with_name(f"{out.stem}_{name}.png") for name in pngs]
    f = raw.get("filters", {})
    src_rows = [[s["name"], f"{s['samples']:,}", f"{s['weight']:.4f}", s.get("license", ""), s.get("access", ""),
                 len(s["shards"]), f.get("by_source", {}).get(s["name"], 0)] for s in raw["sources"]]
    excl = [[k, v] for k, v in f.get("by_reason", {}).items()]
    excl += [[f"decontam {k}", v] for k, v in f.get("decontam", {}).get("by_benchmark", {}).items()]
    excl += [[f"trap {k}", v] for k, v in f.get("traps", {}).items()]
    excl += [[f"source dropped: {d['name']} ({d['reason']})", d["samples"]]
             for d in f.get("licence", {}).get("sources_excluded", [])]
    excl += [[f"source missing: {m['name']} ({m['reason']})", "-"] for m in f.get("missing_sources", [])]
    imgs = "".join(f"<h2>{html.escape(n.replace('_', ' '))}</h2><img src='data:image/png;base64,"
                   f"{base64.b64encode(d).decode()}'/>" for n, d in pngs.items())
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>stage {raw['stage']} mixture</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left}} img{{max-width:100%}}</style></head><body>
<h1>Stage {raw['stage']} ({html.escape(raw['kind'])}): {html.escape(_subtitle(raw))}</h1>
<p>{df.height:,} samples kept from {len(raw['sources'])} sources; {f.get('rows_excluded', 0):,} excluded.
Image bounds: {html.escape(json.dumps(raw.get('image')))}; box format {html.escape(raw.get('box_format', ''))};
weights: {html.escape(raw.get('weight_meaning_text', raw.get('weight_meaning', '')))}.</p>
<h2>sources</h2>{_table(src_rows, ['source', 'samples', 'weight', 'licence', 'access', 'shards', 'excluded'])}
<h2>filtered</h2>{_table(excl, ['what', 'samples'])}
<h2>training</h2>{_table(sorted(raw['training'].items()), ['setting', 'value'])}
{imgs}</body></html>"""
    publish([*zip(written, pngs.values(), strict=True), (out, page.encode("utf-8"))])  # the page last
    return [out, *written]
