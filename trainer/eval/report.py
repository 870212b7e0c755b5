"""Outputs of `medmo-eval`: predictions/NAME.jsonl (one judged line per item, appended as generated, so a
rerun resumes), results.json (fractions, CIDEr-D raw) and results.md (the paper's Table 5 and 6 layout in
the paper's units: percent, CIDEr x 100)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from medmo_data.shards.writer import atomic_write

from .benchmarks import Benchmark


def load_predictions(path: Path) -> dict[str, dict[str, Any]]:
    """Lines already judged, by item id. A torn last line (killed mid-write) is dropped and rewritten."""
    done: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return done
    torn = False
    # split on newlines only: a generation may hold a raw U+2028 or U+0085, which splitlines() would cut at
    for line in path.read_text(encoding="utf-8").split("\n"):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            done[row["id"]] = row
        except (json.JSONDecodeError, KeyError, TypeError):
            torn = True
    if torn:
        atomic_write(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in done.values()).encode())
    return done


class PredictionLog:
    """Appends judged lines to predictions/NAME.jsonl, flushed and fsynced per batch."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.f = path.open("a", encoding="utf-8")

    def write(self, rows: list[dict[str, Any]]) -> None:
        for r in rows:
            self.f.write(json.dumps(r, ensure_ascii=False) + "\n")
        self.f.flush()
        os.fsync(self.f.fileno())

    def close(self) -> None:
        self.f.close()


def pct(x: Any, scale: float = 100.0) -> str:
    return f"{x * scale:.1f}" if isinstance(x, (int, float)) else "—"


def _m(results: dict[str, Any], name: str) -> dict[str, Any]:
    return results.get(name, {}).get("metrics", {})


def vqa_cells(results: dict[str, Any], b: Benchmark) -> list[tuple[str, float | None]]:
    """(cell, value) for a Table 5 column: VQA-RAD and SLAKE show closed / all."""
    m = _m(results, b.name)
    if b.name in ("vqa-rad", "slake"):
        return [(pct(m.get("closed_accuracy")), m.get("closed_accuracy")), (pct(m.get("accuracy")), m.get("accuracy"))]
    return [(pct(m.get("accuracy")), m.get("accuracy"))]


def qa_table(results: dict[str, Any], benches: list[Benchmark], model: str) -> list[str]:
    heads, cells, values = [], [], []
    for b in benches:
        cs = vqa_cells(results, b)
        heads.append(b.title + (" (closed / all)" if len(cs) == 2 else ""))
        cells.append(" / ".join(c for c, _ in cs))
        values += [v for _, v in cs]
    got = [v for v in values if v is not None]
    avg = f"{pct(sum(got) / len(got))} ({len(got)}/{len(values)})" if got else "—"
    return [f"| Model | {' | '.join(heads)} | Avg |", "|---" * (len(heads) + 2) + "|",
            f"| {model} | {' | '.join(cells)} | {avg} |"]


def markdown(model: str, results: dict[str, Any], registry: dict[str, Benchmark], missing: list[dict[str, str]],
             settings: dict[str, Any]) -> str:
    by_group: dict[str, list[Benchmark]] = {}
    for b in registry.values():
        by_group.setdefault(b.group, []).append(b)
    lines = [f"# medmo-eval: {model}", "",
             "Accuracy in percent; ROUGE-L, BLEU-4, RaTEScore, embedding score and IoU in percent; CIDEr-D x 100 "
             "(the paper's units). Avg: mean of the cells present (count in brackets). — = not scored.", ""]
    label = Path(model.rstrip("/")).name or model  # a folder's name or a hub id's repo name
    lines += ["## Table 5 (VQA)", ""] + qa_table(results, by_group["vqa"], label) + [""]
    lines += ["## Table 5 (text QA)", ""] + qa_table(results, by_group["text"], label) + [""]
    lines += ["## Table 6 (report generation)", "", "| Dataset | ROUGE-L | CIDEr | BLEU-4 | RaTEScore | Embedding | n |",
              "|---|---|---|---|---|---|---|"]
    for b in by_group["report"]:
        m = _m(results, b.name)
        n = results.get(b.name, {}).get("n", "—")
        model_cells = [m[k] if m.get(k) == "not run" else pct(m.get(k)) for k in ("ratescore", "embedding_score")]
        lines.append(f"| {b.title} | {pct(m.get('rouge_l'))} | {pct(m.get('cider_d'))} | {pct(m.get('bleu4'))} | "
                     f"{' | '.join(model_cells)} | {n} |")
    lines += ["", "## Grounding", "", "| Benchmark | Acc@IoU0.5 | mean IoU | GT boxes | items |", "|---|---|---|---|---|"]
    for b in by_group["grounding"]:
        m = _m(results, b.name)
        lines.append(f"| {b.title} | {pct(m.get('acc_iou50'))} | {pct(m.get('mean_iou'))} | {m.get('gt_boxes', '—')} | "
                     f"{results.get(b.name, {}).get('n', '—')} |")
    if missing:
        lines += ["", "## Missing", "", "| Benchmark | Why | Get it |", "|---|---|---|"]
        lines += [f"| {x['name']} | {x['reason']} | `{x['build']}` |" for x in missing]
    lines += ["", f"Generation: {json.dumps(settings, sort_keys=True)}", ""]
    return "\n".join(lines)


def write_results(out: Path, model: str, results: dict[str, Any], registry: dict[str, Benchmark],
                  missing: list[dict[str, str]], settings: dict[str, Any]) -> None:
    doc = {"model": model, "generation": settings, "benchmarks": results, "missing": missing}
    atomic_write(out / "results.json", json.dumps(doc, indent=1, ensure_ascii=False, sort_keys=True).encode() + b"\n")
    atomic_write(out / "results.md", markdown(model, results, registry, missing, settings).encode())
