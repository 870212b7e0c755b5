"""DeepLesion: 32,735 lesions on 32,120 CT key slices from 4,427 patients (Yan et al., J. Med. Imaging 2018).

Get it from the NIH Clinical Center box (https://nihcc.app.box.com/v/DeepLesion): `DL_info.csv` and the
56 zips `Images_png_01.zip` ... `Images_png_56.zip` (members `Images_png/<folder>/<slice>.png`), read in
place when there is no unpacked `Images_png/` folder (only the 32,120 key slices are read). Open download; cite the
paper. Read here:
- `DL_info.csv` (18 columns). `File_name` `000001_01_01_109.png` is the folder
  `Images_png/000001_01_01/` + slice `109.png` (split at the LAST underscore).
- slices: 16-bit PNG, HU = stored value - 32768, shown through the row's `DICOM_windows` ("lo, hi").
- `Bounding_boxes`: "x1, y1, x2, y2" counted from 1 (MULAN subtracts 1), 512x512 pixels.
- `Coarse_lesion_type`: 1 bone, 2 abdomen, 3 mediastinum, 4 liver, 5 lung, 6 kidney, 7 soft tissue,
  8 pelvis, -1 unlabeled (every training row) -> label "lesion".
- `Train_Val_Test`: 1 train, 2 val, 3 test (the official split).
Each key slice with all its lesions (one CSV row per lesion) is one grounding sample. Option
`drop_noisy=1` drops lesions flagged `Possibly_noisy` (as MULAN does); by default they are kept and
counted in `meta`. Unreadable PNGs (a few exist in the release) are rejected, not fatal.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from medmo_data.formats.archive import ReleaseTree
from medmo_data.formats.tables import iter_csv
from medmo_data.pixels import boxes
from medmo_data.recipe import RawSample, Reject, SourceError, SourceInfo, require
from medmo_data.render import HINT
from medmo_data.schema import image, objects, turn

INFO = SourceInfo(
    name="deeplesion", title="DeepLesion", stages=(2, 4), tasks=("grounding",), modality="ct", access="open",
    license="NIH-CC open (cite Yan et al. 2018)", homepage="https://nihcc.app.box.com/v/DeepLesion",
    citation="Yan et al., DeepLesion: automated mining of large-scale lesion annotations and universal lesion "
             "detection with deep learning, J. Med. Imaging 2018",
)
LESION_TYPES = {1: "bone", 2: "abdomen", 3: "mediastinum", 4: "liver", 5: "lung", 6: "kidney",
                7: "soft tissue", 8: "pelvis"}
SPLITS = {"1": "train", "2": "val", "3": "test"}
HU_OFFSET = -32768.0
COLUMNS = ["File_name", "Patient_index", "Key_slice_index", "Bounding_boxes", "Coarse_lesion_type",
           "Possibly_noisy", "DICOM_windows", "Train_Val_Test"]
PROMPT = "Find every lesion on this CT slice and name the body region of each. " + HINT


def floats(cell: str, n: int, field: str) -> list[float]:
    vals = [float(v) for v in cell.split(",")]
    if len(vals) != n:
        raise ValueError(f"{field} needs {n} numbers, got {cell!r}")
    return vals


def slice_name(file_name: str) -> str:
    """`000001_01_01_109.png` -> `000001_01_01/109.png` (split at the LAST underscore)."""
    folder, _, slice_file = file_name.rpartition("_")
    return f"{folder}/{slice_file}"


def _grouped(root: Path) -> Iterator[list[tuple[str, dict[str, str]]] | Reject]:
    """Rows grouped by key slice (all lesions of a slice together), in first-seen order of the file."""
    groups: dict[str, list[tuple[str, dict[str, str]]]] = {}
    for item in iter_csv(require(root / "DL_info.csv", "lesion table DL_info.csv"), required=COLUMNS):
        if isinstance(item, Reject):
            yield item
            continue
        groups.setdefault(item[1]["File_name"].strip(), []).append(item)
    yield from groups.values()


def records(root: Path, options: dict[str, str]) -> Iterator[RawSample | Reject]:
    drop_noisy = options.get("drop_noisy", "0") in ("1", "true", "yes")
    require(root / "DL_info.csv", "lesion table DL_info.csv")
    slices = ReleaseTree(root, "Images_png", zips=("Images_png_*.zip",), prefixes=("Images_png/", ""))
    if not slices.found:
        raise SourceError(f"{root}: no Images_png/ folder and no Images_png_NN.zip")
    for group in _grouped(root):
        if isinstance(group, Reject):
            yield group
            continue
        file_name = group[0][1]["File_name"].strip()
        sid = file_name.removesuffix(".png")
        first = group[0][1]
        try:
            lo, hi = floats(first["DICOM_windows"], 2, "DICOM_windows")
            objs, noisy = [], 0
            for _, row in group:
                if row["Possibly_noisy"].strip() == "1":
                    noisy += 1
                    if drop_noisy:
                        continue
                lesion_type = int(float(row["Coarse_lesion_type"]))
                label = LESION_TYPES.get(lesion_type, "lesion")
                box = boxes.from_one_based(*floats(row["Bounding_boxes"], 4, "Bounding_boxes"))
                objs.append({"image": 0, "label": label, "bbox": box})
        except ValueError as exc:
            yield Reject(sid, "malformed_csv", f"DL_info.csv {file_name}: {exc}")
            continue
        split = SPLITS.get(first["Train_Val_Test"].strip())
        if split is None:
            yield Reject(sid, "bad_split", f"Train_Val_Test {first['Train_Val_Test']!r}")
            continue
        if not objs:
            yield Reject(sid, "no_objects", "every lesion of the slice was flagged Possibly_noisy")
            continue
        yield RawSample(
            id=sid, split=split, task="grounding",
            images=[replace(slices.image(slice_name(file_name)), kind="png16", window=(lo, hi),
                            value_offset=HU_OFFSET, mode="L")],
            messages=[turn("user", image(), PROMPT), turn("assistant", objects())],
            objects=objs,
            target={"labels": sorted({o["label"] for o in objs})},
            meta={"patient_index": int(first["Patient_index"]), "key_slice_index": int(first["Key_slice_index"]),
                  "lesions": len(group), "noisy_lesions": noisy},
        )
