"""Harvard-FairVLMed (FairCLIP): 10,000 SLO fundus images of 10,000 glaucoma-clinic patients with their
de-identified clinical notes and GPT-4 summaries (Luo et al., FairCLIP, CVPR 2024).

Get it from the Google Drive link in `Harvard-Ophthalmology-AI-Lab/FairCLIP` README. Licence CC BY-NC-ND 4.0:
non-commercial research only, no clinical decisions. Files read: `Training/`, `Validation/`, `Testing/`
(7,000 / 1,000 / 2,000) holding `data_xxxxx.npz` with `slo_fundus` (the SLO fundus image, a float array of
about 664x512; older files call it `fundus_slo`), `note` (the de-identified clinical note, a 0-d string array),
`glaucoma` (0/1) and the attribute codes `race`, `gender`, `ethnicity`, `language` (-1 = unknown); and
`gpt-4_summarized_notes.csv` (or `gpt4_summarized_notes.csv`, the name FairCLIP's scripts pass): column 1 the
npz file name, column 3 the GPT-4 summary (read by position, as FairCLIP does).
Text: `--option text=summary` (default when the summary CSV exists; what FairCLIP trains on) or `text=note`
(the full note). Notes are copied as they are: de-identification placeholders stay, nothing is invented.
The npz is opened with `np.load(..., allow_pickle=False)` (nothing in it runs); the float image is rescaled
min-max to 8 bit; age is not copied.
Splits: Training -> train, Validation -> val, Testing -> test.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from medmo_data.formats.tables import iter_csv, vqa_messages
from medmo_data.recipe import ImageSource, RawSample, Reject, SourceError, SourceInfo

INFO = SourceInfo(
    name="fairvlmed", title="Harvard-FairVLMed", stages=(2,), tasks=("report",), modality="fundus",
    access="open", license="CC-BY-NC-ND-4.0", homepage="https://github.com/Harvard-Ophthalmology-AI-Lab/FairCLIP",
    citation="Luo et al., FairCLIP: Harnessing Fairness in Vision-Language Learning, CVPR 2024",
    notes="non-commercial research only; not for clinical decisions",
)
SPLITS = (("train", ("Training",)), ("val", ("Validation",)), ("test", ("Testing", "Test")))
SUMMARY_FILES = ("gpt-4_summarized_notes.csv", "gpt4_summarized_notes.csv")
PROMPTS = {"summary": "Summarize the clinical note for this patient's SLO fundus image.",
           "note": "Write the clinical note for this patient's SLO fundus image."}
ATTRS = ("race", "gender", "ethnicity", "language")


def _summaries(root: Path) -> dict[str, str] | None:
    path = next((root / n for n in SUMMARY_FILES if (root / n).exists()), None)
    if path is None:
        return None
    out: dict[str, str] = {}
    for item in iter_csv(path):
        if isinstance(item, Reject):
            continue  # a broken summary row only means that file falls back to a reject below
        cells = list(item[1].values())
        if len(cells) >= 3 and cells[0].strip():
            out[cells[0].strip()] = cells[2].strip()
    return out


def _scalar(data: np.lib.npyio.NpzFile, key: str) -> int:
    return int(data[key].item()) if key in data.files else -1


def _read(path: Path, fid: str, text_src: str, summaries: dict[str, str] | None, split: str
          ) -> RawSample | Reject:
    try:
        with np.load(path, allow_pickle=False) as data:
            key = "slo_fundus" if "slo_fundus" in data.files else "fundus_slo"
            if key not in data.files:
                return Reject(fid, "missing_field", f"{path}: no slo_fundus array (keys {data.files})")
            arr = np.asarray(data[key])
            note = str(data["note"].item()).strip() if "note" in data.files else ""
            glaucoma = _scalar(data, "glaucoma")
            attrs = {a: _scalar(data, a) for a in ATTRS}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        return Reject(fid, "unreadable_npz", f"{path}: {type(exc).__name__}: {exc}")
    text = summaries.get(path.name, "") if text_src == "summary" and summaries is not None else note
    if not text:
        return Reject(fid, "empty_text", f"{path.name}: no {text_src} text")
    return RawSample(
        id=fid, split=split, task="report", images=[ImageSource(array=arr, normalize="minmax", mode="L")],
        messages=vqa_messages(PROMPTS[text_src], text),
        target={"text": text, "glaucoma": {1: "yes", 0: "no"}.get(glaucoma, "unknown")},
        meta={"file": path.name, "text_source": text_src, **attrs},
    )


def records(root: Path, options: dict[str, str]) -> Iterator[RawSample | Reject]:
    base = root / "FairVLMed" if (root / "FairVLMed").is_dir() else root
    folders = [(split, next((base / n for n in names if (base / n).is_dir()), None)) for split, names in SPLITS]
    if not any(f for _, f in folders):
        raise SourceError(f"{base}: none of Training/, Validation/, Testing/ found")
    summaries = _summaries(base)
    text_src = options.get("text", "summary" if summaries is not None else "note")
    if text_src not in PROMPTS:
        raise SourceError(f"--option text={text_src!r}: expected summary or note")
    if text_src == "summary" and summaries is None:
        raise SourceError(f"{base}: text=summary needs {' or '.join(SUMMARY_FILES)}")
    for split, folder in folders:
        if folder is None:
            continue
        for path in sorted(folder.glob("*.npz")):
            yield _read(path, path.stem, text_src, summaries, split)
