"""Medical Meadow WikiDoc: 10,000 question/answer pairs from the WikiDoc medical textbook (of 67,704
paragraphs), each section heading rephrased by GPT-3.5 into a question (medAlpaca, Han et al. 2023).

Get it from the Hugging Face hub, `medalpaca/medical_meadow_wikidoc`: one JSON array
`medical_meadow_wikidoc.json`, or the hub's parquet conversion. Licence tag `cc` (version not stated).
Rows: `instruction` the constant "Answer this question truthfully", `input` the rephrased heading, `output`
the paragraph. The card warns that about 30 % of the rephrasings are unsatisfactory; they are kept (quality
filtering is the mixer's call). Single `train` split; no benchmark overlap found (sources.md §6.2). A row
whose `input` is empty or a placeholder is rejected (`empty_text`). Shared reader: `medmo_data.families.meadow`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from medmo_data.families import meadow
from medmo_data.recipe import RawSample, Reject, SourceInfo

INFO = SourceInfo(
    name="meadow_wikidoc", title="Medical Meadow: WikiDoc", stages=(3,), tasks=("text_qa",),
    modality="none", access="open", license="cc (HF tag, version unstated)",
    homepage="https://huggingface.co/datasets/medalpaca/medical_meadow_wikidoc",
    citation="Han et al., MedAlpaca - An Open-Source Collection of Medical Conversational AI Models and "
             "Training Data, arXiv:2304.08247",
    images_per_sample=0,
)
FILES = ("medical_meadow_wikidoc.json",)
HUB_PATTERNS = meadow.hub_patterns(FILES)


def records(root: Path, options: dict[str, str]) -> Iterator[RawSample | Reject]:
    yield from meadow.records(root, FILES, task="text_qa", input_required=True)
