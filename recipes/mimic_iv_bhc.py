"""MIMIC-IV-Ext-BHC (Aali et al., PhysioNet 2024, project `labelled-notes-hospital-course`): 270,033
pairs of a pre-processed MIMIC-IV discharge note and the "Brief Hospital Course" its physician wrote.

Get it: https://physionet.org/content/labelled-notes-hospital-course/ (credentialed access: CITI training
plus the PhysioNet Credentialed Health Data Use Agreement; never redistribute rows). File read:
`mimic-iv-bhc.csv` (~2.6 GB) with columns `note_id, input, target, input_tokens, target_tokens`.
`input` is the whole note on one line with its sections marked by upper-case tags (`<SEX> F <SERVICE>
MEDICINE <ALLERGIES> ... <CHIEF COMPLAINT> ... <DISCHARGE INSTRUCTIONS> ...`); `target` is the BHC.
De-identification placeholders (`___`) are the dataset's own and stay.

Task: summarization. user = a fixed instruction, a blank line, the note; assistant = the BHC;
`target.answer` = the BHC.

Long inputs (the stated rule; average input 2,267 tokens, the longest far more): an input of at most
`-o max_input_chars=N` characters (default 20000, about 5k tokens) is kept whole. A longer one is, with
`-o long=cut` (default), cut before the first section tag at which it would exceed N, so only whole
sections are kept (`meta.cut_sections` counts the ones dropped; the discharge sections at the end go
first); if even its first section is longer than N it is rejected as `too_long`. With `-o long=reject`
every input over N is rejected as `too_long`.

Splits: none official (MedMO used a 300-row tail). Here a stable patient-disjoint split: the subject id
(the `note_id` part before the first `-`) hashed with SHA-1, bucket mod 100: 0 -> test, 1 -> val, else
train, so every note of one patient lands in one split. Traps handled: multi-line quoted fields and
fields past Python's 128 KiB csv limit (a real CSV parser with the limit raised); a non-UTF-8 byte
rejects only its row (`non_utf8_text`); short/long rows and non-integer token counts are
`malformed_csv`; an empty input or target is `empty_text`. Tests use synthetic rows only.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

from medmo_data.families.text_release import check_options, int_option
from medmo_data.formats.tables import iter_csv
from medmo_data.recipe import RawSample, Reject, SourceInfo, require
from medmo_data.schema import turn

INFO = SourceInfo(
    name="mimic_iv_bhc", title="MIMIC-IV-Ext-BHC (brief hospital course)", stages=(3,),
    tasks=("summarization",), modality="none", access="credentialed",
    license="PhysioNet Credentialed Health Data License 1.5.0",
    homepage="https://physionet.org/content/labelled-notes-hospital-course/",
    citation="Aali et al., MIMIC-IV-Ext-BHC: Labeled Clinical Notes Dataset for Hospital Course "
             "Summarization, PhysioNet 2024",
    images_per_sample=0,
)
FILE = "mimic-iv-bhc.csv"
COLUMNS = ["note_id", "input", "target", "input_tokens", "target_tokens"]
INSTRUCTION = "Write the brief hospital course for the following discharge note."
DEFAULT_MAX_CHARS = 20000
_SECTION = re.compile(r"<[A-Z][A-Z &/,()-]*>")


def cut_at_section(note: str, limit: int) -> tuple[str, int] | None:
    """(whole sections that fit in `limit` characters, number of sections dropped), or None when the
    first section alone is too long. A note within the limit comes back whole."""
    if len(note) <= limit:
        return note, 0
    starts = [m.start() for m in _SECTION.finditer(note)]
    fits = [s for s in starts if 0 < s and len(note[:s].rstrip()) <= limit]
    if not fits:
        return None
    cut = max(fits)
    return note[:cut].rstrip(), sum(1 for s in starts if s >= cut)


def split_of(subject: str) -> str:
    bucket = int(hashlib.sha1(subject.encode("utf-8")).hexdigest(), 16) % 100
    return "test" if bucket == 0 else "val" if bucket == 1 else "train"


def _tokens(value: str) -> int | None:
    v = value.strip()
    return -1 if not v else int(v) if v.isdigit() else None


def records(root: Path, options: dict[str, str]) -> Iterator[RawSample | Reject]:
    opts = check_options(options, {"long": ("cut", "reject"), "max_input_chars": None}, INFO.name)
    limit = int_option(opts.get("max_input_chars"), "max_input_chars", DEFAULT_MAX_CHARS, INFO.name)
    for item in iter_csv(require(root / FILE, "MIMIC-IV-Ext-BHC CSV"), required=COLUMNS[:3], id_column="note_id"):
        if isinstance(item, Reject):
            yield item
            continue
        nid, row = item
        note, bhc = row["input"].strip(), row["target"].strip()
        in_tok, out_tok = _tokens(row.get("input_tokens", "")), _tokens(row.get("target_tokens", ""))
        if in_tok is None or out_tok is None:
            yield Reject(nid, "malformed_csv", "input_tokens/target_tokens is not an integer")
            continue
        if not note or not bhc:
            yield Reject(nid, "empty_text", "empty input" if not note else "empty target")
            continue
        kept = cut_at_section(note, limit) if opts["long"] == "cut" else (note, 0) if len(note) <= limit else None
        if kept is None:
            yield Reject(nid, "too_long", f"input has {len(note)} characters, limit {limit} ({opts['long']})")
            continue
        subject = nid.split("-", 1)[0]
        yield RawSample(
            id=nid, split=split_of(subject), task="summarization",
            messages=[turn("user", f"{INSTRUCTION}\n\n{kept[0]}"), turn("assistant", bhc)],
            target={"answer": bhc},
            meta={"subject_id": subject, "input_tokens": in_tok, "target_tokens": out_tok,
                  "input_chars": len(note), "cut_sections": kept[1]},
        )
