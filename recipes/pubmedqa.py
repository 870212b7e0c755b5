"""PubMedQA: yes/no/maybe questions on PubMed abstracts; the abstract (minus its conclusion) is the context,
the conclusion is the long answer (Jin et al., EMNLP 2019). Licence MIT.

Get it from `pubmedqa/pubmedqa` (`data/ori_pqal.json`, `data/test_ground_truth.json`) plus the two Google
Drive files `ori_pqaa.json` and `ori_pqau.json`; or the Hugging Face hub `qiaojin/PubMedQA`, configs
`pqa_labeled` / `pqa_artificial` / `pqa_unlabeled` (parquet folders of those names; the folder layout of the
hub copy is UNVERIFIED, the columns are `pubid, question, context{contexts, labels, meshes}, long_answer,
final_decision`).
- PQA-L (`ori_pqal.json`, 1,000, expert-labelled): a JSON OBJECT keyed by PMID, values `QUESTION, CONTEXTS
  (list), LABELS (section names, same length), MESHES, YEAR (string or null), reasoning_*_pred,
  final_decision, LONG_ANSWER`.
- PQA-A (`ori_pqaa.json`, 211k, heuristic labels, 92.8 % yes) and PQA-U (`ori_pqau.json`, 61k, no
  `final_decision`): the same dict shape. These files are large: every file is streamed entry by entry.

Sample: the contexts joined one per line as `SECTION: text`, then the question, as a multiple-choice
question with options A. yes / B. no / C. maybe (the MedEvalKit form); the assistant answers with the
letter and option, then the long answer as the explanation; `target` = choices + letter + answer text +
`explanation`. PQA-U has no label: it becomes a `text_qa` sample (context + question -> long answer) whose
target has the same keys with an empty `answer` / `answer_text`.

CONTAMINATION (sources.md §6.2): PQA-L IS the PubMedQA benchmark (500 official test PMIDs in
`test_ground_truth.json`; lm-eval scores all 1,000). Every PQA-L entry goes to `test` (`meta.official_test`
marks the official 500), none to train. PQA-A and PQA-U go to `train`, except PMIDs found in PQA-L or in
`test_ground_truth.json` (whichever of the two is present), which are rejected as `benchmark_overlap`.
Other rejects: malformed or non-UTF-8 entries, missing fields (`missing_field`), no context or question
(`empty_text`), a label other than yes/no/maybe (`bad_answer`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from medmo_data.families.text_qa import mcq_messages, mcq_target
from medmo_data.formats.json_stream import iter_json_items
from medmo_data.formats.tables import clean, iter_parquet, load_json
from medmo_data.recipe import RawSample, Reject, SourceError, SourceInfo
from medmo_data.schema import turn

INFO = SourceInfo(
    name="pubmedqa", title="PubMedQA (PQA-L / PQA-A / PQA-U)", stages=(3,), tasks=("mcq", "text_qa"),
    modality="none", access="open", license="MIT", homepage="https://pubmedqa.github.io",
    citation="Jin et al., PubMedQA: A Dataset for Biomedical Research Question Answering, EMNLP 2019",
    images_per_sample=0,
    notes="PQA-L (the benchmark) is split 'test' only; PQA-A/PQA-U PMIDs in PQA-L are rejected.",
)
HUB_PATTERNS = ["pqa_labeled/*.parquet", "pqa_artificial/*.parquet", "pqa_unlabeled/*.parquet", "*.md"]
CHOICES = {"A": "yes", "B": "no", "C": "maybe"}
LETTER = {v: k for k, v in CHOICES.items()}
RAW = (("pqa_l", "ori_pqal.json"), ("pqa_a", "ori_pqaa.json"), ("pqa_u", "ori_pqau.json"))
HUB = (("pqa_l", "pqa_labeled"), ("pqa_a", "pqa_artificial"), ("pqa_u", "pqa_unlabeled"))


def context_text(contexts: list[Any], labels: list[Any] | None) -> str:
    """One line per context, prefixed with its section label when the labels line up."""
    labels = labels if labels and len(labels) == len(contexts) else [""] * len(contexts)
    lines = []
    for lab, ctx in zip(labels, contexts, strict=True):
        ctx, lab = clean(ctx), clean(lab)
        if ctx:
            lines.append(f"{lab}: {ctx}" if lab else ctx)
    return "\n".join(lines)


def sample(pmid: str, subset: str, entry: dict[str, Any], official: bool) -> RawSample | Reject:
    """One entry in the raw shape (QUESTION, CONTEXTS, LABELS, YEAR, final_decision, LONG_ANSWER)."""
    missing = [k for k in ("QUESTION", "CONTEXTS") if entry.get(k) is None]
    if subset != "pqa_u" and entry.get("final_decision") is None:
        missing.append("final_decision")
    if missing:
        return Reject(pmid, "missing_field", f"{subset} {pmid}: no {missing}")
    if not isinstance(entry["CONTEXTS"], list):
        return Reject(pmid, "malformed_record", f"{subset} {pmid}: CONTEXTS is not a list")
    question, context = clean(entry["QUESTION"]), context_text(entry["CONTEXTS"], entry.get("LABELS"))
    long_answer = clean(entry.get("LONG_ANSWER"))
    if not question or not context:
        return Reject(pmid, "empty_text", f"{subset} {pmid}: question or contexts empty")
    prompt = f"Context:\n{context}\n\nQuestion: {question}"
    meta = {"pmid": pmid, "subset": subset, "year": clean(entry.get("YEAR")), "official_test": official}
    split = "test" if subset == "pqa_l" else "train"
    if subset == "pqa_u":
        if not long_answer:
            return Reject(pmid, "empty_text", f"{subset} {pmid}: no LONG_ANSWER")
        return RawSample(id=pmid, split=split, task="text_qa",
                         messages=[turn("user", prompt), turn("assistant", long_answer)],
                         target={"choices": dict(CHOICES), "answer": "", "answer_text": "",
                                 "explanation": long_answer}, meta=meta)
    decision = clean(entry["final_decision"]).lower()
    if decision not in LETTER:
        return Reject(pmid, "bad_answer", f"{subset} {pmid}: final_decision {entry['final_decision']!r}")
    letter = LETTER[decision]
    return RawSample(id=pmid, split=split, task="mcq",
                     messages=mcq_messages(prompt, CHOICES, letter, explanation=long_answer or None),
                     target={**mcq_target(CHOICES, letter), "explanation": long_answer}, meta=meta)


def _hub_entry(row: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    ctx = row.get("context") or {}
    return clean(row.get("pubid")), {
        "QUESTION": row.get("question"), "CONTEXTS": ctx.get("contexts"), "LABELS": ctx.get("labels"),
        "YEAR": None, "final_decision": row.get("final_decision"), "LONG_ANSWER": row.get("long_answer")}


def _entries(source: Path | list[Path]) -> Iterator[tuple[str, Any] | Reject]:
    if isinstance(source, Path):
        yield from iter_json_items(source)
        return
    for row in iter_parquet(source):
        yield _hub_entry(row)


def _find(root: Path) -> dict[str, Path | list[Path]]:
    found: dict[str, Path | list[Path]] = {}
    for subset, name in RAW:
        hits = sorted(root.rglob(name))
        if hits:
            found[subset] = hits[0]
    if not found:
        for subset, folder in HUB:
            files = sorted(p for d in root.rglob(folder) if d.is_dir() for p in d.glob("*.parquet"))
            if files:
                found[subset] = files
    return found


def records(root: Path, options: dict[str, str]) -> Iterator[RawSample | Reject]:
    found = _find(root)
    if not found:
        raise SourceError(f"{root}: no ori_pqal/ori_pqaa/ori_pqau.json and no pqa_* parquet folders found")
    gt = sorted(root.rglob("test_ground_truth.json"))
    official: set[str] = set(load_json(gt[0])) if gt else set()
    benchmark = set(official)  # grows with every PQA-L PMID read below
    for subset, _ in RAW:
        if subset not in found:
            continue
        for item in _entries(found[subset]):
            if isinstance(item, Reject):
                yield Reject(f"{subset}:{item.id}", item.reason, item.detail)
                continue
            pmid, entry = item
            if not isinstance(entry, dict):
                yield Reject(pmid, "malformed_record", f"{subset} {pmid}: entry is not an object")
                continue
            if subset == "pqa_l":
                benchmark.add(pmid)
            elif pmid in benchmark:
                yield Reject(pmid, "benchmark_overlap", f"{subset} {pmid}: PMID is in PQA-L / the official test")
                continue
            yield sample(pmid, subset, entry, pmid in official)
