"""ROCO (Radiology Objects in COntext; Pelka et al., LABELS/CVII-STENT 2018): ~81k radiology figures from the PubMed
Central Open Access subset with their captions. Image captioning.

Two layouts:
1. The authors' repository `razorx89/roco-dataset`: `data/{train,validation,test}/{radiology,non-radiology}/`
   with tab-separated `captions.txt` (`ROCO_00020<TAB> Axial computed ...`: a space after the tab),
   `cuis.txt` (`id<TAB><TAB>C...<TAB>C...`), `licences.txt` (CSV `ROCO_ID,PMC_ID,CC`) and the images that
   `scripts/fetch.py` downloads to `images/ROCO_xxxxx.jpg` beside them. Figures whose download failed are
   rejected `missing_image` by the library. `--option subset=radiology` (default, what MedMO used),
   `non-radiology` or `all`.
2. Hugging Face `eltorio/ROCO-radiology` (what MedMO read): `data/{train,validation,test}-*.parquet` with
   `image, image_id, caption` (65,423 / 8,175 / 8,176 rows).
Licence: per figure, the CC licence in `licences.txt` (kept in `meta.licence`; "NO-CC CODE" rows exist);
the HF copy says MIT. Captions keep their non-ASCII characters (en dashes); only the leading space is
stripped. Splits: train / validation -> val / test as published.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from medmo_data.families.reports import caption_messages, hub_captions
from medmo_data.formats.tables import check_regular, hf_splits
from medmo_data.recipe import ImageSource, RawSample, Reject, SourceError, SourceInfo

INFO = SourceInfo(
    name="roco", title="ROCO (Radiology Objects in COntext)", stages=(2,), tasks=("caption",), modality="mixed",
    access="open", license="per-figure CC licence (licences.txt); HF copy: MIT",
    homepage="https://github.com/razorx89/roco-dataset",
    citation="Pelka et al., Radiology Objects in COntext (ROCO): A Multimodal Image Dataset, LABELS 2018",
    image_format="jpg",
)
HUB_PATTERNS = ["data/*.parquet", "*.md"]
SPLITS = {"train": "train", "validation": "val", "test": "test"}
SUBSETS = {"radiology": ("radiology",), "non-radiology": ("non-radiology",), "all": ("radiology", "non-radiology")}


def _tab_lines(path: Path) -> Iterator[tuple[int, list[str]] | Reject]:
    """(line number, tab-separated fields) of a ROCO .txt file; non-UTF-8 lines become Rejects."""
    check_regular(path)  # a FIFO would block open()
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                yield Reject(f"{path.parent.parent.name}/{path.parent.name}/{path.name}:{n}", "non_utf8_text",
                             f"{path}:{n}: byte {exc.start}")
                continue
            if line.strip():
                yield n, line.split("\t")


def _side_tables(folder: Path) -> tuple[dict[str, list[str]], dict[str, tuple[str, str]]]:
    cuis: dict[str, list[str]] = {}
    if (folder / "cuis.txt").exists():
        for item in _tab_lines(folder / "cuis.txt"):
            if not isinstance(item, Reject):
                cuis[item[1][0]] = [c for c in item[1][1:] if c]
    lic: dict[str, tuple[str, str]] = {}
    if (folder / "licences.txt").exists():
        with open(folder / "licences.txt", encoding="utf-8", errors="replace", newline="") as f:
            for row in csv.DictReader(f):
                lic[row.get("ROCO_ID", "")] = (row.get("PMC_ID", ""), row.get("CC", ""))
    return cuis, lic


def _repo(data: Path, subsets: tuple[str, ...]) -> Iterator[RawSample | Reject]:
    for theirs, split in SPLITS.items():
        for subset in subsets:
            folder = data / theirs / subset
            if not (folder / "captions.txt").exists():
                continue
            cuis, lic = _side_tables(folder)
            for item in _tab_lines(folder / "captions.txt"):
                if isinstance(item, Reject):
                    yield item
                    continue
                n, fields = item
                rid = fields[0].strip()
                if len(fields) < 2 or not rid:
                    yield Reject(f"{theirs}/{subset}/captions.txt:{n}", "malformed_line", "expected id<TAB>caption")
                    continue
                caption = "\t".join(fields[1:]).strip()
                if not caption:
                    yield Reject(rid, "empty_text", "caption is empty")
                    continue
                pmc, cc = lic.get(rid, ("", ""))
                yield RawSample(id=rid, split=split, task="caption",
                                images=[ImageSource(path=str(folder / "images" / f"{rid}.jpg"))],
                                messages=caption_messages(caption, rid), target={"caption": caption},
                                meta={"subset": subset, "pmc_id": pmc, "licence": cc, "cuis": cuis.get(rid, [])})


def records(root: Path, options: dict[str, str]) -> Iterator[RawSample | Reject]:
    subset = options.get("subset", "radiology")
    if subset not in SUBSETS:
        raise SourceError(f"--option subset={subset!r}: expected one of {sorted(SUBSETS)}")
    data = root / "data" if (root / "data" / "train").is_dir() or (root / "data" / "validation").is_dir() else root
    if any((data / s).is_dir() for s in SPLITS):
        yield from _repo(data, SUBSETS[subset])
    elif files := hf_splits(root, {"train": "train", "val": "validation", "test": "test"}):
        yield from hub_captions(files, extra=lambda row: {"subset": "radiology", "pmc_id": "", "licence": "",
                                                          "cuis": []})
    else:
        raise SourceError(f"{root}: no data/{{train,validation,test}}/<subset>/captions.txt and no HF "
                          "data/{train,validation,test}-*.parquet")
