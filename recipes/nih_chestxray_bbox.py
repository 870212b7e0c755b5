"""NIH ChestX-ray14 boxes: 984 radiologist boxes on 880 frontal chest X-rays (Wang et al., CVPR 2017).

Get it from https://nihcc.app.box.com/v/ChestXray-NIHCC: `BBox_List_2017.csv`, `Data_Entry_2017_v2020.csv`
(or `Data_Entry_2017.csv`), `train_val_list.txt`, `test_list.txt` and `images_001.tar.gz` ...
`images_012.tar.gz`, unpacked into `images/` (Kaggle's `images_0NN/images/` also works) or left packed: the
tarballs are then streamed once and the 880 box images wait in a temporary folder, so samples come out in
the box list's order, as from the unpacked images. A re-packaging's `images_NNN.zip` are read in place too;
from the hub, `alkzar90/NIH-Chest-X-ray-dataset` keeps the same files in `data/` (the name of its box list
is UNVERIFIED: the build stops if it is not `BBox_List_2017.csv`). Usage is unrestricted with a link,
acknowledgement of the NIH Clinical Center and a citation.
- `BBox_List_2017.csv`: header `Image Index,Finding Label,Bbox [x,y,w,h],,,`, rows
  `name,label,x,y,w,h` — x, y the top-left corner, in pixels of the 1024x1024 PNG. Read by position.
- The box list spells `Infiltrate`; the label file `Infiltration`. Labels are mapped to the label file's
  14 names (anything else is rejected as `unknown_label`) and written as words (`Pleural_Thickening` ->
  "Pleural Thickening", also in `meta.image_labels`).
- All boxes of one image make one grounding sample.
- Split: in the real release all 880 box images are in `test_list.txt`, so the official lists give no
  training data, while the paper trains on these boxes (stages 2 and 4). Default `split=boxes`: the box
  patients are split 80/10/10 train/val/test by a hash of the Patient ID (patient-disjoint; about 700 of the
  880 images train), and `nih_vqa` gives every image of those patients the same split, so no image or
  patient is train in one NIH source and val/test in the other. `-o split=official` keeps the official lists
  (every box sample is then test, as for a classification benchmark on the official test list).
- A few PNGs are RGBA: every image is converted to 8-bit grey.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from medmo_data.families.chestxray14 import (
    HUB_FILES,
    Entry,
    canonical_label,
    data_entry_path,
    display_label,
    image_files,
    read_data_entry,
    release_root,
    split_assigner,
    streamed_images,
)
from medmo_data.pixels import boxes
from medmo_data.recipe import ImageSource, RawSample, Reject, SourceError, SourceInfo, require
from medmo_data.render import HINT
from medmo_data.schema import image, objects, turn

HUB_PATTERNS = HUB_FILES  # the HF re-packaging's files, shared by both NIH recipes
INFO = SourceInfo(
    name="nih_chestxray_bbox", title="NIH ChestX-ray14 bounding boxes", stages=(2, 4), tasks=("grounding",),
    modality="xray", access="open", license="NIH-CC unrestricted (cite Wang et al. 2017)",
    homepage="https://nihcc.app.box.com/v/ChestXray-NIHCC",
    citation="Wang et al., ChestX-ray8: hospital-scale chest X-ray database and benchmarks, CVPR 2017",
)
PROMPT = "Locate the thoracic findings in this chest X-ray and name each one. " + HINT


def _box_rows(path: Path) -> Iterator[tuple[str, str, list[float]] | Reject]:
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if not header or header[0].strip() != "Image Index":
            raise SourceError(f"{path}: header must start with 'Image Index', got {header}")
        for row in reader:
            rid = f"{path.name}:{reader.line_num}"
            if not row or not any(c.strip() for c in row):
                continue
            if len(row) < 6 or any(c.strip() for c in row[6:]):
                yield Reject(rid, "malformed_csv", f"{path}:{reader.line_num}: expected name,label,x,y,w,h")
                continue
            try:
                xywh = [float(v) for v in row[2:6]]
            except ValueError:
                yield Reject(rid, "malformed_csv", f"{path}:{reader.line_num}: x,y,w,h are not numbers")
                continue
            yield row[0].strip(), row[1].strip(), xywh


def _sample(sid: str, split: str, objs: list[dict[str, Any]], entry: Entry, img: ImageSource) -> RawSample:
    return RawSample(
        id=sid, split=split, task="grounding", images=[img],
        messages=[turn("user", image(), PROMPT), turn("assistant", objects())],
        objects=objs, target={"labels": sorted({o["label"] for o in objs})},
        meta={"patient_id": entry.patient, "follow_up": entry.follow_up, "view": entry.view,
              "image_labels": [display_label(lab) for lab in entry.labels]},
    )


def records(root: Path, options: dict[str, str]) -> Iterator[RawSample | Reject]:
    root = release_root(root)
    box_file = require(root / "BBox_List_2017.csv", "box list BBox_List_2017.csv")
    entries: dict[str, Entry] = {}
    for e in read_data_entry(data_entry_path(root)):
        if isinstance(e, Entry):
            entries[e.image] = e
    split_of = split_assigner(root, options)
    image_of, archives = image_files(root)
    in_archives: dict[str, Any] = {}  # image name -> its sample's parts, while the tarballs stream
    per_image: dict[str, list[tuple[str, list[float]]]] = {}
    for item in _box_rows(box_file):
        if isinstance(item, Reject):
            yield item
            continue
        per_image.setdefault(item[0], []).append((item[1], item[2]))
    for name, rows in per_image.items():
        sid = name.removesuffix(".png")
        entry = entries.get(name)
        if entry is None:
            yield Reject(sid, "not_in_label_file", f"{name} is not in {data_entry_path(root).name}")
            continue
        objs = []
        for label, (x, y, w, h) in rows:
            canon = canonical_label(label)
            if canon is None:
                objs = None
                yield Reject(sid, "unknown_label", f"BBox_List_2017.csv {name}: Finding Label {label!r}")
                break
            objs.append({"image": 0, "label": display_label(canon), "bbox": boxes.from_xywh(x, y, w, h)})
        if objs is None:
            continue
        split = split_of(name, entry.patient)
        if split is None:
            yield Reject(sid, "not_in_split_lists", f"{name} is in neither train_val_list.txt nor test_list.txt")
            continue
        parts = (sid, split, objs, entry)
        if image_of:
            yield _sample(*parts, image_of(name))
        else:
            in_archives[name] = parts
    for item in streamed_images(archives, list(in_archives), ordered=True):
        if isinstance(item, Reject):
            yield item
        else:
            yield _sample(*in_archives.pop(item[0]), ImageSource(data=item[1], mode="L"))
