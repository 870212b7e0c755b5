"""Medical Meadow medical flashcards: 33,955 question/answer pairs rephrased by GPT-3.5 from the Anki
Medical Curriculum flashcards (medAlpaca, Han et al. 2023).

Get it from the Hugging Face hub, `medalpaca/medical_meadow_medical_flashcards`: one JSON array in the file
`medical_meadow_wikidoc_medical_flashcards.json` (the name says wikidoc; it is the flashcards set), or the
hub's parquet conversion. Licence tag `cc` (version not stated). Rows: `instruction` is the constant "Answer
this question truthfully", `input` the question, `output` the answer. Single `train` split, no overlap with
the benchmarks found (sources.md §6.2). The constant instruction stays as the prompt's first line; a row
whose question (`input`) is empty or a placeholder is rejected (`empty_text`). Shared reader: `medmo_data.families.meadow`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from medmo_data.families import meadow
from medmo_data.recipe import RawSample, Reject, SourceInfo

INFO = SourceInfo(
    name="meadow_medical_flashcards", title="Medical Meadow: Medical Flashcards", stages=(3,), tasks=("text_qa",),
    modality="none", access="open", license="cc (HF tag, version unstated)",
    homepage="https://huggingface.co/datasets/medalpaca/medical_meadow_medical_flashcards",
    citation="Han et al., MedAlpaca - An Open-Source Collection of Medical Conversational AI Models and "
             "Training Data, arXiv:2304.08247",
    images_per_sample=0,
)
FILES = ("medical_meadow_wikidoc_medical_flashcards.json", "medical_meadow_medical_flashcards.json")
HUB_PATTERNS = meadow.hub_patterns(FILES)


def records(root: Path, options: dict[str, str]) -> Iterator[RawSample | Reject]:
    yield from meadow.records(root, FILES, task="text_qa", input_required=True)
