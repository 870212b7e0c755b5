"""PMC-InstructQA = the PMC-LLaMA instruction set "MedC-I" without ChatDoctor: 513,999 instruction rows
mixing medical QA, rationales and knowledge-graph prompts (Wu et al., PMC-LLaMA, JAMIA 2024).

Identity: MedMO's `pmc_instruct_qa` loader reads `PMC-LLAMA-Instructions/release.json`, i.e. the Hugging
Face dataset `axiong/pmc_llama_instructions` (sources.md §5.4, §1.3). Licence tag openrail. File read:
`release.json` (a JSON array streamed item by item, or JSON Lines - told apart by the first byte), else the
hub's parquet conversion. Columns: `instruction, input, output, source, sample_id`; `source` is one of
`medqa_train, medmcqa, pubmedqa.ori_pqaa, liveqa, medicationqa, umls, umls_relation`; `sample_id` is null
outside `medqa_train`. Inputs look like "###Question: ...\\n###Options:\\nA. ..." and outputs like
"###Answer: OPTION D IS CORRECT." or "###Rationale: ..."; the text is kept as released (instruction, blank
line, input; output as the answer). When an output names a choice ("OPTION D IS CORRECT") the letter goes to
`target.choice` so a reward can check it; `target.answer` is the whole output. Rows: single `train` split,
ids by position (`0000042`). MedMO also read a `test_data.json` as validation/test; the hub repository
serves only `release.json` and no public copy of that file was found, so it is not read.

Rejects: missing/non-string `instruction` or `output` (`missing_field` / `malformed_record`), empty output
or an instruction+input with no text (`empty_text`), malformed or non-UTF-8 items. An empty or placeholder
`input` (`<noinput>`, `N/A`, ...) is dropped from the prompt.

CONTAMINATION (sources.md §6.2): the MCQ parts come from MedQA train, MedMCQA (~train size) and PubMedQA
PQA-A, so overlap with the benchmarks is low by construction, but `mix` should still text-match this source
against MedQA test, MedMCQA validation and PubMedQA PQA-L.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from medmo_data.families.meadow import is_placeholder
from medmo_data.families.text_qa import instruction_messages
from medmo_data.formats.json_stream import iter_json_records
from medmo_data.formats.tables import clean, iter_parquet
from medmo_data.recipe import RawSample, Reject, SourceError, SourceInfo

INFO = SourceInfo(
    name="pmc_instructqa", title="PMC-InstructQA (PMC-LLaMA instructions, MedC-I)", stages=(3,),
    tasks=("instruction",), modality="none", access="open", license="openrail (HF tag)",
    homepage="https://huggingface.co/datasets/axiong/pmc_llama_instructions",
    citation="Wu et al., PMC-LLaMA: Toward Building Open-source Language Models for Medicine, JAMIA 2024",
    images_per_sample=0,
    notes="Built from MedQA train / MedMCQA / PubMedQA PQA-A: mix should text-match it against MedQA test, "
          "MedMCQA validation and PubMedQA PQA-L.",
)
HUB_PATTERNS = ["release.json", "README.md"]
RELEASE = "release.json"
_CHOICE = re.compile(r"OPTION\s+([A-J])\s+IS\s+CORRECT", re.IGNORECASE)


def sample(rid: str, row: Any) -> RawSample | Reject:
    if not isinstance(row, dict):
        return Reject(rid, "malformed_record", f"expected an object, got {type(row).__name__}")
    missing = [k for k in ("instruction", "output") if row.get(k) is None]
    if missing:
        return Reject(rid, "missing_field", f"no {missing}")
    if not all(isinstance(row.get(k, ""), (str, type(None))) for k in ("instruction", "input", "output")):
        return Reject(rid, "malformed_record", "instruction/input/output are not strings")
    instruction, output = row["instruction"].strip(), row["output"].strip()
    inp = row.get("input") or ""
    inp = "" if is_placeholder(inp) else inp
    if is_placeholder(output):
        return Reject(rid, "empty_text", f"output is empty or a placeholder ({row['output']!r})")
    if not instruction and not inp:
        return Reject(rid, "empty_text", "instruction and input are both empty")
    m = _CHOICE.search(output)
    source = clean(row.get("source"))
    return RawSample(id=rid, split="train", task="instruction",
                     messages=instruction_messages(instruction, inp, output),
                     target={"answer": output, "choice": m.group(1).upper() if m else "", "source": source},
                     meta={"source": source, "sample_id": clean(row.get("sample_id"))})


def records(root: Path, options: dict[str, str]) -> Iterator[RawSample | Reject]:
    found = [root / RELEASE] if (root / RELEASE).is_file() else sorted(root.rglob(RELEASE))
    if found:
        for index, item in enumerate(iter_json_records(found[0])):
            rid = f"{index:07d}"
            yield Reject(rid, item.reason, item.detail) if isinstance(item, Reject) else sample(rid, item[1])
        return
    parquet = sorted(root.rglob("*.parquet"))
    if not parquet:
        raise SourceError(f"{root}: no {RELEASE} and no *.parquet found")
    for index, row in enumerate(iter_parquet(parquet)):
        yield sample(f"{index:07d}", row)
