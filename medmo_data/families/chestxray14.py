"""NIH ChestX-ray14 files shared by the `nih_chestxray_bbox` and `nih_vqa` recipes.

- `Data_Entry_2017.csv` / `Data_Entry_2017_v2020.csv`: two header variants (`Patient Gender` or
  `Patient Sex`, with or without a trailing comma) — columns are read by position, which both share.
- `train_val_list.txt` / `test_list.txt`: the official, patient-level split (FAQ Q09).
- `BBox_List_2017.csv`: every one of its 880 images (726 patients) is in `test_list.txt` in the real release,
  so the official lists leave the box recipe no training data. The default split (`split=boxes`) therefore
  re-splits the box PATIENTS 80/10/10 by a hash of the Patient ID, and every NIH recipe gives every image of
  a box patient that split (so no patient is train in one NIH source and val/test in the other); all other
  images keep the official lists. `-o split=official` restores the official lists everywhere.
- images: `images/<8 digits>_<3 digits>.png` (unpacked NIH Box tarballs) or `images_0NN/images/...` (Kaggle),
  or the Box tarballs themselves, read in place: `images_001.tar.gz` ... `images_012.tar.gz` at the root or
  in the `images/` folder the Box download makes (each holds `images/<name>.png`; streamed once, in number
  order, which is also the label file's order), or the zips `images_NNN.zip` of the HF re-packaging
  (`alkzar90/NIH-Chest-X-ray-dataset`, `data/images/`; members looked up by base name, in place).
- label vocabulary: the 14 findings of the label file; the box list spells `Infiltrate`. Files are matched
  in the label file's spelling (`Pleural_Thickening`); what a model reads and says is `display_label`'s
  ("Pleural Thickening").
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from medmo_data.formats.archive import ReleaseTree
from medmo_data.formats.tables import MAX_METADATA_BYTES, read_small
from medmo_data.formats.tar_stream import Missing, join_archives
from medmo_data.recipe import ImageSource, Reject, SourceError

LABELS = ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Effusion", "Emphysema", "Fibrosis", "Hernia",
          "Infiltration", "Mass", "Nodule", "Pleural_Thickening", "Pneumonia", "Pneumothorax")
NO_FINDING = "No Finding"
# Box-list spellings -> label-file spellings.
ALIASES = {"Infiltrate": "Infiltration"}
ZIP_GLOBS = ("images_*.zip", "images/images_*.zip", "data/images/images_*.zip")  # the HF re-packaging's
DATA_ENTRY_NAMES = ("Data_Entry_2017_v2020.csv", "Data_Entry_2017.csv")
BOX_LIST = "BBox_List_2017.csv"
SPLIT_MODES = ("boxes", "official")


@dataclass(frozen=True)
class Entry:
    image: str
    labels: tuple[str, ...]  # () for "No Finding"
    follow_up: int
    patient: int
    view: str


def display_label(name: str) -> str:
    """The words for a label-file name: `Pleural_Thickening` -> `Pleural Thickening`."""
    return name.replace("_", " ")


def canonical_label(name: str) -> str | None:
    name = ALIASES.get(name.strip(), name.strip())
    return name if name in LABELS else None


HUB_FILES = ["data/*.csv", "data/*.txt", "data/images/images_*.zip", "*.md"]  # alkzar90/NIH-Chest-X-ray-dataset


def release_root(root: Path) -> Path:
    """The folder holding the label file: `root`, or its `data/` in the HF re-packaging
    (`alkzar90/NIH-Chest-X-ray-dataset`: `data/Data_Entry_2017_v2020.csv`, `data/train_val_list.txt`,
    `data/test_list.txt`, `data/images/images_001.zip` ...)."""
    def has_labels(folder: Path) -> bool:
        return any((folder / n).exists() for n in DATA_ENTRY_NAMES)
    return root / "data" if not has_labels(root) and has_labels(root / "data") else root


def data_entry_path(root: Path) -> Path:
    for n in DATA_ENTRY_NAMES:
        if (root / n).exists():
            return root / n
    raise SourceError(f"{root}: no {' or '.join(DATA_ENTRY_NAMES)} (the label file)")


def read_data_entry(path: Path) -> Iterator[Entry | Reject]:
    """Rows of the label file; bad rows become Rejects naming the line and field."""
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if not header or header[0].strip() != "Image Index" or header[1].strip() != "Finding Labels":
            raise SourceError(f"{path}: header must start with 'Image Index,Finding Labels', got {header}")
        for row in reader:
            rid = f"{path.name}:{reader.line_num}"
            if not row or not any(c.strip() for c in row):
                continue
            if len(row) < 7:
                yield Reject(rid, "malformed_csv", f"{path}:{reader.line_num}: {len(row)} fields, need >= 7")
                continue
            name, found = row[0].strip(), row[1].strip()
            labels: list[str] = []
            if found != NO_FINDING:
                for lab in found.split("|"):
                    canon = canonical_label(lab)
                    if canon is None:
                        labels = []
                        break
                    labels.append(canon)
                if not labels:
                    yield Reject(name or rid, "unknown_label", f"{path}:{reader.line_num}: Finding Labels {found!r}")
                    continue
            try:
                yield Entry(name, tuple(labels), int(row[2]), int(row[3]), row[6].strip())
            except ValueError:
                yield Reject(name or rid, "malformed_csv",
                             f"{path}:{reader.line_num}: Follow-up # / Patient ID not integers")


def official_split(root: Path) -> dict[str, str] | None:
    """image name -> train/test from the official lists, or None when the lists are absent."""
    tv, te = root / "train_val_list.txt", root / "test_list.txt"
    if not tv.exists() or not te.exists():
        return None
    split = {}
    for path, name in ((tv, "train"), (te, "test")):
        for line in read_small(path, MAX_METADATA_BYTES).decode("utf-8").splitlines():
            if line.strip():
                split[line.strip()] = name
    return split


def patient_split(patient: int) -> str:
    """Deterministic patient-level fallback split (90/5/5) when the official lists are missing."""
    h = int(hashlib.sha1(f"nih-{patient}".encode()).hexdigest()[:8], 16) % 100
    return "test" if h < 5 else "val" if h < 10 else "train"


def box_split(patient: int) -> str:
    """Split of a box-set patient under `split=boxes`: 80/10/10 train/val/test by a hash of the Patient ID."""
    h = int(hashlib.sha1(f"nih-box-{patient}".encode()).hexdigest()[:8], 16) % 100
    return "test" if h < 10 else "val" if h < 20 else "train"


def patient_of(name: str) -> int | None:
    """Patient ID from a release file name `{PatientID:08d}_{FollowUp:03d}.png`; None for other names."""
    stem = name.removesuffix(".png")
    pid, _, fu = stem.partition("_")
    return int(pid) if len(pid) == 8 and pid.isdigit() and fu.isdigit() else None


def box_patients(root: Path) -> set[int]:
    """Patients with at least one image in `BBox_List_2017.csv` (first column; header and bad names skipped)."""
    path = root / BOX_LIST
    if not path.exists():
        raise SourceError(f"{root}: no {BOX_LIST}; the default split=boxes needs it to keep the box set's "
                          "val/test patients out of train (or pass -o split=official)")
    with open(path, encoding="utf-8", newline="") as f:
        names = [row[0].strip() for row in csv.reader(f) if row]
    return {p for p in map(patient_of, names[1:]) if p is not None}


def split_assigner(root: Path, options: dict[str, str]) -> Callable[[str, int], str | None]:
    """(image name, patient) -> train/val/test, or None when the official lists do not name the image.

    `split=boxes` (default): box-set patients take `box_split`, every other image the official lists;
    `split=official`: the official lists for every image. Without the lists, `patient_split` stands in
    for them."""
    mode = options.get("split", "boxes")
    if mode not in SPLIT_MODES:
        raise SourceError(f"option split must be one of {SPLIT_MODES}, got {mode!r}")
    lists = official_split(root)
    boxed = box_patients(root) if mode == "boxes" else set()

    def assign(name: str, patient: int) -> str | None:
        if patient in boxed:
            return box_split(patient)
        return lists.get(name) if lists is not None else patient_split(patient)
    return assign


ImageLookup = Callable[[str], ImageSource]  # file name -> the image, as grey ("a few are RGBA")


def image_files(root: Path) -> tuple[ImageLookup | None, list[Path]]:
    """Where the images are: (a lookup by file name, []) for unpacked folders or the hub re-packaging's
    `images_NNN.zip` (read in place, by base name); else (None, the Box tarballs `images_NNN.tar.gz` in
    number order) to stream with `streamed_images`."""
    index = _unpacked(root)
    if index:
        return lambda name: ImageSource(path=str(index.get(name, root / "images" / name)), mode="L"), []
    zips = ReleaseTree.in_zips(root, ZIP_GLOBS)
    if zips.members:
        return lambda name: replace(zips.image(name), mode="L"), []
    archives = sorted({*root.glob("images_*.tar.gz"), *root.glob("images/images_*.tar.gz")}, key=lambda p: p.name)
    if not archives:
        raise SourceError(f"{root}: no PNG images under images/ or images_*/images/, and no images_NNN.tar.gz "
                          "or images_NNN.zip")
    return None, archives


def streamed_images(archives: list[Path], names: list[str], ordered: bool = False
                    ) -> Iterator[tuple[str, bytes] | Reject]:
    """(file name, PNG bytes) for each of `names` in the tarballs, in archive order (`ordered`: in the order of
    `names`, the images waiting on disk until the stream ends; for a few); a name in none of them
    is a `missing_image` Reject (what the unpacked build rejects it as), a broken tarball a
    `truncated_archive` one."""
    for item in join_archives(archives, {n: (n,) for n in names}, (".png",), ordered):
        if isinstance(item, Missing):
            yield Reject(item.key.removesuffix(".png"), "missing_image",
                         f"{item.key}: in none of the {len(archives)} images_NNN.tar.gz archives")
        elif isinstance(item, Reject):
            yield item
        else:
            yield item[0], item[1][0]


def _unpacked(root: Path) -> dict[str, Path]:
    """file name -> path for `images/` and Kaggle's `images_0NN/images/` folders (sorted, first wins)."""
    index: dict[str, Path] = {}
    candidates = [root / "images"] + sorted(root.glob("images_*/images")) + sorted(root.glob("images_*"))
    for d in candidates:
        if not d.is_dir():
            continue
        for name in sorted(os.listdir(d)):
            if name.endswith(".png"):
                index.setdefault(name, d / name)
    return index
