"""CheXpert Plus (Chambon et al., 2024, arXiv 2405.19538): the CheXpert radiographs paired with their
de-identified radiology reports (223,462 report rows, one per image). Report generation.

REGISTERED: Stanford AIMI (also Redivis) under a Research Use Agreement
(https://aimi.stanford.edu/datasets/chexpert-plus). Tests use synthetic rows only.
Files read: `df_chexpert_plus_240401.csv` (27 columns; some exports add a leading unnamed index column,
which is ignored) and the images: `PNG/<path_to_image with .png>` (the CSV names `.jpg` although the
images ship as PNG), else `<path_to_image>` itself, else the DICOM `DICOM/<path_to_dcm>` / `<path_to_dcm>`.
One sample per CSV row (one image each; the two views of a study repeat the report, as in the release and
in MedMO's loader). Target: `section_findings` + blank line + `section_impression` (or, when the impression is
empty, `section_end_of_impression`); rows with neither are rejected `empty_report`. The clinical history
(`section_clinical_history`, else `section_history`) prefixes the prompt. ALL-CAPS text is kept as written.
Splits: `split` = train -> train, valid -> val; any other value is rejected `bad_split`. No demographics copied.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from medmo_data.families.reports import join_report, report_messages, tidy
from medmo_data.formats.tables import iter_csv
from medmo_data.recipe import ImageSource, RawSample, Reject, SourceError, SourceInfo

INFO = SourceInfo(
    name="chexpert_plus", title="CheXpert Plus", stages=(2,), tasks=("report",), modality="xray",
    access="registered", license="Stanford AIMI CheXpert Plus Research Use Agreement",
    homepage="https://aimi.stanford.edu/datasets/chexpert-plus",
    citation="Chambon et al., CheXpert Plus: Augmenting a Large Chest X-ray Dataset with Text Radiology Reports, "
             "Patient Demographics and Additional Image Formats, arXiv 2405.19538",
    image_format="png",
)
CSV_NAME = "df_chexpert_plus_240401.csv"
SPLITS = {"train": "train", "valid": "val"}
REQUIRED = ["path_to_image", "path_to_dcm", "frontal_lateral", "section_findings", "section_impression",
            "section_end_of_impression", "section_clinical_history", "section_history", "split"]


def _image(root: Path, path_to_image: str, path_to_dcm: str) -> ImageSource:
    stem = path_to_image.rsplit(".", 1)[0]
    candidates = [root / "PNG" / f"{stem}.png", root / f"{stem}.png", root / path_to_image]
    if path_to_dcm:
        candidates += [root / "DICOM" / path_to_dcm, root / path_to_dcm]
    for c in candidates:
        if c.exists():
            return ImageSource(path=str(c))
    return ImageSource(path=str(candidates[0]))  # absent: rejected as missing_image by the library


def records(root: Path, options: dict[str, str]) -> Iterator[RawSample | Reject]:
    csv_path = root / CSV_NAME
    if not csv_path.exists():
        found = sorted(root.glob("df_chexpert_plus*.csv"))
        if not found:
            raise SourceError(f"{root}: missing {CSV_NAME}")
        csv_path = found[-1]
    for item in iter_csv(csv_path, required=REQUIRED):
        if isinstance(item, Reject):
            yield item
            continue
        rid, row = item
        path = row["path_to_image"].strip()
        if not path:
            yield Reject(rid, "missing_field", "path_to_image is empty")
            continue
        sid = path.rsplit(".", 1)[0]
        split = SPLITS.get(row["split"].strip())
        if split is None:
            yield Reject(sid, "bad_split", f"split {row['split']!r}")
            continue
        findings = tidy(row["section_findings"])
        impression = tidy(row["section_impression"]) or tidy(row["section_end_of_impression"])
        report = join_report(findings, impression)
        if not report:
            yield Reject(sid, "empty_report", "section_findings and section_impression are empty")
            continue
        history = tidy(row["section_clinical_history"]) or tidy(row["section_history"])
        yield RawSample(
            id=sid, split=split, task="report", images=[_image(root, path, row["path_to_dcm"].strip())],
            messages=report_messages(report, sid, 1, f"Clinical history: {history}" if history else ""),
            target={"report": report, "findings": findings, "impression": impression},
            meta={"view": row["frontal_lateral"].strip(), "ap_pa": row.get("ap_pa", "").strip(),
                  "path_to_image": path},
        )
