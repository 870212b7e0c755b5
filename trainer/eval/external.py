"""Readers of the benchmarks that are not one of our 45 sources, in their release / hub layouts.

Each reader takes the benchmark's folder (`DATA/benchmarks/<folder>`, a `huggingface-cli download`
snapshot or the unzipped release) and yields `Item`s prompted as MedEvalKit does (docs/eval.md):
- MMMU (MMMU/MMMU): `<Subject>/validation-*.parquet` of the 5 Health & Medicine subjects; columns id,
  question, options (a Python list literal), answer, question_type, image_1..image_7 ({bytes, path}).
- OmniMedVQA: `QA_information/Open-access/*.json` (lists of {question_id, question, gt_answer, option_A..D,
  image_path (relative to the folder), question_type, modality_type}).
- MedXpertQA (TsinghuaC3I/MedXpertQA): `MM/test.jsonl`, `Text/test.jsonl` ({id, question, options
  {letter: text}, label, images [file names in images/], medical_task, question_type}).
- MMLU (cais/mmlu): `<subject>/test-*.parquet` ({question, subject, choices [4], answer (0-3)}).
- Medbullets op4 (tuenguyen/Medical-Eval-MedBullets_op4): parquet with question, options {A..D}, answer_idx;
  op5 (LangAGI-Lab/medbullets_op5): question, opa..ope, answer_idx; MedEvalKit scores the train split.
- SuperGPQA (m-a-p/SuperGPQA): `SuperGPQA-all.jsonl` ({uuid, question, options [..10], answer_letter,
  discipline, field, difficulty}); the discipline "Medicine" items.
Files are size-checked before reading; a missing column is an error naming the file and the column.
"""

from __future__ import annotations

import ast
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from PIL import Image

from .benchmarks import CLOSE_ENDED, MCQ_INSTRUCTION, Item, mcq_prompt, user_turn

MAX_FILE_BYTES = 2 << 30  # release files here are < 1 GB; anything larger is not what we expect
MMMU_MEDICAL = ("Basic_Medical_Science", "Clinical_Medicine", "Diagnostics_and_Laboratory_Medicine", "Pharmacy",
                "Public_Health")
MMLU_MEDICAL = ("anatomy", "clinical_knowledge", "college_biology", "college_medicine", "medical_genetics",
                "professional_medicine", "nutrition", "virology", "high_school_biology")  # MedEvalKit's 9


class BenchmarkFileError(ValueError):
    """A benchmark release file that does not have the expected layout."""


def _checked(path: Path) -> Path:
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise BenchmarkFileError(f"{path}: {size} bytes, over the {MAX_FILE_BYTES} byte cap for a benchmark file")
    return path


def _rows(path: Path) -> Iterator[dict[str, Any]]:
    """Rows of a .jsonl, .json (list) or .parquet file."""
    _checked(path)
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        yield from pq.read_table(path).to_pylist()
    elif path.suffix == ".jsonl":
        with path.open(encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise BenchmarkFileError(f"{path}:{n}: invalid JSON ({exc})") from exc
    else:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, list):
            raise BenchmarkFileError(f"{path}: expected a JSON list of questions")
        yield from data


def _need(row: dict[str, Any], path: Path, *cols: str) -> list[Any]:
    for c in cols:
        if c not in row:
            raise BenchmarkFileError(f"{path}: field {c!r} missing (columns: {sorted(row)})")
    return [row[c] for c in cols]


def _files(folder: Path, pattern: str) -> list[Path]:
    found = sorted(folder.glob(pattern))
    if not found:
        raise BenchmarkFileError(f"{folder}: no files matching {pattern}")
    return found


def _image(path: Path) -> Image.Image:
    return Image.open(_checked(path))


def _mcq(id_: str, question: str, choices: list[str], answer: str, images: list[Any], sep: str = ". ",
         **extra: Any) -> Item:
    return Item(str(id_), "mcq", user_turn(len(images), mcq_prompt(question, choices, sep)), images=images,
                reference=answer, choices=choices, extra=extra)


# ---- MMMU ----------------------------------------------------------------------------------------------

def mmmu_medical(folder: Path) -> Iterator[Item]:
    """MMMU validation, Health & Medicine (MMMU's own prompt: "(A) option" lines, 8-space instruction)."""
    for subject in MMMU_MEDICAL:
        for path in _files(folder / subject, "validation-*.parquet"):
            for row in _rows(path):
                id_, question, options, answer, qtype = _need(row, path, "id", "question", "options", "answer",
                                                               "question_type")
                opts = ast.literal_eval(options) if isinstance(options, str) else list(options)
                images = [Image.open(io.BytesIO(row[k]["bytes"])) for k in (f"image_{i}" for i in range(1, 8))
                          if row.get(k) and row[k].get("bytes")]
                if qtype == "multiple-choice":
                    letters = [chr(65 + i) for i in range(len(opts))]
                    example = "".join(f"({x}) {o}\n" for x, o in zip(letters, opts, strict=True))
                    text = f"\n{question}\n\n{example}\n        {MCQ_INSTRUCTION}"
                    yield Item(str(id_), "mmmu_mcq", user_turn(len(images), text), images=images,
                               reference=str(answer), choices=[str(o) for o in opts], extra={"subject": subject})
                else:
                    text = f"\n{question}\n\n        {CLOSE_ENDED.strip()}"
                    yield Item(str(id_), "mmmu_open", user_turn(len(images), text), images=images,
                               reference=str(answer), extra={"subject": subject})


