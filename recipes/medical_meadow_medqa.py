"""Medical Meadow MedQA: the 10,178 MedQA (USMLE, US) 5-option TRAINING questions as Alpaca rows
(medAlpaca, Han et al. 2023; MedQA: Jin et al. 2021).

Get it from the Hugging Face hub, `medalpaca/medical_meadow_medqa`: one JSON array
`medical_meadow_medqa.json` (10.7 MB), or the hub's parquet conversion. Licence: MedQA's is unstated
(BigBio "UNKNOWN"; the GBaker re-packaging says CC-BY-4.0). Rows: `instruction` the constant "Please answer
with one of the option in the bracket"; `input` = `"Q:" + question + "? \\n" + <Python dict repr of the
options A-E> + ","` (so a question that already ends in "?" gets "??"; an option holding an apostrophe is
repr'd with double quotes); `output` = `"E: Lipohyalinosis"` (letter, colon, option text).
The appended "? " doubles the mark between question and options in two real forms: `...disease?? \n{'A':`
(the question ended in "?") and `...condition? ? \n{'A':` (it ended in "? "); both are undone to one "?"
(the separator is a newline; a literal backslash-n, as some copies show, is accepted too).
The options are read with `ast.literal_eval` (never `eval`), and the sample uses
the shared MCQ layout (`medmo_data.families.text_qa`): options lettered in source order, `target` = choices + answer
letter + answer text. Rejects: input without an options dict or with an unparsable one (`malformed_options`),
an answer letter that is not an option or whose text disagrees with it (`answer_mismatch`), empty fields.

CONTAMINATION: these are MedQA questions. They come from MedQA *train* (the benchmark is the 1,273-question
US test), but the rows carry no ids, so `mix` must decontaminate this source against MedQA test by
normalised question text (sources.md §6.3) before training; `INFO.notes` says so for the mixer.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from medmo_data.families import meadow
from medmo_data.families.text_qa import mcq_messages, mcq_target
from medmo_data.recipe import RawSample, Reject, SourceInfo

INFO = SourceInfo(
    name="medical_meadow_medqa", title="Medical Meadow: MedQA (USMLE, 5 options)", stages=(3,), tasks=("mcq",),
    modality="none", access="open", license="unknown (MedQA; BigBio UNKNOWN)",
    homepage="https://huggingface.co/datasets/medalpaca/medical_meadow_medqa",
    citation="Jin et al., What Disease does this Patient Have? (MedQA), Applied Sciences 2021; "
             "Han et al., MedAlpaca, arXiv:2304.08247",
    images_per_sample=0,
    notes="MedQA-derived (US train, 5-option): mix must decontaminate against MedQA test "
          "(normalised question text) before training.",
)
FILES = ("medical_meadow_medqa.json",)
HUB_PATTERNS = meadow.hub_patterns(FILES)
_OPTIONS_START = re.compile(r"\{\s*['\"]A['\"]\s*:")
_SEPARATOR = re.compile(r"(?:\s|\\n)+$")  # blanks, newlines and literal backslash-n before the options
_DOUBLED = re.compile(r"\?\s*\?$")  # "??" or "? ?": the source's "?" plus medalpaca's


def parse_input(text: str) -> tuple[str, dict[str, str]]:
    """`Q:<question>? \\n{'A': ..., 'E': ...},` -> (question, {letter: option}); ValueError when unparsable."""
    starts = list(_OPTIONS_START.finditer(text))
    if not starts:
        raise ValueError("no options dict ({'A': ...}) in input")
    head, tail = text[:starts[-1].start()], text[starts[-1].start():]
    tail = tail.strip().rstrip(",").strip()
    try:
        options = ast.literal_eval(tail)
    except (ValueError, SyntaxError) as exc:
        raise ValueError(f"options are not a Python literal: {exc}") from exc
    if not isinstance(options, dict) or not options:
        raise ValueError("options are not a non-empty dict")
    choices = {str(k).strip(): str(v).strip() for k, v in options.items()}
    if any(len(k) != 1 or not k.isalpha() for k in choices) or not all(choices.values()):
        raise ValueError(f"option keys must be single letters with text, got {list(choices)}")
    question = _SEPARATOR.sub("", head).strip()
    question = question[2:].strip() if question.startswith("Q:") else question
    return _DOUBLED.sub("?", question), choices


def _build(rid: str, row: dict[str, str], meta: dict[str, Any]) -> RawSample | Reject:
    try:
        question, choices = parse_input(row["input"])
    except ValueError as exc:
        return Reject(rid, "malformed_options", str(exc))
    if not question:
        return Reject(rid, "empty_text", "question is empty")
    letter, _, text = row["output"].strip().partition(":")
    letter, text = letter.strip(), text.strip()
    if letter not in choices:
        return Reject(rid, "answer_mismatch", f"answer {row['output']!r} names no option of {list(choices)}")
    if text and text != choices[letter]:
        return Reject(rid, "answer_mismatch", f"answer text {text!r} differs from option {letter} "
                                              f"{choices[letter]!r}")
    return RawSample(id=rid, split="train", task="mcq", messages=mcq_messages(question, choices, letter),
                     target=mcq_target(choices, letter), meta=meta)


def records(root: Path, options: dict[str, str]) -> Iterator[RawSample | Reject]:
    yield from meadow.records(root, FILES, task="mcq", input_required=True, build=_build)
