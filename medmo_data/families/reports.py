"""Radiology report and caption text shared by the report/caption recipes (MIMIC-CXR, IU-Xray, CheXpert
Plus, MedTrinity, ROCO, ...).

- MIMIC-CXR free-text reports: sectioned the way the MIMIC team's `txt/section_parser.py` does it
  (`MIT-LCP/mimic-cxr`): a header is a newline, ONE space, an upper-case name (letters, spaces, `()/,-`),
  a colon and whitespace; header spellings are folded onto a few names ("conclusion" -> impression,
  "findings and impression" -> impression, typos such as "impresson"); empty findings/impression
  sections are dropped; when neither exists the last paragraph becomes `last_paragraph`; and, as
  `txt/create_section_files.py` does, the *last* section of a given name wins.
- OpenI (IU-Xray) XML reports: `AbstractText Label=FINDINGS|IMPRESSION|INDICATION|COMPARISON`, the
  `<parentImage id>` list (one PNG per id) and MeSH terms.
- The report target MedMO trained on: findings + blank line + impression (either may be empty).
- Prompts: one of a few fixed wordings, chosen from the sample key (stable across rebuilds).

De-identification placeholders (`___` in MIMIC, `XXXX` in IU-Xray) are kept exactly as they are.
"""

from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medmo_data.formats.tables import clean, hf_image, iter_parquet
from medmo_data.recipe import RawSample, Reject
from medmo_data.schema import image, turn

# ---------------------------------------------------------------------------------------- text tidying


def tidy(text: Any) -> str:
    """Collapse every whitespace run (MIMIC's 79-column wrapping, the leading space of each line,
    double spaces after full stops) into one space; None -> ""."""
    if text is None:
        return ""
    return " ".join(str(text).split())


def join_report(findings: str, impression: str) -> str:
    """MedMO's report target: findings, a blank line, impression; an empty part is left out."""
    return "\n\n".join(p for p in (tidy(findings), tidy(impression)) if p)


# ------------------------------------------------------------------------------------ MIMIC sectioning

_HEADER = re.compile(r"\n ([A-Z ()/,-]+):\s")
# Header spellings seen in MIMIC-CXR, folded as the official sectioner folds them.
_SYNONYMS = {
    "comparisons": "comparison", "comparison exam": "comparison", "comparison film": "comparison",
    "reference exam": "comparison", "comparision": "comparison", "comparsion": "comparison",
    "comparrison": "comparison", "comparisions": "comparison",
    "clinical history": "history", "patient history": "history", "clinical information": "history",
    "pfi": "history",
    "reason for examination": "indication", "reason for exam": "indication",
    "clinical indication": "indication", "idication": "indication",
    "exam": "examination", "type of examination": "examination",
    "conclusion": "impression", "findings and impression": "impression", "findings/impression": "impression",
    "findings/ impression": "impression", "ndication": "impression", "impresson": "impression",
    "imprression": "impression", "imoression": "impression", "impressoin": "impression",
    "imprssion": "impression", "impresion": "impression", "imperssion": "impression",
    "mpression": "impression", "impession": "impression",
    "finding": "findings", "findins": "findings", "findindgs": "findings", "findgings": "findings",
    "findngs": "findings", "findnings": "findings", "finidngs": "findings", "reference findings": "findings",
    "chest, two views": "findings",
    "recommendation": "recommendations", "recommendation(s)": "recommendations", "wetread": "wet read",
}
_KNOWN = {"preamble", "impression", "comparison", "indication", "findings", "examination", "technique",
          "history", "notification", "addendum", "date", "comment", "wet read", "recommendations"}
_MAIN = ("impression", "findings", "history", "comparison", "addendum")
# A header that describes the whole study ("CHEST, PA AND LATERAL:") introduces the findings.
_STUDY_WORDS = re.compile(
    r"chest|portable|pa and lat|lateral and pa|ap and lateral|lateral and ap|frontal and|two views|"
    r"frontal view|pa view|ap view|one view|lateral view|bone window|frontal upright|frontal semi-upright|ribs")


def section_name(header: str) -> str:
    """Fold one header (any case) onto the sectioner's vocabulary."""
    s = header.lower().strip()
    if s in _SYNONYMS:
        return _SYNONYMS[s]
    if s in _KNOWN:
        return s
    for m in _MAIN:
        if m in s:
            return m
    return "findings" if _STUDY_WORDS.search(s) else s


def split_sections(text: str) -> list[tuple[str, str]]:
    """(section name, raw text) in report order, starting with the `preamble`."""
    found = _HEADER.search(text)
    if not found:
        parts: list[tuple[str, str]] = [("full report", text)]
    else:
        parts = [("preamble", text[:found.start(1)])]
        while found:
            name = found.group(1)
            start = found.end()
            # Like the official parser, look for the next header only after the next newline.
            skip = text.find("\n", start)
            found = _HEADER.search(text, skip if skip != -1 else start)
            parts.append((section_name(name), text[start:found.start() if found else len(text)]))
    parts = [(n, t) for n, t in parts if not (n in ("findings", "impression") and not t.strip())]
    if not any(n in ("findings", "impression") for n, _ in parts):
        name, last = parts[-1]
        if "\n \n" in last:
            head, tail = last.split("\n \n", 1)
            parts[-1] = (name, head)
            parts.append(("last_paragraph", tail))
    return parts