# ---- OmniMedVQA ----------------------------------------------------------------------------------------

def omnimedvqa(folder: Path) -> Iterator[Item]:
    """OmniMedVQA open-access part; the option whose text equals gt_answer is the right letter."""
    for path in _files(folder / "QA_information" / "Open-access", "*.json"):
        for row in _rows(path):
            qid, question, gt, image_path = _need(row, path, "question_id", "question", "gt_answer", "image_path")
            choices = [row[f"option_{x}"] for x in "ABCD" if row.get(f"option_{x}") is not None]
            if gt not in choices:
                raise BenchmarkFileError(f"{path}: question {qid}: gt_answer {gt!r} is not one of the options")
            yield _mcq(qid, question, choices, chr(65 + choices.index(gt)), [_image(folder / image_path)],
                       question_type=row.get("question_type"), modality=row.get("modality_type"))


# ---- MedXpertQA ----------------------------------------------------------------------------------------

def _medxpertqa(folder: Path, subset: str) -> Iterator[Item]:
    path = _checked(folder / subset / "test.jsonl")
    for row in _rows(path):
        id_, question, options, label = _need(row, path, "id", "question", "options", "label")
        images = [_image(folder / "images" / name) for name in row.get("images") or []]
        item = _mcq(id_, question, list(options.values()), str(label), images,
                    question_type=row.get("question_type"), medical_task=row.get("medical_task"))
        if images:  # MedEvalKit's multi-image layout: "<image_1>: " image "<image_2>: " image ... prompt
            parts: list[dict[str, Any]] = []
            for i in range(len(images)):
                parts += [{"type": "text", "text": f"<image_{i + 1}>: "}, {"type": "image"}]
            item.messages = [{"role": "user", "content": parts + [item.messages[0]["content"][-1]]}]
        yield item


def medxpertqa_mm(folder: Path) -> Iterator[Item]:
    """MedXpertQA MM test (5 options A-E, one or more images)."""
    yield from _medxpertqa(folder, "MM")


def medxpertqa_text(folder: Path) -> Iterator[Item]:
    """MedXpertQA Text test (10 options A-J)."""
    yield from _medxpertqa(folder, "Text")


# ---- text benchmarks -----------------------------------------------------------------------------------

def mmlu_medical(folder: Path) -> Iterator[Item]:
    """MMLU test, MedEvalKit's 9 medical subjects (its loader is broken; see docs/eval.md)."""
    for subject in MMLU_MEDICAL:
        for path in _files(folder / subject, "test-*.parquet"):
            for n, row in enumerate(_rows(path)):
                question, choices, answer = _need(row, path, "question", "choices", "answer")
                yield _mcq(f"{subject}/{n}", question, [str(c) for c in choices], chr(65 + int(answer)), [],
                           sep=".", subject=subject)


def _parquet_or_jsonl(folder: Path) -> list[Path]:
    found = sorted(folder.rglob("train-*.parquet")) or sorted(folder.rglob("*.jsonl"))
    if not found:
        raise BenchmarkFileError(f"{folder}: no train-*.parquet or .jsonl file")
    return found


def medbullets_op4(folder: Path) -> Iterator[Item]:
    """Medbullets, 4 options: `options` {A..D}, `answer_idx` letter."""
    for path in _parquet_or_jsonl(folder):
        for n, row in enumerate(_rows(path)):
            question, options, answer = _need(row, path, "question", "options", "answer_idx")
            if isinstance(options, str):
                options = json.loads(options)
            yield _mcq(f"{path.stem}/{n}", question, [str(v) for v in options.values()], str(answer), [], sep=".")


def medbullets_op5(folder: Path) -> Iterator[Item]:
    """Medbullets, 5 options: opa..ope, `answer_idx` letter."""
    for path in _parquet_or_jsonl(folder):
        for n, row in enumerate(_rows(path)):
            question, *opts, answer = _need(row, path, "question", "opa", "opb", "opc", "opd", "ope", "answer_idx")
            yield _mcq(f"{path.stem}/{n}", question, [str(o) for o in opts], str(answer), [], sep=".")


def supergpqa_medical(folder: Path) -> Iterator[Item]:
    """SuperGPQA, discipline Medicine (up to 10 options, `answer_letter`)."""
    path = _checked(folder / "SuperGPQA-all.jsonl")
    for row in _rows(path):
        if row.get("discipline") != "Medicine":
            continue
        uuid, question, options, answer = _need(row, path, "uuid", "question", "options", "answer_letter")
        yield _mcq(uuid, question, [str(o) for o in options], str(answer), [], sep=".", field=row.get("field"))
