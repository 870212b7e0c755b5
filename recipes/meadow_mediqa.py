"""Medical Meadow MEDIQA: 2,208 consumer health questions with the source documents and a question-driven
summary of them, from the MEDIQA 2019/2021 answer-summarisation data (medAlpaca, Han et al. 2023).

Get it from the Hugging Face hub, `medalpaca/medical_meadow_mediqa`: one JSON array
`medical_meadow_mediqa.json` (15.8 MB), or the hub's parquet conversion. Licence not stated. Rows (about
7 kB each): `instruction` is the consumer's question (it varies row to row), `input` the long source
documents, `output` the summary that answers the question; third-party loaders read the roles the same way,
but sources.md marks them UNVERIFIED against the card. Task: summarization (question, blank line, documents;
the summary as the answer). Long documents are kept whole (token budgets belong to `mix`). A row without
documents (`input` empty or a placeholder) is rejected (`empty_text`). Single `train` split; no benchmark
overlap found (sources.md §6.2). Shared reader: `medmo_data.families.meadow`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from medmo_data.families import meadow
from medmo_data.recipe import RawSample, Reject, SourceInfo

INFO = SourceInfo(
    name="meadow_mediqa", title="Medical Meadow: MEDIQA", stages=(3,), tasks=("summarization",),
    modality="none", access="open", license="unstated",
    homepage="https://huggingface.co/datasets/medalpaca/medical_meadow_mediqa",
    citation="Han et al., MedAlpaca, arXiv:2304.08247; Ben Abacha et al., MEDIQA 2019/2021",
    images_per_sample=0,
)
FILES = ("medical_meadow_mediqa.json",)
HUB_PATTERNS = meadow.hub_patterns(FILES)


def records(root: Path, options: dict[str, str]) -> Iterator[RawSample | Reject]:
    yield from meadow.records(root, FILES, task="summarization", input_required=True)
