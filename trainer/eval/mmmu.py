"""MMMU's official answer parsing (MMMU-Benchmark/MMMU `eval/utils/eval_utils.py`, also in MedEvalKit
`utils/MMMU/eval_utils.py`), reimplemented. The official code picks a random letter when a response names
none; here the draw is seeded by the item id so that a rerun gives the same score."""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

from medmo_train.metrics import boxed_content, tagged


def parse_multi_choice(response: str, letters: Sequence[str], options: Sequence[str], seed: str = "") -> str:
    """The letter a response picks: "(B)", then " B ", then (long answers) an option's text; the last
    occurrence wins among several; none -> a seeded random letter."""
    if "<answer>" in response:
        response = tagged(response)
    elif "\\boxed" in response:
        response = boxed_content(response) or "None"
    response = response.strip()
    for ch in [",", ".", "!", "?", ";", ":", "'"]:
        response = response.strip(ch)
    response = f" {response} "
    index2ans = dict(zip(letters, options, strict=False))
    candidates = [x for x in letters if f"({x})" in response]
    bracket, by_index = bool(candidates), True
    if not candidates:
        candidates = [x for x in letters if f" {x} " in response]
    if not candidates and len(response.split()) > 5:
        candidates = [x for x, ans in index2ans.items() if ans.lower() in response.lower()]
        by_index = False
    if not candidates:
        return random.Random(seed).choice(list(letters))
    if len(candidates) == 1:
        return candidates[0]
    if by_index:
        pos = [response.rfind(f"({x})" if bracket else f" {x} ") for x in candidates]
    else:
        pos = [response.lower().rfind(index2ans[x].lower()) for x in candidates]
    return candidates[max(range(len(pos)), key=lambda i: (pos[i], -i))]


def _is_number(s: str) -> bool:
    try:
        float(s.replace(",", ""))
        return True
    except ValueError:
        return False


def normalize(s: str) -> list[str | float]:
    s = s.strip()
    if _is_number(s):
        return [round(float(s.replace(",", "")), 2)]
    s = s.lower()
    return [" " + s, s + " "] if len(s) == 1 else [s]


def extract_numbers(s: str) -> list[str]:
    commas = re.findall(r"-?\b\d{1,3}(?:,\d{3})+\b", s)
    sci = re.findall(r"-?\d+(?:\.\d+)?[eE][+-]?\d+", s)
    simple = re.findall(r"-?(?:\d+\.\d+|\.\d+|\d+\b)(?![eE][+-]?\d+)(?![,\d])", s)
    return commas + sci + simple


def parse_open(response: str) -> list[str | float]:
    """Candidate answers of an open response: the tails after "is", "so", "answer", ..., plus numbers."""
    response = response.strip().strip(".").lower()
    subs = re.split(r"\.\s(?=[A-Z])|\n", response)
    keys = ["could be ", "so ", "is ", "thus ", "therefore ", "final ", "answer ", "result "]
    found = []
    for i, sub in enumerate(subs):
        indicators = keys + (["="] if i == len(subs) - 1 else [])
        tails = [sub.split(ind)[-1].strip() for ind in indicators if ind in sub]
        if tails:
            shortest = min(tails, key=len)
            if shortest not in [":", ",", ".", "!", "?", ";", "'"]:
                found.append(shortest)
    found = found or [response]
    preds: list[str] = list(found)
    for r in found:
        preds.extend(extract_numbers(r))
    out: list[str | float] = []
    for p in preds:
        out.extend(normalize(p))
    return list(dict.fromkeys(out))


def open_correct(response: str, answer: str | Sequence[str]) -> bool:
    """MMMU `eval_open`: a normalised gold string inside a candidate, or an equal number."""
    golds: list[str | float] = []
    for a in [answer] if isinstance(answer, str) else answer:
        golds.extend(normalize(a))
    for pred in parse_open(response):
        if isinstance(pred, str):
            if any(isinstance(g, str) and g in pred for g in golds):
                return True
        elif pred in golds:
            return True
    return False
