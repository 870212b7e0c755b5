"""MEDPIX-ClinQA (HF `adishourya/MEDPIX-ClinQA`, apache-2.0): ~20.5k clinical questions and long-form answers
about MedPix 2.0 images ("10 questions per image"); plus the MedPix 2.0 image captions themselves
(`CHILab1/MedPix-2.0`, Siragusa et al., 2025; 671 CT/MR cases, 2,050 images; no LICENSE file).

Files read (either or both may be under `--input`):
- ClinQA: `data/train-*.parquet` with `image_id` (an HF Image cell, not a string), `mode`, `case_id`,
  `question`, `answer` -> one `vqa` sample per row. MedMO used the *answers* as long report targets under
  random report prompts; here the question stays the prompt (the text as published).
- MedPix 2.0 (`MedPix-2-0/` or the root): `Descriptions.json` (per image: `Type` CT|MR, `U_id`, `image`
  without extension, `Description.Caption`, `.Modality`, `.Plane`) and `images/<image>.png` -> one `caption`
  sample per image with a non-empty caption. Splits from `splitted_dataset/descriptions_{train,dev,test}.jsonl`
  (dev -> val); images in none of them are rejected `no_split`.
Splits for ClinQA: the release has one `train` split; when the MedPix 2.0 `splitted_dataset/data_{dev,test}.jsonl`
are present, rows whose `case_id` is a dev/test case (`U_id`) follow it, so no test case is trained on.
Traps: absent vs null keys, `\u2022` bullets and blank lines inside text (kept), one-word captions
("pelvis"), CT spelled `TAC` in Case_topic.json and `CT` in Descriptions.json.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from medmo_data.families.reports import caption_messages
from medmo_data.formats.tables import clean, hf_image, iter_jsonl, iter_parquet, load_json, vqa_messages
from medmo_data.recipe import ImageSource, RawSample, Reject, SourceError, SourceInfo

INFO = SourceInfo(
    name="medpix_clinqa", title="MEDPIX-ClinQA + MedPix 2.0 captions", stages=(2,), tasks=("vqa", "caption"),
    modality="mixed", access="open", license="Apache-2.0 (ClinQA); MedPix 2.0 licence unstated",
    homepage="https://huggingface.co/datasets/adishourya/MEDPIX-ClinQA",
    citation="Siragusa et al., MedPix 2.0: A Comprehensive Multimodal Biomedical Data Set for Advanced AI "
             "Applications with Retrieval Augmented Generation and Knowledge Graphs, arXiv 2407.02994",
    image_format="png",
)
HUB_PATTERNS = ["data/*.parquet", "*.md"]
SPLITS = {"train": "train", "dev": "val", "test": "test"}
MODALITY = {"CT": "ct", "TAC": "ct", "MR": "mri", "MRI": "mri"}


def _medpix_dir(root: Path) -> Path | None:
    for d in (root / "MedPix-2-0", root):
        if (d / "Descriptions.json").exists():
            return d
    return None


def _case_splits(mp: Path | None) -> dict[str, str]:
    """U_id -> val/test from splitted_dataset/data_{dev,test}.jsonl (cases elsewhere are train)."""
    out: dict[str, str] = {}
    for name in ("dev", "test"):
        p = mp / "splitted_dataset" / f"data_{name}.jsonl" if mp else None
        if p is None or not p.exists():
            continue
        for item in iter_jsonl(p):
            if not isinstance(item, Reject):
                out[clean(item[1].get("U_id"))] = SPLITS[name]
    return out


def _meta(case: str, mode: str, modality: str, plane: str, layout: str) -> dict[str, Any]:
    return {"case": case, "mode": mode, "modality": modality, "plane": plane, "layout": layout}


def _clinqa(files: list[Path], cases: dict[str, str]) -> Iterator[RawSample | Reject]:
    for i, row in enumerate(iter_parquet(files)):  # all columns: `mode` may be absent in later revisions
        rid = f"clinqa-{i:06d}"
        lacking = [c for c in ("image_id", "case_id", "question", "answer") if c not in row]
        if lacking:
            raise SourceError(f"{files[0].parent}: ClinQA parquet lacks column(s) {lacking}; has {sorted(row)}")
        q, a = clean(row["question"]), clean(row["answer"])
        if not q or not a:
            yield Reject(rid, "empty_text", "question or answer is empty")
            continue
        img = hf_image(row["image_id"], rid)
        if isinstance(img, Reject):
            yield img
            continue
        case = clean(row["case_id"])
        yield RawSample(id=rid, split=cases.get(case, "train"), task="vqa", images=[img],
                        messages=vqa_messages(q, a), target={"answer": a},
                        meta=_meta(case, clean(row.get("mode")), "", "", "clinqa"))


def _image_splits(mp: Path) -> dict[str, str] | None:
    folder = mp / "splitted_dataset"
    if not folder.is_dir():
        return None
    out: dict[str, str] = {}
    for name, split in SPLITS.items():
        p = folder / f"descriptions_{name}.jsonl"
        for item in iter_jsonl(p) if p.exists() else []:
            if not isinstance(item, Reject):
                out[clean(item[1].get("image"))] = split
    return out


def _medpix(mp: Path) -> Iterator[RawSample | Reject]:
    splits = _image_splits(mp)
    if splits is None:
        raise SourceError(f"{mp}: missing splitted_dataset/ (descriptions_{{train,dev,test}}.jsonl)")
    for n, d in enumerate(load_json(mp / "Descriptions.json")):
        name = clean(d.get("image")) if isinstance(d, dict) else ""
        if not name:
            yield Reject(f"Descriptions.json[{n}]", "missing_field", "no image name")
            continue
        desc = d.get("Description") or {}
        caption = clean(desc.get("Caption"))
        if not caption:
            yield Reject(name, "empty_text", "Description.Caption is empty or null")
            continue
        if name not in splits:
            yield Reject(name, "no_split", "image is in none of splitted_dataset/descriptions_*.jsonl")
            continue
        yield RawSample(id=name, split=splits[name], task="caption",
                        images=[ImageSource(path=str(mp / "images" / f"{name}.png"))],
                        messages=caption_messages(caption, name), target={"caption": caption},
                        modality=MODALITY.get(clean(d.get("Type")).upper(), "mixed"),
                        meta=_meta(clean(d.get("U_id")), "", clean(desc.get("Modality")), clean(desc.get("Plane")),
                                   "medpix_2_0"))


def records(root: Path, options: dict[str, str]) -> Iterator[RawSample | Reject]:
    mp = _medpix_dir(root)
    files = sorted(root.glob("data/train-*.parquet"))
    if not files and mp is None:
        raise SourceError(f"{root}: no ClinQA data/train-*.parquet and no MedPix 2.0 Descriptions.json")
    if files:
        yield from _clinqa(files, _case_splits(mp))
    if mp is not None:
        yield from _medpix(mp)

