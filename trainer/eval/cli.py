"""`medmo-eval`: score a checkpoint on the paper's benchmarks with the paper's metrics.

    medmo-eval --model PATH_OR_ID --data DATA_DIR [--benchmark NAME ...] [--out DIR] [--limit N]
               [--backend transformers|vllm] [--batch-size N] [--max-new-tokens N]

Writes DIR/predictions/NAME.jsonl (every judgement), DIR/results.json and DIR/results.md. Benchmarks whose
data is absent are listed as missing with the command that gets them. Rerunning skips the items already in
predictions/. Exit codes: 0 done, 1 a benchmark failed to read, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from medmo_train.data import Resolution

from medmo_data.shards.writer import atomic_write

from .benchmarks import Benchmark, Item, items, missing_reason, registry
from .generate import GenerationSettings, TransformersBackend, VLLMBackend, stage_resolution, vllm_available
from .report import PredictionLog, load_predictions, write_results
from .score import aggregate, score_item


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="medmo-eval", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="checkpoint folder or hub id")
    p.add_argument("--data", required=True, type=Path, help="the --output folder of medmo-data build")
    p.add_argument("--benchmark", nargs="+", action="extend", default=[], metavar="NAME",
                   help="benchmarks to run (default: all); see docs/eval.md")
    p.add_argument("--out", type=Path, help="output folder (default: eval/<model folder name>)")
    p.add_argument("--limit", type=int, help="score at most N items per benchmark")
    p.add_argument("--backend", choices=("transformers", "vllm"), default="transformers")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=1024)
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    p.add_argument("--stage", type=int, default=2, choices=(1, 2, 3, 4),
                   help="feed images at this stage's pixel bounds (manifests/stageN.yaml)")
    p.add_argument("--min-pixels", type=int)
    p.add_argument("--max-pixels", type=int)
    p.add_argument("--box-format", default="qwen3", choices=("qwen3", "pixel", "json"),
                   help="box frame the grounding prompts ask for (answers in any frame are parsed)")
    p.add_argument("--device", help="transformers backend: cpu, cuda, cuda:1 (default: cuda if available)")
    p.add_argument("--rate-model", type=Path, help="RaTE-NER model folder: report RaTEScore (needs RaTEScore)")
    p.add_argument("--embed-model", type=Path, help="sentence-embedding model folder: report embedding score")
    return p.parse_args(argv)


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def select(names: list[str], reg: dict[str, Benchmark]) -> list[Benchmark]:
    """Benchmarks by name or title, case and punctuation ignored ("VQA-RAD" = "vqarad")."""
    if not names:
        return list(reg.values())
    keys = {_key(k): b for k, b in reg.items()} | {_key(b.title): b for b in reg.values()}
    unknown = [n for n in names if _key(n) not in keys]
    if unknown:
        raise SystemExit(f"medmo-eval: unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(reg)}")
    return list(dict.fromkeys(keys[_key(n)] for n in names))


def batches(it: Iterator[Item], size: int) -> Iterator[list[Item]]:
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def model_scores(preds: list[str], refs: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """RaTEScore / embedding score when their models are given, else "not run"."""
    out: dict[str, Any] = {"ratescore": "not run", "embedding_score": "not run"}
    if not preds:
        return out
    if args.rate_model:
        from RaTEScore import RaTEScore  # optional: pip install RaTEScore

        kw = {"eval_model": str(args.embed_model)} if args.embed_model else {}
        scores = RaTEScore(bert_model=str(args.rate_model), **kw).compute_score(preds, refs)
        out["ratescore"] = sum(scores) / len(scores)
    if args.embed_model:
        out["embedding_score"] = embedding_score(preds, refs, args.embed_model)
    return out


def embedding_score(preds: list[str], refs: list[str], model_dir: Path) -> float:
    """Mean cosine similarity of mean-pooled sentence embeddings (prediction vs reference)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir, dtype=torch.float32).eval()

    def embed(texts: list[str]) -> torch.Tensor:
        enc = tok(texts, padding=True, truncation=True, max_length=512, return_tensors="pt")
        with torch.inference_mode():
            h = model(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).to(h.dtype)
        return torch.nn.functional.normalize((h * mask).sum(1) / mask.sum(1), dim=-1)

    sims = [float((embed(preds[i:i + 32]) * embed(refs[i:i + 32])).sum(-1).sum()) for i in range(0, len(preds), 32)]
    return sum(sims) / len(preds)


