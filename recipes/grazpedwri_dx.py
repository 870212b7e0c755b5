"""GRAZPEDWRI-DX: 20,327 paediatric wrist radiographs of 6,091 patients with boxes for fractures and
seven other findings (Nagy et al., Sci. Data 2022).

Get it from figshare (article 14825193). Licence CC BY 4.0 (paper). Files read:
- `dataset.csv` (`filestem,patient_id,study_number,timehash,gender,age,laterality,projection,...`);
- `images_part1/` ... `images_part4/<filestem>.png` as the four figshare image zips unpack (the folder names
  public preparation scripts read), or one merged `images/` folder, or the zips themselves left packed
  (`images_part*.zip`, names as the folders suggest, UNVERIFIED; members looked up by file name, in place);
  PNGs are found by file stem anywhere below these folders (grey PNG; 8- and 16-bit both accepted: 8-bit
  passes through, 16-bit is scaled by its own min/max);
- `folder_structure/yolov5/labels/<filestem>.txt`, YOLO `class cx cy w h` normalised, classes from
  `folder_structure/yolov5/meta.yaml` when present, else the 9 classes of every public YAML, in order:
  boneanomaly, bonelesion, foreignbody, fracture, metal, periostealreaction, pronatorsign, softtissue, text.
Labels: the YOLO class names are compact ids (`periostealreaction`, `softtissue`, ...); answers and
`target.labels` use the words the prompt uses (`DISPLAY`: "periosteal reaction", "soft-tissue swelling", ...).
Traps handled: class 8 `text` marks burned-in markers, not a finding, so its boxes never enter a sample
(counted in `meta.text_boxes`); the file stem encodes `{patient:04d}_{timehash:010d}_{study:02d}_WRI-
{L|R}{projection}_{M|F}{age:03d}` and is parsed for side, view and age; there is no official split, so
patients are hashed 80/10/10 into train/val/test (all images of a patient share a split). An image whose
label file exists but holds no finding is a real negative ("no fracture, no anomaly") and is kept with the
answer `None found.`; a MISSING label file is rejected (`missing_labels`), it may just be unannotated.
Labels (`-o labels=yolo|supervisely`; default the YOLO folder when present, else the Supervisely one):
MedMO read the Supervisely JSON export of the same boxes, `folder_structure/supervisely/wrist/ann/
<filestem>.json` (the name two public loaders of the real export read; Supervisely's usual `<image
name>.json`, `<filestem>.png.json`, is accepted too; any `folder_structure/supervisely/*/ann/` is looked
in): `objects[]` with `classTitle` and `points.exterior` (rectangles, lines, polygons), box = min/max of
the points (what MedMO did). Class titles are the YOLO ids in lower case (`fracture`, `metal`,
`periostealreaction`, ..., as those loaders compare them), matched ignoring case, spaces, `_` and `-`;
`text` markers and the `axis` lines MedMO skipped never enter a sample; any other title is an
`unknown_label` reject. The export also holds the images, `folder_structure/supervisely/wrist/img/
<filestem>.png`: used when there is no `images*` folder or zip. `folder_structure.zip` left packed is read
in place (members under `folder_structure/` or at the top), labels and images alike.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path

from medmo_data.families import yolo
from medmo_data.formats.archive import ReleaseTree
from medmo_data.formats.tables import FileRefused, iter_csv
from medmo_data.pixels import boxes
from medmo_data.recipe import ImageSource, RawSample, Reject, SourceError, SourceInfo, require
from medmo_data.render import HINT, NO_OBJECTS
from medmo_data.schema import image, objects, turn

INFO = SourceInfo(
    name="grazpedwri_dx", title="GRAZPEDWRI-DX", stages=(2, 4), tasks=("grounding",), modality="xray",
    access="open", license="CC-BY-4.0", homepage="https://doi.org/10.6084/m9.figshare.14825193",
    citation="Nagy et al., A pediatric wrist trauma X-ray dataset (GRAZPEDWRI-DX) for machine learning, "
             "Sci. Data 2022",
)
CLASSES = ["boneanomaly", "bonelesion", "foreignbody", "fracture", "metal", "periostealreaction",
           "pronatorsign", "softtissue", "text"]
NOT_FINDINGS = {"text", "axis"}  # burned-in markers; the Supervisely export's bone-axis lines
# YOLO class id -> the words a model should say (and the prompt lists).
DISPLAY = {"boneanomaly": "bone anomaly", "bonelesion": "bone lesion", "foreignbody": "foreign body",
           "fracture": "fracture", "metal": "metal", "periostealreaction": "periosteal reaction",
           "pronatorsign": "pronator sign", "softtissue": "soft-tissue swelling"}
FOLDER = "folder_structure"  # unpacked, or folder_structure.zip read in place
LABELS = "yolov5/labels"
SUPERVISELY = re.compile(r"^supervisely/[^/]+/(ann|img)/([^/]+)$")
Found = list[tuple[str, list[float]]]  # (class id as in CLASSES, XYXY box in source pixels) per labelled object
IMAGE_DIRS = ("images", "images_part*")
IMAGE_ZIPS = ("images_part*.zip", "images.zip")  # left packed: members looked up by file name, in place
STEM = re.compile(r"^(\d{4})_(\d{10})_(\d{2})_WRI-([LR])([12])_([MF])(\d{3})$")
PROMPT = ("Locate every finding in this paediatric wrist radiograph (" + ", ".join(
    DISPLAY[c] for c in ("fracture", "boneanomaly", "bonelesion", "foreignbody", "metal", "periostealreaction",
                         "pronatorsign", "softtissue")) + ") and name each. " + HINT)


def patient_split(patient: str, val_pct: int = 10, test_pct: int = 10) -> str:
    """Stable patient -> split assignment (no official split exists)."""
    h = int(hashlib.sha1(f"grazpedwri-{int(patient)}".encode()).hexdigest()[:8], 16) % 100
    return "test" if h < test_pct else "val" if h < test_pct + val_pct else "train"


def _age(cell: str | None, from_stem: str) -> float:
    """`age` in float years from the CSV; the stem's whole years when the cell is empty or odd."""
    try:
        return float(cell) if cell and cell.strip() else float(from_stem)
    except ValueError:
        return float(from_stem)


