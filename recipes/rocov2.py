"""ROCOv2 (Rückert et al., Sci. Data 2024, arXiv 2405.10004): 79,789 radiology figures from PMC Open Access with
captions and UMLS concepts (the ImageCLEFmedical 2023/2024 caption task data). Image captioning.

Two layouts:
1. Zenodo release: `{train,valid,test}_captions.csv` (`ID,Caption`), optional `{split}_concepts_manual.csv`
   or `{split}_concepts.csv` (`ID,CUIs`, `;`-separated) and the images from `{split}_images.zip`, unzipped
   (`<split>/<ID>.jpg`; some mirrors nest `<split>_images/<split>/<ID>.jpg`) or read in place (members under
   `<split>/`, `<split>_images/<split>/` or at the top: the member prefix is UNVERIFIED). 59,958 / 9,904 / 9,927.
2. Hugging Face `eltorio/ROCOv2-radiology` (what MedMO read): `data/{train,validation,test}-*.parquet` with
   `image, image_id, caption, cui` (a list).
Licence CC BY-NC-SA 4.0 (HF card; Zenodo terms UNVERIFIED). Splits as published (valid/validation -> val).
Captions keep their text; missing image files are rejected `missing_image` by the library.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from medmo_data.families.reports import caption_messages, hub_captions
from medmo_data.formats.archive import ReleaseTree
from medmo_data.formats.tables import clean, hf_splits, iter_csv
from medmo_data.recipe import RawSample, Reject, SourceError, SourceInfo

INFO = SourceInfo(
    name="rocov2", title="ROCOv2", stages=(2,), tasks=("caption",), modality="mixed", access="open",
    license="CC-BY-NC-SA-4.0", homepage="https://zenodo.org/records/10821435",
    citation="Rückert et al., ROCOv2: Radiology Objects in COntext Version 2, an Updated Multimodal Image "
             "Dataset, Sci. Data 2024",
    image_format="jpg",
)
HUB_PATTERNS = ["data/*.parquet", "*.md"]
SPLITS = {"train": "train", "valid": "val", "test": "test"}


def _concepts(root: Path, theirs: str) -> dict[str, list[str]]:
    for name in (f"{theirs}_concepts_manual.csv", f"{theirs}_concepts.csv"):
        if (root / name).exists():
            return {row["ID"]: [c for c in row["CUIs"].split(";") if c]
                    for item in iter_csv(root / name, required=["ID", "CUIs"]) if not isinstance(item, Reject)
                    for row in [item[1]]}
    return {}


def _image_tree(root: Path, theirs: str) -> ReleaseTree:
    """The split's unpacked image folder, else its `{split}_images.zip` read in place."""
    for d in (theirs, f"{theirs}_images/{theirs}", f"{theirs}_images"):
        if (root / d).is_dir():
            return ReleaseTree(root, d)
    return ReleaseTree(root, theirs, zips=(f"{theirs}_images.zip",),
                       prefixes=(f"{theirs}/", f"{theirs}_images/{theirs}/", f"{theirs}_images/", ""))


def _zenodo(root: Path) -> Iterator[RawSample | Reject]:
    for theirs, split in SPLITS.items():
        path = root / f"{theirs}_captions.csv"
        if not path.exists():
            continue
        cuis = _concepts(root, theirs)
        images = _image_tree(root, theirs)
        for item in iter_csv(path, required=["ID", "Caption"]):
            if isinstance(item, Reject):
                yield item
                continue
            _, row = item
            sid, caption = clean(row["ID"]), clean(row["Caption"])
            if not sid or not caption:
                yield Reject(sid or item[0], "empty_text", "ID or Caption is empty")
                continue
            yield RawSample(id=sid, split=split, task="caption", images=[images.image(f"{sid}.jpg")],
                            messages=caption_messages(caption, sid), target={"caption": caption},
                            meta={"cuis": cuis.get(sid, [])})


def records(root: Path, options: dict[str, str]) -> Iterator[RawSample | Reject]:
    if any((root / f"{s}_captions.csv").exists() for s in SPLITS):
        yield from _zenodo(root)
    elif files := hf_splits(root, {"train": "train", "val": "validation", "test": "test"}):
        yield from hub_captions(files, extra=lambda row: {"cuis": [clean(c) for c in (row.get("cui") or [])]},
                                more_columns=("cui",))
    else:
        raise SourceError(f"{root}: no {{train,valid,test}}_captions.csv and no HF data/{{train,validation,test}}-*.parquet")