def run_benchmark(bench: Benchmark, args: argparse.Namespace, out: Path, get_backend: Callable[[], Any],
                  resolution: Resolution) -> dict[str, Any]:
    """Generate what is not yet in predictions/NAME.jsonl, then judge the benchmark's items."""
    path = out / "predictions" / f"{bench.name}.jsonl"
    done = load_predictions(path)
    stream = items(args.data, bench, args.box_format)
    if args.limit is not None:
        stream = itertools.islice(stream, args.limit)
    order: list[str] = []

    def pending() -> Iterator[Item]:
        for it in stream:
            order.append(it.id)
            if it.id not in done:
                yield it

    log = PredictionLog(path)
    new = 0
    try:
        for chunk in batches(pending(), args.batch_size):
            preds = get_backend().generate(chunk)
            rows = []
            for it, pred in zip(chunk, preds, strict=True):
                fed = resolution.fed_size(*it.image_size) if it.kind == "grounding" and it.box_format == "pixel" \
                    else None
                row = {"id": it.id, "kind": it.kind, "prompt": it.prompt, "prediction": pred,
                       "reference": it.reference, "score": score_item(it, pred, fed)}
                if it.choices:
                    row["choices"] = it.choices
                if it.boxes is not None:
                    row["gt_boxes"] = it.boxes
                rows.append(row)
                done[it.id] = row
            log.write(rows)
            new += len(rows)
    finally:
        log.close()
    lines = [done[i] for i in dict.fromkeys(order) if i in done]
    extra = None
    if bench.group == "report":
        extra = model_scores([ln["prediction"] for ln in lines], [ln["reference"] for ln in lines], args)
    print(f"medmo-eval: {bench.name}: {len(lines)} items ({new} generated, {len(lines) - new} resumed)",
          file=sys.stderr)
    return {"n": len(lines), "metrics": aggregate(bench.group, lines, extra)}


def check_settings(path: Path, fixed: dict[str, Any]) -> str | None:
    """Predictions are resumed only under the settings that made them (recorded beside them)."""
    if path.exists():
        before = json.loads(path.read_text(encoding="utf-8"))
        diff = {k: before.get(k) for k, v in fixed.items() if before.get(k) != v}
        return ", ".join(f"{k}={v!r}" for k, v in diff.items()) or None
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(fixed, indent=1, sort_keys=True).encode() + b"\n")
    return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    reg = registry()
    try:
        chosen = select(args.benchmark, reg)
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.backend == "vllm" and not vllm_available():
        print("medmo-eval: --backend vllm needs vLLM (pip install 'medmo-data[vllm]'); it is not installed",
              file=sys.stderr)
        return 2
    if args.rate_model:
        import importlib.util

        if importlib.util.find_spec("RaTEScore") is None:
            print("medmo-eval: --rate-model needs the RaTEScore package (pip install RaTEScore)", file=sys.stderr)
            return 2
    out = args.out or Path("eval") / Path(args.model.rstrip("/")).name
    out.mkdir(parents=True, exist_ok=True)
    resolution = stage_resolution(args.stage, args.min_pixels, args.max_pixels)
    settings = GenerationSettings(args.max_new_tokens, args.temperature, args.batch_size)
    fixed = {"model": args.model, "max_new_tokens": args.max_new_tokens, "temperature": args.temperature,
             "min_pixels": resolution.min_pixels, "max_pixels": resolution.max_pixels, "box_format": args.box_format}
    clash = check_settings(out / "predictions" / "settings.json", fixed)
    if clash:
        print(f"medmo-eval: {out / 'predictions'} holds predictions made with {clash}; resume with the same "
              "settings or choose another --out", file=sys.stderr)
        return 2
    backend: list[Any] = []

    def get_backend() -> Any:
        if not backend:  # loaded on first use: a fully resumed or all-missing run never loads the model
            cls = VLLMBackend if args.backend == "vllm" else TransformersBackend
            kw = {"device": args.device} if args.backend == "transformers" else {}
            backend.append(cls(args.model, resolution, settings, **kw))
        return backend[0]

    results: dict[str, Any] = {}
    missing: list[dict[str, str]] = []
    failed = 0
    t0 = time.time()
    for bench in chosen:
        why = missing_reason(args.data, bench)
        if why:
            missing.append({"name": bench.name, "reason": why[0], "build": why[1]})
            continue
        try:
            results[bench.name] = run_benchmark(bench, args, out, get_backend, resolution)
        except (ValueError, OSError) as exc:  # unreadable release file or shard: name it, go on
            failed += 1
            missing.append({"name": bench.name, "reason": f"failed: {exc}", "build": "fix the files named"})
            print(f"medmo-eval: {bench.name}: {exc}", file=sys.stderr)
    record = {**settings.record(), "backend": args.backend, "stage": args.stage, "box_format": args.box_format,
              "min_pixels": resolution.min_pixels, "max_pixels": resolution.max_pixels, "limit": args.limit,
              "seconds": round(time.time() - t0, 1)}
    write_results(out, args.model, results, reg, missing, record)
    for m in missing:
        print(f"medmo-eval: missing {m['name']}: {m['reason']} -> {m['build']}", file=sys.stderr)
    print(out / "results.md")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
