"""MIMIC-CXR-JPG (v2.0.0 / v2.1.0; Johnson et al., Sci. Data 2019): 377,110 chest radiographs in 227,835
studies of 64,588 patients, with the free-text radiology report of each study. Report generation.

CREDENTIALED: PhysioNet credentialed access + CITI "Data or Specimens Only Research" + the DUA
(https://physionet.org/content/mimic-cxr-jpg/). Never commit rows or reports; tests use synthetic ones.
Files read (from the MIMIC-CXR-JPG project, plus the reports of the MIMIC-CXR DICOM project):
- images `files/pXX/pXXXXXXXX/sXXXXXXXX/<dicom_id>.jpg` (XX = first two digits of the subject id);
- `mimic-cxr-2.0.0-split.csv(.gz)` (`dicom_id, study_id, subject_id, split`; train / validate / test,
  consistent per study) and `mimic-cxr-2.0.0-metadata.csv(.gz)` (`dicom_id, ..., ViewPosition, ...`);
- reports `sXXXXXXXX.txt`, found in `mimic-cxr-reports/files/pXX/pXXXXXXXX/`, beside the study folders in
  `files/pXX/pXXXXXXXX/`, or inside `mimic-cxr-reports.zip`.
One sample per study: its images (frontal PA/AP first, then lateral, then others; `--option views=PA,AP`
keeps only those ViewPositions, `--option max_images=N` caps the count) and the report target MedMO used,
FINDINGS + blank line + IMPRESSION, sectioned as the MIMIC team's `section_parser.py` does
(`medmo_data.families.reports`). ~15-20 % of studies have no FINDINGS: the impression alone is the target; a study
with neither (only a trailing paragraph) is rejected `empty_report`. The INDICATION section, when present,
prefixes the prompt. `___` de-identification placeholders are kept as they are. Rejects: `missing_report`,
`no_split` (study absent from the split file), `no_selected_view`, `empty_report`.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
from collections.abc import Iterator
from pathlib import Path

from medmo_data.families.reports import join_report, mimic_sections, report_messages
from medmo_data.formats.archive import open_zip
from medmo_data.formats.tables import FileRefused, read_small
from medmo_data.recipe import ImageSource, RawSample, Reject, SourceError, SourceInfo, require

INFO = SourceInfo(
    name="mimic_cxr", title="MIMIC-CXR-JPG", stages=(2,), tasks=("report",), modality="xray",
    access="credentialed", license="PhysioNet Credentialed Health Data License 1.5.0",
    homepage="https://physionet.org/content/mimic-cxr-jpg/2.1.0/",
    citation="Johnson et al., MIMIC-CXR, a de-identified publicly available database of chest radiographs with "
             "free-text reports, Sci. Data 2019",
    image_format="jpg", images_per_sample=2,
)
SPLITS = {"train": "train", "validate": "val", "test": "test"}
VIEW_ORDER = {"PA": 0, "AP": 1, "LATERAL": 2, "LL": 3}


def _table(root: Path, stem: str) -> Path:
    for name in (f"{stem}.csv", f"{stem}.csv.gz"):
        if (root / name).exists():
            return root / name
    raise SourceError(f"{root}: missing {stem}.csv(.gz)")


def _rows(path: Path, required: list[str]) -> Iterator[dict[str, str]]:
    raw = gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")  # noqa: SIM115
    with raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        lacking = [c for c in required if c not in (reader.fieldnames or [])]
        if lacking:
            raise SourceError(f"{path}: header lacks column(s) {lacking}")
        yield from reader


class _Reports:
    """Report text by (pXX, pXXXXXXXX, sXXXXXXXX) from a folder or from mimic-cxr-reports.zip."""

    def __init__(self, root: Path) -> None:
        self.dirs = [d for d in (root / "mimic-cxr-reports" / "files", root / "files") if d.is_dir()]
        self.zip = open_zip(root / "mimic-cxr-reports.zip") if (root / "mimic-cxr-reports.zip").exists() \
            else None
        if not self.dirs and self.zip is None:
            raise SourceError(f"{root}: no report folder (mimic-cxr-reports/files) or mimic-cxr-reports.zip")

    def get(self, group: str, patient: str, study: str) -> str | None:
        rel = f"{group}/{patient}/{study}.txt"
        for d in self.dirs:
            p = d / rel
            if p.exists():
                return read_small(p).decode("utf-8", "surrogateescape")
        if self.zip is not None:
            for name in (f"files/{rel}", f"mimic-cxr-reports/files/{rel}"):
                try:
                    return self.zip.read(name).decode("utf-8", "surrogateescape")
                except KeyError:
                    continue
        return None


def _studies(files: Path) -> Iterator[tuple[str, str, Path]]:
    """(pXX, pXXXXXXXX, study folder) in sorted order, streamed from the tree."""
    for group in sorted(e.name for e in os.scandir(files) if e.is_dir() and e.name.startswith("p")):
        for patient in sorted(e.name for e in os.scandir(files / group) if e.is_dir()):
            for study in sorted(e.name for e in os.scandir(files / group / patient)
                                if e.is_dir() and e.name.startswith("s")):
                yield group, patient, files / group / patient / study


def records(root: Path, options: dict[str, str]) -> Iterator[RawSample | Reject]:
    files = require(root / "files", "image folder files/pXX/...")
    split_of = {f"s{r['study_id']}": SPLITS.get(r["split"].strip(), "")
                for r in _rows(_table(root, "mimic-cxr-2.0.0-split"), ["dicom_id", "study_id", "split"])}
    view_of = {r["dicom_id"]: r["ViewPosition"].strip().upper()
               for r in _rows(_table(root, "mimic-cxr-2.0.0-metadata"), ["dicom_id", "ViewPosition"])}
    keep = {v.strip().upper() for v in options.get("views", "all").split(",")} - {"ALL", ""}
    max_images = int(options.get("max_images", "0"))
    reports = _Reports(root)
    for group, patient, study_dir in _studies(files):
        sid = study_dir.name
        split = split_of.get(sid)
        if not split:
            yield Reject(sid, "no_split", f"{sid} is not in mimic-cxr-2.0.0-split (or has an unknown split)")
            continue
        dicoms = sorted(p.stem for p in study_dir.glob("*.jpg"))
        views = sorted((VIEW_ORDER.get(view_of.get(d, ""), 9), d) for d in dicoms
                        if not keep or view_of.get(d, "") in keep)
        if max_images:
            views = views[:max_images]
        if not views:
            yield Reject(sid, "no_selected_view", f"{len(dicoms)} image(s), none with ViewPosition in {sorted(keep)}")
            continue
        try:
            text = reports.get(group, patient, sid)
        except FileRefused as exc:  # a FIFO, device or huge file where the report should be: this study only
            yield Reject(sid, exc.reason, str(exc))
            continue
        if text is None:
            yield Reject(sid, "missing_report", f"no {group}/{patient}/{sid}.txt")
            continue
        sec = mimic_sections(text)
        findings, impression = sec.get("findings", ""), sec.get("impression", "")
        report = join_report(findings, impression)
        if not report:
            yield Reject(sid, "empty_report", f"no FINDINGS or IMPRESSION; sections {sorted(sec)}")
            continue
        context = f"Indication: {sec['indication']}" if sec.get("indication") else ""
        yield RawSample(
            id=sid, split=split, task="report",
            images=[ImageSource(path=str(study_dir / f"{d}.jpg")) for _, d in views],
            messages=report_messages(report, sid, len(views), context),
            target={"report": report, "findings": findings, "impression": impression},
            meta={"subject_id": patient, "study_id": sid, "dicom_ids": [d for _, d in views],
                  "views": [view_of.get(d, "") for _, d in views]},
        )
