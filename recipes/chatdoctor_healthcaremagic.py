"""ChatDoctor HealthCareMagic-100k: 112,165 patient questions and doctor answers scraped from the
HealthCareMagic online consultation site, released with ChatDoctor (Li et al., Cureus 2023).

Get it: the `HealthCareMagic-100k.json` Google-Drive file linked from the `Kent0n-Li/ChatDoctor` README,
or the hub copy `lavita/ChatDoctor-HealthCareMagic-100k` (`data/train-*.parquet`); the
`chatdoctor_healthcaremagic` config folder of `lavita/medical-qa-datasets` (what MedMO read) works too.
Licence: none stated for the data (the model is research-only, LLaMA terms): research use only.

Files read: the JSON array `HealthCareMagic-100k.json` of `{instruction, input, output}`, else the hub
parquet with the same columns. `instruction` is the fixed "If you are a doctor, please answer the medical
questions based on the patient's description."; `input` is the patient's message, `output` the
doctor's reply. One `train` split (no official split; no overlap with any benchmark, sources.md 6.2).
Traps: doctors' names were replaced by "Chat Doctor"; boilerplate greetings ("Hi doctor,", "Welcome to
Chat Doctor forum") are the source's text and stay; exact duplicate pairs are rejected as
`duplicate_text`; a row without patient text is `empty_text`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from medmo_data.families.chatdoctor import CHATDOCTOR_INSTRUCTION, Columns, instruction_samples
from medmo_data.families.text_release import check_options, release_rows
from medmo_data.recipe import RawSample, Reject, SourceInfo

INFO = SourceInfo(
    name="chatdoctor_healthcaremagic", title="ChatDoctor HealthCareMagic-100k", stages=(3,),
    tasks=("text_qa",), modality="none", access="open", license="research-only (not stated)",
    homepage="https://github.com/Kent0n-Li/ChatDoctor",
    citation="Li et al., ChatDoctor: A Medical Chat Model Fine-Tuned on a Large Language Model Meta-AI "
             "(LLaMA) Using Medical Domain Knowledge, Cureus 2023",
    images_per_sample=0,
)
HUB_PATTERNS = ["data/*.parquet", "*.json", "*.md"]
JSON_NAMES = ["HealthCareMagic-100k.json"]
COLUMNS = Columns(output=("output",), default_instruction=CHATDOCTOR_INSTRUCTION, input_required=True)


def records(root: Path, options: dict[str, str]) -> Iterator[RawSample | Reject]:
    check_options(options, {}, INFO.name)
    name, rows = release_rows(root, JSON_NAMES, ["input", "output"], INFO.name)
    yield from instruction_samples(rows, COLUMNS, "text_qa", name)
