"""CheXpert v1.0 (Irvin et al., AAAI 2019): 224,316 chest radiographs of 65,240 patients with 14
observations labelled from the reports by the CheXpert labeller. No reports: the labels become
classification-VQA samples ("which of these observations are present?").

REGISTERED: Stanford AIMI registration + Research Use Agreement, no redistribution
(https://stanfordmlgroup.github.io/competitions/chexpert/). Tests use synthetic rows only.
Files read: `train.csv` and `valid.csv` (19 columns: `Path, Sex, Age, Frontal/Lateral, AP/PA` and the 14
observations) and the JPEGs they name. Works for `CheXpert-v1.0` and `CheXpert-v1.0-small`: `--input` is the
release folder (or its parent); the `CheXpert-v1.0(-small)/` prefix of `Path` is stripped before joining.
Labels: 1.0 positive, 0.0 negative, -1.0 uncertain, blank not mentioned; anything else is rejected
(`bad_label`). The answer lists the positive observations in column order joined with ", " ("No Finding"
when none is positive). Uncertain labels follow `--option uncertain=`: `zeros` (default: not positive),
`ones` (positive) or `exclude` (the image is rejected `uncertain_label`); `target.labels` keeps every raw
value (1 / 0 / -1 / null) whatever the policy. Splits: `train.csv` -> train, `valid.csv` -> val (patients are
disjoint between them; the official test set is not part of this release). Sex/age are not copied.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from medmo_data.formats.tables import clean, iter_csv, vqa_messages
from medmo_data.recipe import ImageSource, RawSample, Reject, SourceError, SourceInfo

INFO = SourceInfo(
    name="chexpert", title="CheXpert v1.0", stages=(2,), tasks=("classification",), modality="xray",
    access="registered", license="Stanford University CheXpert Dataset Research Use Agreement",
    homepage="https://stanfordmlgroup.github.io/competitions/chexpert/",
    citation="Irvin et al., CheXpert: A Large Chest Radiograph Dataset with Uncertainty Labels and Expert "
             "Comparison, AAAI 2019",
    image_format="jpg",
)
OBSERVATIONS = (
    "No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion", "Edema",
    "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion", "Pleural Other",
    "Fracture", "Support Devices",
)
QUESTION = ("Which of the following observations are present in this chest X-ray: " + ", ".join(OBSERVATIONS)
            + "? List every one that is present, separated by commas.")
VALUES = {"1.0": 1, "1": 1, "0.0": 0, "0": 0, "-1.0": -1, "-1": -1, "": None}
POLICIES = ("zeros", "ones", "exclude")


def _release(root: Path) -> Path:
    if (root / "train.csv").exists() or (root / "valid.csv").exists():
        return root
    for d in sorted(root.glob("CheXpert-v1.0*")):
        if (d / "train.csv").exists():
            return d
    raise SourceError(f"{root}: no train.csv / valid.csv (CheXpert-v1.0 or -small release folder)")


def _relative(path: str) -> str:
    """`CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg` -> `train/patient00001/...`."""
    parts = path.strip().replace("\\", "/").split("/")
    return "/".join(parts[1:] if parts and parts[0].startswith("CheXpert-v1.0") else parts)


def records(root: Path, options: dict[str, str]) -> Iterator[RawSample | Reject]:
    policy = options.get("uncertain", "zeros")
    if policy not in POLICIES:
        raise SourceError(f"--option uncertain={policy!r}: expected one of {POLICIES}")
    base = _release(root)
    for fname, split in (("train.csv", "train"), ("valid.csv", "val")):
        if not (base / fname).exists():
            continue
        for item in iter_csv(base / fname, required=["Path", "Frontal/Lateral", "AP/PA", *OBSERVATIONS]):
            if isinstance(item, Reject):
                yield item
                continue
            _, row = item
            rel = _relative(row["Path"])
            sid = rel.rsplit(".", 1)[0]
            labels: dict[str, int | None] = {}
            bad = [f"{o}={row[o]!r}" for o in OBSERVATIONS if row[o].strip() not in VALUES]
            if bad or not rel:
                yield Reject(sid or fname, "bad_label" if bad else "missing_field",
                             f"{fname}: {'; '.join(bad) or 'Path is empty'}")
                continue
            labels = {o: VALUES[row[o].strip()] for o in OBSERVATIONS}
            uncertain = [o for o in OBSERVATIONS if labels[o] == -1]
            if uncertain and policy == "exclude":
                yield Reject(sid, "uncertain_label", f"uncertain: {', '.join(uncertain)}")
                continue
            positive = [o for o in OBSERVATIONS if labels[o] == 1 or (policy == "ones" and labels[o] == -1)]
            answer = ", ".join(positive) or "No Finding"
            parts = rel.split("/")
            yield RawSample(
                id=sid, split=split, task="classification", images=[ImageSource(path=str(base / rel))],
                messages=vqa_messages(QUESTION, answer),
                target={"answer": answer, "positive": positive, "uncertain": uncertain, "labels": labels,
                        "uncertain_policy": policy},
                meta={"patient": parts[1] if len(parts) > 3 else "", "study": parts[2] if len(parts) > 3 else "",
                      "view": clean(row["Frontal/Lateral"]), "ap_pa": clean(row["AP/PA"])},
            )
