"""MedMCQA: 194k four-option questions from the Indian AIIMS and NEET-PG entrance exams, with
explanations, over 21 subjects (Pal, Umapathi & Sankarasubbu, CHIL 2022).

Get it from the official repository `medmcqa/medmcqa` (one Google Drive zip: `train.json`, `dev.json`,
`test.json`, each JSON Lines despite the name) or from the Hugging Face hub `openlifescienceai/medmcqa`
(`data/{train,validation,test}-*.parquet`). Licence: repository code MIT, HF card Apache-2.0.
Fields: `id` (uuid), `question`, `opa`..`opd`, `cop`, `exp`, `subject_name`, `topic_name`, `choice_type`.

The trap is the answer index: the RAW files' `cop` is 1-INDEXED (1 = `opa`; the README example has
`"cop":1` with answer "Leukemoid reaction"), the HF parquet's `cop` is a 0-INDEXED ClassLabel (0 = a) and
`-1` on test. The recipe branches on the layout it reads, never on the values. Options are lettered A-D in
`opa..opd` order; the assistant replies `"<letter>. <option>"` and, when the row has one, the explanation
(`exp`) after it, so the rationale stays separable; `target` holds choices, answer letter, answer text and
the explanation (empty when `exp` is empty, null or the string "None").

Splits: train -> train; dev / HF `validation` -> `val` (it IS the MedMCQA benchmark: 4,183 questions that
MedEvalKit and lm-eval score; never train on it); test has no answers, so its rows are counted as rejects
with reason `unlabeled` and never written (a test row that does carry a valid `cop` goes to `test`).
Other rejects: empty question or correct option (`empty_text`), `cop` out of range (`bad_answer`),
malformed or non-UTF-8 lines (`malformed_json`, `non_utf8_text`). `choice_type == "multi"` rows still have
one `cop` and are kept as single-answer questions.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from medmo_data.families.text_qa import LETTERS, mcq_messages, mcq_target
from medmo_data.formats.tables import clean, hf_splits, iter_jsonl, iter_parquet
from medmo_data.recipe import RawSample, Reject, SourceError, SourceInfo

INFO = SourceInfo(
    name="medmcqa", title="MedMCQA", stages=(3,), tasks=("mcq",), modality="none", access="open",
    license="MIT (code) / Apache-2.0 (HF card)", homepage="https://medmcqa.github.io",
    citation="Pal, Umapathi & Sankarasubbu, MedMCQA: A Large-scale Multi-Subject Multi-Choice Dataset for "
             "Medical domain Question Answering, CHIL 2022",
    images_per_sample=0,
    notes="validation (dev) = the MedMCQA benchmark: split 'val', never train; test is unlabeled and rejected.",
)
HUB_PATTERNS = ["data/*.parquet", "*.md"]
RAW_FILES = (("train", "train.json"), ("val", "dev.json"), ("test", "test.json"))
OPTIONS = ("opa", "opb", "opc", "opd")
_NO_EXP = {"", "none", "null", "nan"}


def _cop(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def sample(rid: str, split: str, row: dict[str, Any], base: int, where: str) -> RawSample | Reject:
    """One row; `base` is 1 for the raw release and 0 for the HF parquet."""
    qid = clean(row.get("id")) or rid
    cop = _cop(row.get("cop"))
    index = None if cop is None else cop - base
    if index is None or not 0 <= index < len(OPTIONS):
        if split == "test":
            return Reject(qid, "unlabeled", f"{where}: test row has no answer (cop={row.get('cop')!r})")
        return Reject(qid, "bad_answer", f"{where}: cop={row.get('cop')!r} is not {base}..{base + 3}")
    question = clean(row.get("question"))
    choices = {LETTERS[i]: clean(row.get(k)) for i, k in enumerate(OPTIONS)}
    letter = LETTERS[index]
    if not question or not choices[letter]:
        return Reject(qid, "empty_text", f"{where}: question or the correct option ({letter}) is empty")
    exp = clean(row.get("exp"))
    exp = "" if exp.lower() in _NO_EXP else exp
    return RawSample(
        id=qid, split=split, task="mcq", messages=mcq_messages(question, choices, letter, explanation=exp or None),
        target={**mcq_target(choices, letter), "explanation": exp},
        meta={"subject": clean(row.get("subject_name")), "topic": clean(row.get("topic_name")),
              "choice_type": clean(row.get("choice_type")), "file": where},
    )


def _raw(files: list[tuple[str, Path]]) -> Iterator[RawSample | Reject]:
    for split, path in files:
        for item in iter_jsonl(path):
            if isinstance(item, Reject):
                yield item
                continue
            lid, row = item
            yield sample(lid, split, row, base=1, where=path.name)


def _hub(files: dict[str, list[Path]]) -> Iterator[RawSample | Reject]:
    for split in ("train", "val", "test"):
        for path in files.get(split, []):
            for i, row in enumerate(iter_parquet([path])):
                yield sample(f"{path.name}:{i}", split, row, base=0, where=path.name)


def _find(root: Path, name: str) -> Path | None:
    if (root / name).is_file():
        return root / name
    found = sorted(root.rglob(name))
    return found[0] if found else None


def records(root: Path, options: dict[str, str]) -> Iterator[RawSample | Reject]:
    raw = [(split, p) for split, name in RAW_FILES if (p := _find(root, name)) is not None]
    if raw:
        yield from _raw(raw)
    elif files := hf_splits(root, {"train": "train", "val": "validation", "test": "test"}):
        yield from _hub(files)
    else:
        raise SourceError(f"{root}: no raw train.json/dev.json/test.json and no HF data/*.parquet found")
