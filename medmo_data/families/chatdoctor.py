"""Instruction / input / output rows (ChatDoctor HealthCareMagic and iCliniq, AlpaCare MedInstruct) as
chat samples, one rule set for all three:

- the instruction (ChatDoctor's fixed "If you are a doctor, ..." when a release has none) is the first
  paragraph of the user turn, the input (patient text or task context) follows after a blank line;
- an input that is empty or a placeholder (`<noinput>`, AlpaCare) is left out, never shown to the model;
- the reply is the human answer column (`output`; iCliniq: `answer_icliniq`, never the model-written
  `answer_chatgpt` / `answer_chatdoctor`);
- text is kept verbatim apart from stripping outer whitespace (no boilerplate rewriting, no cutting:
  long texts are the stage token budget's business);
- a row whose (instruction, input, output) repeats an earlier one exactly (after whitespace folding and
  lower-casing) is a `duplicate_text` Reject, so a pair is never trained on twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from medmo_data.recipe import RawSample, Reject

from .text_qa import instruction_messages
from .text_release import Rows, first_field

CHATDOCTOR_INSTRUCTION = ("If you are a doctor, please answer the medical questions based on the "
                          "patient's description.")
NO_INPUT = frozenset({"<noinput>"})  # AlpaCare's literal placeholder (med_seed.json, MedInstruct-52k)


@dataclass(frozen=True)
class Columns:
    """Spellings of the three columns in one release; an empty `instruction` means "use the default"."""

    output: Sequence[str]
    input: Sequence[str] = ("input",)
    instruction: Sequence[str] = ("instruction",)
    default_instruction: str = ""
    input_required: bool = False  # ChatDoctor: no patient text, no question


def _fold(s: str) -> str:
    return " ".join(s.split()).lower()


def instruction_samples(rows: Rows, cols: Columns, task: str, file: str) -> Iterator[RawSample | Reject]:
    seen: set[bytes] = set()
    for item in rows:
        if isinstance(item, Reject):
            yield item
            continue
        rid, row = item
        has_out, out = first_field(row, cols.output)
        has_in, inp = first_field(row, cols.input)
        _, instruction = first_field(row, cols.instruction)
        if not has_out or (cols.input_required and not has_in):
            want = [*cols.output, *(cols.input if cols.input_required else ())]
            yield Reject(rid, "missing_field", f"needs {want}; has {sorted(row)[:8]}")
            continue
        placeholder = inp.lower() in NO_INPUT
        if placeholder:
            inp = ""
        instruction = instruction or cols.default_instruction
        empty = [n for n, v in (("instruction", instruction), ("output", out)) if not v]
        if cols.input_required and not inp:
            empty.append("input")
        if empty:
            yield Reject(rid, "empty_text", f"empty {', '.join(empty)}")
            continue
        digest = hashlib.blake2b("\0".join(map(_fold, (instruction, inp, out))).encode("utf-8"),
                                 digest_size=16).digest()
        if digest in seen:
            yield Reject(rid, "duplicate_text", "same instruction, input and output as an earlier row")
            continue
        seen.add(digest)
        yield RawSample(id=rid, split="train", task=task,
                        messages=instruction_messages(instruction, inp, out),
                        target={"answer": out},
                        meta={"file": file, "has_input": bool(inp), "input_placeholder": placeholder})
