"""Chat builders for text-only sources (stage 3): multiple choice, instruction, reasoning.

One layout per kind, so every MCQ source asks the same way and every reward/evaluator can read
`target` the same way:
- MCQ target: {"choices": {"A": "...", ...}, "answer": "C", "answer_text": "..."} (letters, in source order);
- reasoning sources keep the chain of thought apart from the final answer: `target["reasoning"]` and
  `target["answer"]`; the assistant text is `<think>\n{cot}\n</think>\n{answer}` by default
  (`think="none"` keeps only the answer, `think="plain"` puts the reasoning before it without tags).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from medmo_data.schema import turn

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
THINK_STYLES = ("tags", "plain", "none")


def letter(index: int) -> str:
    return LETTERS[index]


def format_choices(choices: Mapping[str, str]) -> str:
    return "\n".join(f"{k}. {v}" for k, v in choices.items())


def mcq_messages(question: str, choices: Mapping[str, str], answer: str, explanation: str | None = None,
                 system: str | None = None) -> list[dict[str, Any]]:
    """User: question + lettered options; assistant: `C. <text>` (+ explanation on the next line)."""
    prompt = f"{question.strip()}\n\n{format_choices(choices)}\n\nAnswer with the letter of the correct option."
    reply = f"{answer}. {choices[answer]}"
    if explanation:
        reply += f"\n\nExplanation: {explanation.strip()}"
    msgs = [turn("system", system)] if system else []
    return msgs + [turn("user", prompt), turn("assistant", reply)]


def mcq_target(choices: Mapping[str, str], answer: str) -> dict[str, Any]:
    return {"choices": dict(choices), "answer": answer, "answer_text": choices[answer]}


def instruction_messages(instruction: str, input_text: str | None, output: str,
                         system: str | None = None) -> list[dict[str, Any]]:
    """Alpaca-style: instruction, then the input (if any) after a blank line."""
    prompt = instruction.strip()
    if input_text and input_text.strip():
        prompt = f"{prompt}\n\n{input_text.strip()}"
    msgs = [turn("system", system)] if system else []
    return msgs + [turn("user", prompt), turn("assistant", output.strip())]


def reasoning_reply(reasoning: str, answer: str, think: str = "tags") -> str:
    if think not in THINK_STYLES:
        raise ValueError(f"think must be one of {THINK_STYLES}, got {think!r}")
    if think == "none" or not reasoning.strip():
        return answer.strip()
    if think == "plain":
        return f"{reasoning.strip()}\n\n{answer.strip()}"
    return f"<think>\n{reasoning.strip()}\n</think>\n{answer.strip()}"


def reasoning_messages(question: str, reasoning: str, answer: str, think: str = "tags",
                       system: str | None = None) -> list[dict[str, Any]]:
    msgs = [turn("system", system)] if system else []
    return msgs + [turn("user", question.strip()), turn("assistant", reasoning_reply(reasoning, answer, think))]
