"""CT-RATE: 25,692 non-contrast chest CT scans of 21,304 patients (50,188 reconstructions) with their
radiology reports (Hamamci et al. 2024, arXiv 2403.17834).

Get it from the gated Hugging Face repo `ibrahimhamamci/CT-RATE` (HF token + accepted terms). Licence
CC-BY-NC-SA-4.0 plus the gated terms: research use only, NO redistribution of any portion (test fixtures
are synthetic). Files read (input = the repo folder holding `dataset/`, or `dataset/` itself):
- `dataset/radiology_text_reports/{train,validation}_reports.csv`: `VolumeName, ClinicalInformation_EN,
  Technique_EN, Findings_EN, Impressions_EN` (empty / `nan` cells guarded);
- `dataset/metadata/{train,validation}_metadata.csv`: `VolumeName, ..., XYSpacing ("[sx, sy]"),
  RescaleIntercept, RescaleSlope, ..., ZSpacing`;
- volumes `dataset/{train,valid}_fixed/<split>_<P>/<split>_<P>_<S>/<split>_<P>_<S>_<R>.nii.gz` (header-
  fixed, int16 HU) when present, else the originals under `dataset/{train,valid}/...`, whose headers are
  blank and whose values are RAW: HU = stored x RescaleSlope + RescaleIntercept from the metadata row
  (`volumes=raw` forces the originals, `volumes=fixed` the fixed copies).
Samples: one report sample per SCAN: only the lowest-numbered reconstruction of a scan is used (the others
carry the same report; `duplicate_reconstruction`). Each sample shows a fixed number of axial slices
(`slices=3`, evenly spaced, inferior to superior, in the canonical RAS+ frame) in two windows each, lung
(L -600 / W 1500) then mediastinal (L 50 / W 350): 6 images. The answer is `Findings: ...` and
`Impression: ...`. Splits: the release's train / validation (volume- and patient-level). CT-CHAT's VQA
files are not read (their names are UNVERIFIED). Slices of original (blank-header) volumes are taken in
voxel order; their display orientation is UNVERIFIED, so prefer the fixed copies.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from medmo_data.formats.tables import iter_csv
from medmo_data.pixels.nifti import evenly_spaced
from medmo_data.recipe import ImageSource, RawSample, Reject, SourceError, SourceInfo, require
from medmo_data.schema import image, turn

INFO = SourceInfo(
    name="ct_rate", title="CT-RATE", stages=(2,), tasks=("report",), modality="ct", access="registered",
    license="CC-BY-NC-SA-4.0", homepage="https://huggingface.co/datasets/ibrahimhamamci/CT-RATE",
    citation="Hamamci et al., Developing Generalist Foundation Models from a Multimodal Dataset for 3D "
             "Computed Tomography, arXiv 2403.17834",
    images_per_sample=6,
)
# From the hub: reports, metadata and the header-fixed volumes (several TB; `--limit` does not shrink the
# download, so fetch a subset with huggingface_hub yourself for a trial build).
HUB_PATTERNS = ["dataset/radiology_text_reports/*.csv", "dataset/metadata/*.csv", "dataset/train_fixed/*",
                "dataset/valid_fixed/*"]
SPLITS = (("val", "validation", "valid"), ("train", "train", "train"))  # (ours, csv prefix, folder prefix)
NAME = re.compile(r"^(train|valid)_(\d+)_([a-z]+)_(\d+)\.nii\.gz$")
WINDOWS = ("lung", "mediastinum")
MISSING = {"", "nan", "none", "null"}


def _text(cell: str | None) -> str:
    t = (cell or "").strip()
    return "" if t.lower() in MISSING else " ".join(t.split())


def prompt(n_slices: int) -> str:
    return (f"These are {n_slices} axial slices of a non-contrast chest CT, from inferior to superior, each shown "
            "twice: in a lung window, then in a mediastinal window. Write the findings and the impression of "
            "the radiology report.")


def volume_path(base: Path, folder: str, name: str, mode: str) -> Path:
    pid, scan = name.split("_")[1:3]
    rel = Path(f"{folder}_{pid}") / f"{folder}_{pid}_{scan}" / name
    fixed, raw = base / f"{folder}_fixed" / rel, base / folder / rel
    if mode == "fixed" or (mode == "auto" and fixed.exists()):
        return fixed
    return raw


def _metadata(path: Path) -> dict[str, dict[str, str]]:
    if not path.exists():
        return {}
    rows: dict[str, dict[str, str]] = {}
    for item in iter_csv(path, required=["VolumeName", "XYSpacing", "ZSpacing", "RescaleSlope", "RescaleIntercept"]):
        if not isinstance(item, Reject):
            rows[item[1]["VolumeName"].strip()] = item[1]
    return rows


def _axial_count(path: Path) -> int:
    import nibabel as nib

    img = nib.load(str(path))
    codes = nib.aff2axcodes(img.affine)
    axis = next((k for k, c in enumerate(codes) if c in ("S", "I")), 2)
    return int(img.shape[axis])


def _first_reconstructions(reports: Path) -> dict[tuple[str, str], int]:
    """Lowest reconstruction number per (patient, scan): first pass, keys only (memory stays small)."""
    first: dict[tuple[str, str], int] = {}
    for item in iter_csv(reports, required=["VolumeName"]):
        if not isinstance(item, Reject) and (m := NAME.match(item[1]["VolumeName"].strip())):
            key = (m.group(2), m.group(3))
            first[key] = min(first.get(key, 1 << 30), int(m.group(4)))
    return first


def _sample(base: Path, split: str, folder: str, name: str, m: re.Match, row: dict[str, str],
            meta_row: dict[str, str] | None, mode: str, n_slices: int) -> RawSample | Reject:
    sid = name.removesuffix(".nii.gz")
    findings, impression = _text(row.get("Findings_EN")), _text(row.get("Impressions_EN"))
    if not findings and not impression:
        return Reject(sid, "empty_report", "Findings_EN and Impressions_EN are both empty")
    path = volume_path(base, folder, name, mode)
    if not path.exists():
        return Reject(sid, "missing_image", f"{path} does not exist")
    fixed = path.parent.parent.parent.name.endswith("_fixed")
    rescale: tuple[float, float] | None = None
    spacing: list[float] = []
    if meta_row is not None:
        try:
            spacing = [float(v) for v in ast.literal_eval(meta_row["XYSpacing"])] + [float(meta_row["ZSpacing"])]
            if not fixed:
                rescale = (float(meta_row["RescaleSlope"]), float(meta_row["RescaleIntercept"]))
        except (KeyError, ValueError, SyntaxError, TypeError) as exc:
            return Reject(sid, "bad_metadata", f"{name}: {type(exc).__name__}: {exc}")
    elif not fixed:
        return Reject(sid, "missing_metadata", f"{name}: no metadata row; raw values cannot become HU")
    try:
        n = _axial_count(path)
    except Exception as exc:  # noqa: BLE001 - nibabel raises many types on bad files
        return Reject(sid, "corrupt_nifti", f"{path}: {type(exc).__name__}: {exc}")
    picks = evenly_spaced(n, n_slices)
    if len(picks) < n_slices:
        return Reject(sid, "too_few_slices", f"{n} axial slices < {n_slices}")
    images = [ImageSource(path=str(path), kind="nifti", slice_index=k, axis="axial", window=w, rescale=rescale)
              for k in picks for w in WINDOWS]
    parts = [f"Findings: {findings}"] if findings else []
    parts += [f"Impression: {impression}"] if impression else []
    return RawSample(
        id=sid, split=split, task="report", images=images,
        messages=[turn("user", *([image()] * len(images)), prompt(n_slices)), turn("assistant", "\n\n".join(parts))],
        target={"findings": findings, "impression": impression},
        meta={"patient": f"{folder}_{m.group(2)}", "scan": m.group(3), "reconstruction": int(m.group(4)),
              "slices": picks, "spacing": spacing, "volumes": "fixed" if fixed else "raw"},
    )


def records(root: Path, options: dict[str, str]) -> Iterator[RawSample | Reject]:
    base = root / "dataset" if (root / "dataset").is_dir() else root
    mode = options.get("volumes", "auto")
    if mode not in ("auto", "fixed", "raw"):
        raise SourceError(f"option volumes must be auto, fixed or raw, got {mode!r}")
    n_slices = int(options.get("slices", 3))
    reports_dir = require(base / "radiology_text_reports", "radiology_text_reports folder")
    found = False
    for split, prefix, folder in SPLITS:
        reports = reports_dir / f"{prefix}_reports.csv"
        if not reports.exists():
            continue
        found = True
        first = _first_reconstructions(reports)
        meta = _metadata(base / "metadata" / f"{prefix}_metadata.csv")
        for item in iter_csv(reports, required=["VolumeName", "Findings_EN", "Impressions_EN"]):
            if isinstance(item, Reject):
                yield item
                continue
            rid, row = item
            name = row["VolumeName"].strip()
            m = NAME.match(name)
            if not m or m.group(1) != folder:
                yield Reject(name or rid, "bad_filename", f"{rid}: VolumeName {name!r} is not {folder}_P_S_R.nii.gz")
                continue
            if int(m.group(4)) != first[(m.group(2), m.group(3))]:
                yield Reject(name.removesuffix(".nii.gz"), "duplicate_reconstruction",
                             f"scan {m.group(2)}_{m.group(3)} already used reconstruction {first[(m.group(2), m.group(3))]}")
                continue
            yield _sample(base, split, folder, name, m, row, meta.get(name), mode, n_slices)
    if not found:
        raise SourceError(f"{reports_dir}: no train_reports.csv or validation_reports.csv")
