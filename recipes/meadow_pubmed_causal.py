"""Medical Meadow PubMed Causal: 2,446 PubMed conclusion sentences labelled by the kind of relation they
claim (Yu, Li & Wang, "Detecting Causal Language Use in Science Findings", EMNLP 2019), as instructions.

Get it from the Hugging Face hub, `medalpaca/medical_meadow_pubmed_causal`: one JSON array
`medical_meadow_pubmed_causal.json`, or the hub's parquet conversion. Licence not stated. Rows:
`instruction` the constant question "Question: Is this describing a (1) directly correlative relationship,
(2) conditionally causative relationship, (3) causative relationship, or (0) no relationship.", `input` the
sentence, `output` one of four fixed phrasings, one with a typo in the data ("This no relationship.").
The reply keeps the source's phrasing; `target` adds the canonical label and the instruction's code
(0 none, 1 correlational, 2 conditional causal, 3 direct causal) so an evaluator need not parse prose.
An output that is none of the four is rejected (`unknown_label`); an empty sentence is `empty_text`.
Single `train` split; no benchmark overlap found (sources.md §6.2). Shared reader: `medmo_data.families.meadow`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from medmo_data.families import meadow
from medmo_data.families.text_qa import instruction_messages
from medmo_data.recipe import RawSample, Reject, SourceInfo

INFO = SourceInfo(
    name="meadow_pubmed_causal", title="Medical Meadow: PubMed Causal", stages=(3,), tasks=("instruction",),
    modality="none", access="open", license="unstated",
    homepage="https://huggingface.co/datasets/medalpaca/medical_meadow_pubmed_causal",
    citation="Yu, Li & Wang, Detecting Causal Language Use in Science Findings, EMNLP-IJCNLP 2019; "
             "Han et al., MedAlpaca, arXiv:2304.08247",
    images_per_sample=0,
)
FILES = ("medical_meadow_pubmed_causal.json",)
HUB_PATTERNS = meadow.hub_patterns(FILES)

# The four phrasings of `output` (lower-cased, spaces collapsed, final period dropped) -> (label, code).
LABELS = {
    "this is a directly correlative relationship": ("correlational", 1),
    "this is a conditionally causative relationship": ("conditional_causal", 2),
    "this is a causative relationship": ("direct_causal", 3),
    "this no relationship": ("no_relationship", 0),
    "this is no relationship": ("no_relationship", 0),
}


def _build(rid: str, row: dict[str, str], meta: dict[str, Any]) -> RawSample | Reject:
    key = re.sub(r"\s+", " ", row["output"]).strip().rstrip(".").lower()
    if key not in LABELS:
        return Reject(rid, "unknown_label", f"output {row['output']!r} is none of the four phrasings")
    label, code = LABELS[key]
    return RawSample(id=rid, split="train", task="instruction",
                     messages=instruction_messages(row["instruction"], row["input"], row["output"]),
                     target={"answer": row["output"].strip(), "label": label, "code": code}, meta=meta)


def records(root: Path, options: dict[str, str]) -> Iterator[RawSample | Reject]:
    yield from meadow.records(root, FILES, task="instruction", input_required=True, build=_build)
