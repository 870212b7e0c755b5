"""ChatDoctor iCliniq: 7,321 patient questions from the iCliniq consultation site with the real
doctor's answer, released with ChatDoctor (Li et al., Cureus 2023) as its evaluation set.

Get it: `iCliniq.json` linked from the `Kent0n-Li/ChatDoctor` README (Google Drive), or the hub copy
`lavita/ChatDoctor-iCliniq` (parquet); the `chatdoctor-icliniq` config folder of
`lavita/medical-qa-datasets` (what MedMO read) works too. Licence: none stated (research use only).

Files read: the JSON array `iCliniq.json` of `{input, answer_icliniq, answer_chatgpt, answer_chatdoctor}`,
else the hub parquet (any `train-*` or `test-*` file) with the same columns. Only `answer_icliniq` is
a human doctor's answer and becomes the reply; `answer_chatgpt` and `answer_chatdoctor` are model
outputs and are never read. The user turn is ChatDoctor's fixed instruction, then the patient text.
All rows go to `train`, as MedMO trained on them: iCliniq was ChatDoctor's own test set but overlaps
none of the benchmarks MedMO reports (sources.md 6.2). Rows without patient text or answer are
`empty_text`; exact duplicates are `duplicate_text`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from medmo_data.families.chatdoctor import CHATDOCTOR_INSTRUCTION, Columns, instruction_samples
from medmo_data.families.text_release import check_options, release_rows
from medmo_data.recipe import RawSample, Reject, SourceInfo

INFO = SourceInfo(
    name="chatdoctor_icliniq", title="ChatDoctor iCliniq", stages=(3,), tasks=("text_qa",),
    modality="none", access="open", license="research-only (not stated)",
    homepage="https://github.com/Kent0n-Li/ChatDoctor",
    citation="Li et al., ChatDoctor: A Medical Chat Model Fine-Tuned on a Large Language Model Meta-AI "
             "(LLaMA) Using Medical Domain Knowledge, Cureus 2023",
    images_per_sample=0,
)
HUB_PATTERNS = ["data/*.parquet", "*.json", "*.md"]
JSON_NAMES = ["iCliniq.json", "icliniq.json"]
COLUMNS = Columns(output=("answer_icliniq",), instruction=(), default_instruction=CHATDOCTOR_INSTRUCTION,
                  input_required=True)


def records(root: Path, options: dict[str, str]) -> Iterator[RawSample | Reject]:
    check_options(options, {}, INFO.name)
    name, rows = release_rows(root, JSON_NAMES, ["input", "answer_icliniq"], INFO.name,
                               hub_splits=("train", "test"))
    yield from instruction_samples(rows, COLUMNS, "text_qa", name)