def label_tree(root: Path) -> ReleaseTree:
    """`folder_structure/`, unpacked or as `folder_structure.zip` (its own top folder or none)."""
    return ReleaseTree(root, FOLDER, prefixes=(f"{FOLDER}/", ""))


def class_names(tree: ReleaseTree) -> list[str]:
    meta = "yolov5/meta.yaml"
    return yolo.read_names(Path(tree.where(meta)), tree.read_bytes(meta)) if tree.exists(meta) else CLASSES


def image_index(root: Path) -> dict[str, Path]:
    """file stem -> PNG under `images/` or `images_part1..4/` (any depth; sorted, first wins)."""
    index: dict[str, Path] = {}
    for pattern in IMAGE_DIRS:
        for folder in sorted(p for p in root.glob(pattern) if p.is_dir()):
            for png in sorted(folder.rglob("*.png")):
                index.setdefault(png.stem, png)
    return index


def _yolo_objects(tree: ReleaseTree, stem: str, img: ImageSource, names: list[str]) -> Found:
    width, height = yolo.image_size(Path(img.path or f"{stem}.png"), img.data)
    rel = f"{LABELS}/{stem}.txt"
    if tree.members:  # folder_structure.zip
        if not tree.exists(rel):
            raise yolo.YoloError("missing_labels", f"{tree.where(rel)} does not exist")
        found = yolo.parse_labels(_utf8(tree, rel), width, height, tree.where(rel))
    else:
        found = yolo.read_labels(tree.dir / rel, width, height)
    unknown = [b.cls for b in found if b.cls >= len(names)]
    if unknown:
        raise yolo.YoloError("unknown_label", f"class id {unknown[0]} outside the {len(names)} classes")
    return [(names[b.cls], b.bbox) for b in found]


def _utf8(tree: ReleaseTree, rel: str) -> str:
    try:
        return tree.read_bytes(rel).decode("utf-8")
    except FileRefused as exc:
        raise yolo.YoloError(exc.reason, str(exc)) from exc
    except UnicodeDecodeError as exc:
        raise yolo.YoloError("non_utf8_text", f"{tree.where(rel)}: byte {exc.start} is not UTF-8") from exc


def _compact(title: str) -> str:
    return re.sub(r"[\s_\-]+", "", title).lower()


def _supervisely_objects(tree: ReleaseTree, ann: dict[str, str], stem: str) -> Found:
    """Objects of `<stem>.json` (or `<stem>.png.json`) in the first ann folder holding it."""
    rel = ann.get(f"{stem}.json") or ann.get(f"{stem}.png.json")
    if rel is None:
        raise yolo.YoloError("missing_labels", f"no {stem}.json in {tree.where('supervisely/*/ann')}")
    text = _utf8(tree, rel)
    try:
        found = [(str(obj.get("classTitle", "")), boxes.from_points(obj["points"]["exterior"]))
                 for obj in json.loads(text)["objects"]]
    except (ValueError, KeyError, TypeError, AttributeError, boxes.BoxError) as exc:
        raise yolo.YoloError("malformed_label", f"{tree.where(rel)}: not a Supervisely annotation "
                                                f"({type(exc).__name__}: {exc})") from exc
    unknown = [t for t, _ in found if _compact(t) not in CLASSES and _compact(t) not in NOT_FINDINGS]
    if unknown:
        raise yolo.YoloError("unknown_label", f"{tree.where(rel)}: classTitle {unknown[0]!r}")
    return [(_compact(t), b) for t, b in found]