def mimic_sections(text: str) -> dict[str, str]:
    """Section name -> whitespace-tidied text; the last section of a name wins (create_section_files)."""
    out: dict[str, str] = {}
    for name, body in split_sections(text.replace("\r\n", "\n")):
        out[name] = tidy(body)
    return out


# -------------------------------------------------------------------------------------- OpenI reports


@dataclass
class OpenIReport:
    uid: str  # "CXR1"
    findings: str
    impression: str
    indication: str
    comparison: str
    images: list[str] = field(default_factory=list)  # parentImage ids = PNG stems
    captions: list[str] = field(default_factory=list)
    mesh: list[str] = field(default_factory=list)  # MeSH major terms


def openi_report(data: bytes) -> OpenIReport:
    """Parse one `ecgen-radiology/<n>.xml`; raises ValueError when it is not a report."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise ValueError(f"not well-formed XML ({exc})") from exc
    uid_el = root.find(".//uId")
    uid = (uid_el.get("id") if uid_el is not None else "") or ""
    if not uid:
        raise ValueError("no <uId id=...>")
    sections = {(el.get("Label") or "").strip().upper(): tidy("".join(el.itertext()))
                for el in root.iter("AbstractText")}
    images, captions = [], []
    for pi in root.iter("parentImage"):
        if pi.get("id"):
            images.append(pi.get("id", ""))
            cap = pi.find("caption")
            captions.append(tidy(cap.text if cap is not None else ""))
    mesh = [tidy(m.text) for m in root.iter("major") if tidy(m.text)]
    return OpenIReport(uid, sections.get("FINDINGS", ""), sections.get("IMPRESSION", ""),
                       sections.get("INDICATION", ""), sections.get("COMPARISON", ""), images, captions, mesh)


# --------------------------------------------------------------------------------------------- prompts

REPORT_PROMPTS = (
    "Write the radiology report for this study, with the findings followed by the impression.",
    "Describe the findings in this imaging study and give your impression.",
    "You are a radiologist. Report on this examination: findings, then impression.",
    "Generate a radiology report for the image(s) provided.",
)
CAPTION_PROMPTS = (
    "Describe this medical image in detail.",
    "Write a caption for this medical image.",
    "What does this medical image show? Describe the modality, anatomy and any findings.",
    "Provide a detailed description of the image.",
)


def pick(prompts: tuple[str, ...], key: str) -> str:
    """One prompt per sample, chosen from its key: stable across rebuilds, spread across samples."""
    h = int.from_bytes(hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=4).digest(), "little")
    return prompts[h % len(prompts)]


def report_messages(report: str, key: str, n_images: int = 1, context: str = "") -> list[dict[str, Any]]:
    """User: the images, optional context (history/indication) then a report prompt; assistant: the report."""
    prompt = pick(REPORT_PROMPTS, key)
    if context:
        prompt = f"{context}\n\n{prompt}"
    return [turn("user", *([image()] * n_images), prompt), turn("assistant", report)]


def caption_messages(caption: str, key: str, n_images: int = 1) -> list[dict[str, Any]]:
    return [turn("user", *([image()] * n_images), pick(CAPTION_PROMPTS, key)), turn("assistant", caption)]


def hash_split(key: str, val: float = 0.1, test: float = 0.2) -> str:
    """A stable split for sources without one, from the patient/study key (same key, same split)."""
    h = int.from_bytes(hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")
    u = (h % 10_000) / 10_000
    return "test" if u < test else ("val" if u < test + val else "train")


def hub_captions(files: dict[str, list[Path]], id_column: str = "image_id", caption_column: str = "caption",
                 extra: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
                 more_columns: tuple[str, ...] = ()) -> Iterator[RawSample | Reject]:
    """Caption samples from Hugging Face parquet splits ({our split: files}) with an `image` cell, an id
    and a caption column (the `eltorio/ROCO-radiology` / `ROCOv2-radiology` shape). `extra(row)` makes the
    meta from the row (with `more_columns` read too)."""
    columns = ["image", id_column, caption_column, *more_columns]
    for split in ("train", "val", "test"):
        for i, row in enumerate(iter_parquet(files.get(split, []), columns)):
            sid = clean(row[id_column]) or f"{split}-{i:06d}"
            caption = clean(row[caption_column])
            if not caption:
                yield Reject(sid, "empty_text", "caption is empty")
                continue
            img = hf_image(row["image"], sid)
            if isinstance(img, Reject):
                yield img
                continue
            yield RawSample(id=sid, split=split, task="caption", images=[img], messages=caption_messages(caption, sid),
                            target={"caption": caption}, meta=extra(row) if extra else {})
