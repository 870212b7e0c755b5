"""MedReason (UCSC-VLAA; Wu et al., arXiv 2504.00993): 32,682 medical questions with knowledge-graph
grounded, step-by-step reasoning ("Finding reasoning paths:" ... "Conclusion:") and the answer,
generated from seven QA sets (MedQA, MedMCQA, PubMedQA, MMLU, MedXpertQA, HLE, HuatuoGPT-o1 problems).

Get it: hub `UCSC-VLAA/MedReason` (Apache-2.0): `ours_quality_33000.jsonl` (the file MedMO read), or
its parquet conversion (`data/train-*.parquet`). Fields `dataset_name, id_in_dataset, question, answer,
reasoning, options`. `options` is ONE string as the generator wrote it (`"Answer Choices:\\nA. ...\\nB. ..."`;
empty for open questions); `answer` is free text: the option text (MedQA, MMLU), the option text plus
`". Explanation: ..."` (MedMCQA), `"(A) text"` (MedXpertQA) or a plain answer (open questions).
Split: one `train` split.

Benchmarks (sources.md 6.2): rows whose `dataset_name` is `MMLU`, `pubmedqa_labeled`, `MedXpertQA` or
`LastHumanity` were generated from those benchmarks' test items and are rejected as `benchmark_overlap`.
Output: user = question, a blank line, then the options string as released (option order kept);
assistant = reasoning + answer in the `-o think=tags|plain|none` form (default `tags`). `target`:
`reasoning`, `answer` (the released answer text), `choices` (letter -> option text, parsed from the
string; `{}` for open questions) and `answer_letter` (the option the answer names, found by exact
text, `(X)` prefix or option-text prefix; `""` when the answer names no single option).
Ids are `<dataset_name>-<id_in_dataset>`. Malformed or non-UTF-8 lines are counted rejects; empty
question / reasoning / answer are `empty_text`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from medmo_data.families.text_qa import reasoning_messages
from medmo_data.families.text_release import THINK_OPTION, check_options, find_file
from medmo_data.formats.tables import clean, hf_splits, iter_jsonl, iter_parquet
from medmo_data.recipe import RawSample, Reject, SourceError, SourceInfo

INFO = SourceInfo(
    name="medreason", title="MedReason", stages=(3,), tasks=("reasoning",), modality="none", access="open",
    license="Apache-2.0", homepage="https://huggingface.co/datasets/UCSC-VLAA/MedReason",
    citation="Wu et al., MedReason: Eliciting Factual Medical Reasoning Steps in LLMs via Knowledge Graphs, "
             "arXiv 2504.00993",
    images_per_sample=0,
)
HUB_PATTERNS = ["*.jsonl", "data/*.parquet", "*.md"]
JSONL = "ours_quality_33000.jsonl"
FIELDS = ["dataset_name", "id_in_dataset", "question", "answer", "reasoning", "options"]
BENCHMARK_SETS = frozenset({"MMLU", "pubmedqa_labeled", "MedXpertQA", "LastHumanity"})
_OPTION = re.compile(r"^\s*\(?([A-Z])[.)]\s*(.*)$")
_LETTER_PREFIX = re.compile(r"^\(([A-Z])\)\s*(.*)$", re.S)


def parse_options(text: str) -> dict[str, str]:
    """Letter -> option text from "Answer Choices:\\nA. x\\nB. y"; a line that starts no option continues
    the previous one. Anything that is not a clean A, B, C, ... run gives {}."""
    choices: dict[str, str] = {}
    last = None
    for line in text.splitlines():
        m = _OPTION.match(line)
        if m and m.group(1) == chr(ord("A") + len(choices)):
            last = m.group(1)
            choices[last] = m.group(2).strip()
        elif m:
            return {}  # a letter out of sequence: not a choice list we can trust
        elif last is not None and line.strip():
            choices[last] = f"{choices[last]} {line.strip()}"
        elif line.strip() and line.strip().rstrip(":").lower() != "answer choices":
            return {}
    return choices


def _norm(s: str) -> str:
    return " ".join(s.lower().split()).rstrip(". ")


def answer_letter(answer: str, choices: dict[str, str]) -> str:
    """The single option `answer` names, else ""."""
    m = _LETTER_PREFIX.match(answer)
    if m and m.group(1) in choices:
        return m.group(1)
    a = _norm(answer)
    exact = [k for k, v in choices.items() if _norm(v) == a]
    if len(exact) == 1:
        return exact[0]
    prefix = [(len(_norm(v)), k) for k, v in choices.items()
              if _norm(v) and a.startswith(_norm(v)) and not a[len(_norm(v)):len(_norm(v)) + 1].isalnum()]
    prefix.sort(reverse=True)
    if prefix and (len(prefix) == 1 or prefix[0][0] > prefix[1][0]):
        return prefix[0][1]
    return ""


def _rows(root: Path) -> Iterator[tuple[str, dict[str, Any]] | Reject]:
    if (path := find_file(root, [JSONL])) is not None:
        yield from iter_jsonl(path)
    elif files := hf_splits(root, {"train": "train"}).get("train"):
        for i, row in enumerate(iter_parquet(files, FIELDS)):
            yield f"{files[0].name}:{i}", row
    else:
        raise SourceError(f"{root}: medreason: found neither {JSONL} nor hub data/train-*.parquet")


def _sample(lid: str, row: dict[str, Any], think: str) -> RawSample | Reject:
    missing = [k for k in ("dataset_name", "question", "answer", "reasoning") if k not in row]
    if missing:
        return Reject(lid, "missing_field", f"no {missing}")
    name, num = clean(row["dataset_name"]), clean(row.get("id_in_dataset"))
    rid = f"{name}-{num}" if name and num else lid
    if name in BENCHMARK_SETS:
        return Reject(rid, "benchmark_overlap", f"dataset_name {name!r} comes from a benchmark's test items")
    q, a, r, opts = (clean(row.get(k)) for k in ("question", "answer", "reasoning", "options"))
    empty = [k for k, v in (("question", q), ("reasoning", r), ("answer", a)) if not v]
    if empty:
        return Reject(rid, "empty_text", f"empty {', '.join(empty)}")
    choices = parse_options(opts)
    prompt = f"{q}\n\n{opts}" if opts else q
    return RawSample(id=rid, split="train", task="reasoning",
                     messages=reasoning_messages(prompt, r, a, think=think),
                     target={"reasoning": r, "answer": a, "choices": choices,
                             "answer_letter": answer_letter(a, choices)},
                     meta={"dataset_name": name, "id_in_dataset": num})


def records(root: Path, options: dict[str, str]) -> Iterator[RawSample | Reject]:
    think = check_options(options, THINK_OPTION, INFO.name)["think"]
    for item in _rows(root):
        yield item if isinstance(item, Reject) else _sample(item[0], item[1], think)
