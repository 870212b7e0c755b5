"""Medical Meadow CORD-19: 821,007 abstract -> title pairs from the COVID-19 Open Research Dataset
(medAlpaca, Han et al. 2023).

Get it from the Hugging Face hub, `medalpaca/medical_meadow_cord19`: ONE JSON array
`medical_meadow_cord19.json` of 1.38 GB, or the hub's parquet conversion (`default/train/*.parquet`).
The array is streamed item by item (`medmo_data.formats.json_stream`), never loaded whole; memory stays flat.
Licence: the CORD-19 papers carry their own (mixed) licences; the set states none. Rows: `instruction` the
constant "Please summerize the given abstract to a title" (the typo is in the data and is kept: it is the
source's prompt), `input` the abstract, `output` the title. Task: summarization. A row without an abstract
(`input` empty or a placeholder) or without a title is rejected (`empty_text`). Single `train` split; no
benchmark overlap found (sources.md §6.2). Shared reader: `medmo_data.families.meadow`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from medmo_data.families import meadow
from medmo_data.recipe import RawSample, Reject, SourceInfo

INFO = SourceInfo(
    name="meadow_cord19", title="Medical Meadow: CORD-19 abstract to title", stages=(3,),
    tasks=("summarization",), modality="none", access="open", license="mixed per-paper (CORD-19)",
    homepage="https://huggingface.co/datasets/medalpaca/medical_meadow_cord19",
    citation="Han et al., MedAlpaca, arXiv:2304.08247; Wang et al., CORD-19, arXiv:2004.10706",
    images_per_sample=0,
)
FILES = ("medical_meadow_cord19.json",)
HUB_PATTERNS = meadow.hub_patterns(FILES)


def records(root: Path, options: dict[str, str]) -> Iterator[RawSample | Reject]:
    yield from meadow.records(root, FILES, task="summarization", input_required=True)
