"""PathVQA: ~32.8K questions on ~5K pathology images from textbooks and PEIR (He et al., arXiv 2003.10286).

Get it from `UCSD-AI4H/PathVQA` (Google Drive `pvqa/`) or the Hugging Face re-packaging
`flaviagiammarino/path-vqa` (MedMO built its training JSON from the latter). Licence: MIT (HF card); image
copyright stays with the publishers / PEIR.
Files read, original release (input = `pvqa/` or its parent):
- `qas/{train,val,test}/{split}_qa.pkl`: a pickled list of `{'image': 'val_0261', 'question', 'answer'}`;
  images `images/{split}/<image>.jpg`. A pickle is code, not data: it is read with
  `medmo_data.formats.safe_pickle` (a whitelist interpreter that never unpickles; anything but plain data is refused
  with exit 2). To convert once, explicitly, run
  `python -m medmo_data.formats.safe_pickle pvqa/qas/train/train_qa.pkl pvqa/qas/train/train_qa.json`; a
  `{split}_qa.json` next to the pickle (same list of dicts) is then read instead, with no pickle involved.
- HF: `data/{train,validation,test}-*.parquet` (`image` {bytes, path}, `question`, `answer`); its processing
  already dropped duplicates, lower-cased and renamed images, so ids are `{split}-{row}`.
Splits: train / val (`validation` on HF) / test; test is the benchmark (MedEvalKit), never train.
Traps: exact duplicate triplets in the raw pickles (rejected as `duplicate_qa`); about half the answers are
yes/no (`target["answer_type"]` says which).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from medmo_data.formats.safe_pickle import load_path
from medmo_data.formats.tables import clean, hf_image, hf_splits, iter_parquet, load_json, vqa_messages
from medmo_data.recipe import ImageSource, RawSample, Reject, SourceError, SourceInfo

INFO = SourceInfo(
    name="path_vqa", title="PathVQA", stages=(2,), tasks=("vqa",), modality="pathology", access="open",
    license="MIT", homepage="https://github.com/UCSD-AI4H/PathVQA",
    citation="He et al., PathVQA: 30000+ Questions for Medical Visual Question Answering, arXiv 2003.10286",
    image_format="jpg",
    notes="image copyright remains with the textbook publishers / PEIR",
)
HUB_PATTERNS = ["data/*.parquet", "*.md"]
SPLITS = (("train", "train"), ("val", "val"), ("test", "test"))


def _answer_type(answer: str) -> str:
    return "yes/no" if answer.lower() in ("yes", "no") else "other"


def _sample(sid: str, split: str, q: Any, a: Any, img: ImageSource, image_id: str) -> RawSample | Reject:
    question, answer = clean(q), clean(a)
    if not question or not answer:
        return Reject(sid, "empty_text", "question or answer is empty")
    return RawSample(id=sid, split=split, task="vqa", images=[img], messages=vqa_messages(question, answer),
                     target={"answer": answer, "answer_type": _answer_type(answer)},
                     meta={"image_id": image_id})


def _qa_list(qas: Path, raw: str) -> list[Any] | None:
    """The split's QA list: the explicit JSON conversion if present, else the pickle read safely."""
    js, pkl = qas / raw / f"{raw}_qa.json", qas / raw / f"{raw}_qa.pkl"
    if js.exists():
        data = load_json(js)
    elif pkl.exists():
        data = load_path(pkl)
    else:
        return None
    if not isinstance(data, list):
        raise SourceError(f"{js if js.exists() else pkl}: expected a list of QA dicts, got {type(data).__name__}")
    return data


def _original(base: Path) -> Iterator[RawSample | Reject]:
    for split, raw in SPLITS:
        data = _qa_list(base / "qas", raw)
        if data is None:
            continue
        seen: set[tuple[str, str, str]] = set()
        for i, r in enumerate(data):
            sid = f"{raw}_qa-{i:06d}"
            if not isinstance(r, dict) or not clean(r.get("image")):
                yield Reject(sid, "missing_field", f"{raw}_qa item {i} has no image id")
                continue
            image_id = clean(r["image"])
            key = (image_id, clean(r.get("question")), clean(r.get("answer")))
            if key in seen:
                yield Reject(sid, "duplicate_qa", f"repeats image {image_id!r} question {key[1]!r}")
                continue
            seen.add(key)
            img = ImageSource(path=str(base / "images" / raw / f"{image_id}.jpg"))
            yield _sample(sid, split, r.get("question"), r.get("answer"), img, image_id)


def _hub(files: dict[str, list[Path]]) -> Iterator[RawSample | Reject]:
    for split in ("train", "val", "test"):
        for i, row in enumerate(iter_parquet(files.get(split, []), ["image", "question", "answer"])):
            sid = f"{split}-{i:06d}"
            img = hf_image(row["image"], sid)
            if isinstance(img, Reject):
                yield img
                continue
            name = row["image"].get("path") if isinstance(row["image"], dict) else None
            yield _sample(sid, split, row["question"], row["answer"], img, clean(name))


def records(root: Path, options: dict[str, str]) -> Iterator[RawSample | Reject]:
    base = root / "pvqa" if (root / "pvqa" / "qas").is_dir() else root
    if (base / "qas").is_dir():
        yield from _original(base)
    elif files := hf_splits(root, {"train": "train", "val": "validation", "test": "test"}):
        yield from _hub(files)
    else:
        raise SourceError(f"{root}: neither pvqa/qas/{{split}}/{{split}}_qa.pkl nor HF data/*.parquet found")