def _export_files(tree: ReleaseTree) -> tuple[dict[str, str], dict[str, str], bool]:
    """The Supervisely export's annotation names (file name -> tree name, first ann folder wins) and images
    (stem -> tree name), and whether the YOLO label folder is there."""
    ann: dict[str, str] = {}
    img: dict[str, str] = {}
    has_yolo = False
    for name in tree.names() if tree.found else []:
        m = SUPERVISELY.match(name)
        if m and m.group(1) == "ann":
            ann.setdefault(m.group(2), name)
        elif m and name.endswith(".png"):
            img.setdefault(m.group(2)[:-4], name)
        has_yolo = has_yolo or name.startswith(f"{LABELS}/")
    return ann, img, has_yolo


def records(root: Path, options: dict[str, str]) -> Iterator[RawSample | Reject]:
    require(root / "dataset.csv", "dataset.csv")
    tree = label_tree(root)
    ann, export_images, has_yolo = _export_files(tree)
    source = options.get("labels", "yolo" if has_yolo or not ann else "supervisely")
    if source not in ("yolo", "supervisely"):
        raise SourceError(f"option labels must be yolo or supervisely, got {source!r}")
    if source == "yolo":
        if not has_yolo:
            raise SourceError(f"{tree.where(LABELS)}: the YOLO label folder is missing (or give -o "
                              "labels=supervisely for the Supervisely export)")
        names = class_names(tree)
    elif not ann:
        raise SourceError(f"{tree.where('supervisely/*/ann')}: no Supervisely annotations (the export MedMO "
                          "read) for labels=supervisely")
    images = image_index(root)
    zips = None if images else ReleaseTree.in_zips(root, IMAGE_ZIPS)
    if zips is not None and not zips.members and not export_images:
        raise SourceError(f"{root}: no PNG under images/ or images_part1/ ... images_part4/ (the unpacked "
                          "figshare image zips), no images_part*.zip and no folder_structure/supervisely/*/img/")

    def image_of(stem: str) -> ImageSource:
        if images:
            return ImageSource(path=str(images.get(stem, root / "images_part1" / f"{stem}.png")))
        if zips is not None and zips.members:
            return zips.image(f"{stem}.png")
        return tree.image(export_images.get(stem, f"supervisely/wrist/img/{stem}.png"))

    val_pct, test_pct = int(options.get("val_pct", 10)), int(options.get("test_pct", 10))
    for item in iter_csv(root / "dataset.csv", required=["filestem", "patient_id"]):
        if isinstance(item, Reject):
            yield item
            continue
        rid, row = item
        stem = row["filestem"].strip()
        m = STEM.match(stem)
        if not m:
            yield Reject(stem or rid, "bad_filename", f"{rid}: filestem {stem!r} does not match the naming scheme")
            continue
        if row["patient_id"].strip() != str(int(m.group(1))) and row["patient_id"].strip() != m.group(1):
            yield Reject(stem, "bad_filename", f"{rid}: stem patient {m.group(1)} != patient_id {row['patient_id']}")
            continue
        img = image_of(stem)
        try:
            found = _yolo_objects(tree, stem, img, names) if source == "yolo" else _supervisely_objects(tree, ann, stem)
        except yolo.YoloError as exc:
            yield Reject(stem, exc.reason, exc.detail)
            continue
        objs = [{"image": 0, "label": DISPLAY.get(c, c), "bbox": b} for c, b in found if c not in NOT_FINDINGS]
        answer = turn("assistant", objects()) if objs else turn("assistant", NO_OBJECTS)
        yield RawSample(
            id=stem, split=patient_split(m.group(1), val_pct, test_pct), task="grounding",
            images=[img],
            messages=[turn("user", image(), PROMPT), answer],
            objects=objs, target={"labels": sorted({o["label"] for o in objs})},
            meta={"patient": int(m.group(1)), "study": int(m.group(3)), "side": m.group(4),
                  "view": int(m.group(5)), "gender": m.group(6), "age": _age(row.get("age"), m.group(7)),
                  "ao_classification": (row.get("ao_classification") or "").strip(),
                  "text_boxes": sum(c == "text" for c, _ in found)},
        )
