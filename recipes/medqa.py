"""MedQA (USMLE): 12,723 English board-exam questions, train 10,178 / dev 1,272 / test 1,273 (Jin et al. 2021).

Get it from https://github.com/jind11/MedQA (one archive): `data_clean/questions/US/{train,dev,test}.jsonl`
(5 options A-E) and `US/4_options/phrases_no_exclude_{train,dev,test}.jsonl` (4 options A-D). Each line:
`question`, `answer` (option text), `options` (dict letter -> text), `answer_idx` (letter), `meta_info`.
Also read: the HF re-packaging `GBaker/MedQA-USMLE-4-options`, whose main branch holds only
`phrases_no_exclude_train.jsonl` and `phrases_no_exclude_test.jsonl` (the official 4-option rows) at the
repository root, no dev file: a folder holding those files directly (or a `4_options/` folder alone) is read
as the 4-option release, train -> train, test -> test (and dev -> val when present). Parquet exports of it
(`data/{train,test}-*.parquet`, as the hub's parquet converter writes) are read too.
Option `options=4` (default, the form MedMO is evaluated on) or `options=5`.
`US_qbank.jsonl` holds every split, test included, and is never read (MedMO's own loader did: do not
replicate). dev -> val, test -> test. A stray unmatched trailing `"` on a question is removed. Lines whose
`answer` differs from `options[answer_idx]` are rejected (`answer_mismatch`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from medmo_data.families.text_qa import mcq_messages, mcq_target
from medmo_data.formats.tables import clean, hf_splits, iter_jsonl, iter_parquet
from medmo_data.recipe import RawSample, Reject, SourceError, SourceInfo

INFO = SourceInfo(
    name="medqa", title="MedQA (USMLE, English)", stages=(3,), tasks=("mcq",), modality="none", access="open",
    license="MIT (code and data per the MedQA repository)", homepage="https://github.com/jind11/MedQA",
    citation="Jin et al., What disease does this patient have? A large-scale open domain question answering "
             "dataset from medical exams, Applied Sciences 2021",
    images_per_sample=0,
)
HUB_PATTERNS = ["phrases_no_exclude_*.jsonl", "*.md"]
FOUR = "phrases_no_exclude_{}.jsonl"
SPLITS = {"train": "train", "dev": "val", "test": "test"}


def _us_dir(root: Path) -> Path:
    for cand in (root / "data_clean" / "questions" / "US", root / "questions" / "US", root / "US", root):
        if (cand / "train.jsonl").exists() or (cand / "4_options").is_dir():
            return cand
    raise SourceError(f"{root}: no data_clean/questions/US/ with train.jsonl or 4_options/ (MedQA layout), and "
                      f"no {FOUR.format('train')} at the top (GBaker/MedQA-USMLE-4-options layout)")


def _four_option_files(root: Path, n: str) -> list[tuple[str, str, Path]] | None:
    """(raw split, split, file) for a folder holding the 4-option files directly (the GBaker hub repo,
    or the archive's `4_options/` folder given alone); None for another layout."""
    if not (root / FOUR.format("train")).exists():
        return None
    if n != "4":
        raise SourceError(f"{root}: holds only the 4-option files ({FOUR.format('*')}); options=5 needs the "
                          "MedQA archive's data_clean/questions/US/")
    return [(raw, split, root / FOUR.format(raw)) for raw, split in SPLITS.items()
            if (root / FOUR.format(raw)).exists()]


def _fix_question(q: str) -> str:
    q = q.strip()
    if q.endswith('"') and q.count('"') % 2 == 1:
        q = q[:-1].rstrip()
    return q


def sample(rid: str, split: str, row: dict[str, Any], source_file: str) -> RawSample | Reject:
    options = row.get("options")
    if isinstance(options, list):  # BigBio source schema: [{"key": "A", "value": ...}]
        options = {o.get("key"): o.get("value") for o in options if isinstance(o, dict)}
    if not isinstance(options, dict) or not options:
        return Reject(rid, "missing_field", f"{source_file}: options missing or not a dict")
    choices = {str(k).strip(): clean(v) for k, v in sorted(options.items()) if v is not None}
    letter = clean(row.get("answer_idx")).upper()
    question = _fix_question(clean(row.get("question")))
    if not question:
        return Reject(rid, "empty_text", f"{source_file}: empty question")
    if letter not in choices:
        return Reject(rid, "bad_answer", f"{source_file}: answer_idx {letter!r} not among {sorted(choices)}")
    answer = clean(row.get("answer"))
    if answer and answer != choices[letter]:
        return Reject(rid, "answer_mismatch", f"{source_file}: answer {answer!r} != options[{letter}]")
    return RawSample(
        id=rid, split=split, task="mcq", messages=mcq_messages(question, choices, letter),
        target=mcq_target(choices, letter), meta={"exam": clean(row.get("meta_info")), "file": source_file},
    )


def records(root: Path, options: dict[str, str]) -> Iterator[RawSample | Reject]:
    n = options.get("options", "4")
    if n not in ("4", "5"):
        raise SourceError(f"option options={n!r}: must be 4 or 5")
    if hub := hf_splits(root, {"train": "train", "test": "test"}):
        for split, files in hub.items():
            for i, row in enumerate(iter_parquet(files)):
                yield sample(f"hf-{split}-{i:05d}", split, row, files[0].name)
        return
    files = _four_option_files(root, n)
    if files is None:
        us = _us_dir(root)
        files = [(raw, split, us / "4_options" / FOUR.format(raw) if n == "4" else us / f"{raw}.jsonl")
                 for raw, split in SPLITS.items()]
        for _, _, path in files:
            if not path.exists():
                raise SourceError(f"{path}: missing ({n}-option file)")
    for raw_split, split, path in files:
        for item in iter_jsonl(path):
            if isinstance(item, Reject):
                yield item
                continue
            line_id, row = item
            yield sample(f"us{n}-{raw_split}-{line_id.rsplit(':', 1)[1]}", split, row, path.name)
