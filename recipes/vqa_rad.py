"""VQA-RAD: 3,515 clinician-written questions on 315 radiology images (Lau et al., Sci. Data 2018).

Get it from OSF (https://osf.io/89kps): `VQA_RAD Dataset Public.json` + `VQA_RAD Image Folder/synpicNNNNN.jpg`.
Also read: the MEVF re-packaging (`trainset.json`, `testset.json`, `images/`) and the Hugging Face
re-packaging `flaviagiammarino/vqa-rad` (`data/{train,test}-*.parquet`: image, question, answer).
Licence CC0-1.0. Test questions are marked by `phrase_type` `test_freeform` / `test_para` in the OSF file;
paraphrases are linked by `qid_linked_id`, so a whole linked group follows its test member into test
(no paraphrase of a test question is ever trained on). Integer answers become text; `answer_type`
("CLOSED", "OPEN", with stray spaces) goes into `target`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from medmo_data.formats.tables import clean, hf_image, hf_splits, iter_parquet, load_json, vqa_messages
from medmo_data.recipe import ImageSource, RawSample, Reject, SourceError, SourceInfo

INFO = SourceInfo(
    name="vqa_rad", title="VQA-RAD", stages=(2,), tasks=("vqa",), modality="mixed", access="open",
    license="CC0-1.0", homepage="https://osf.io/89kps",
    citation="Lau et al., A dataset of clinically generated visual questions and answers about radiology "
             "images, Sci. Data 2018",
    image_format="jpg",
)
HUB_PATTERNS = ["data/*.parquet", "*.md"]
OSF_JSON = "VQA_RAD Dataset Public.json"
OSF_IMAGES = "VQA_RAD Image Folder"


def _answer_type(value: Any, answer: str) -> str:
    t = clean(value).lower()
    if t in ("closed", "open"):
        return t
    return "closed" if answer.lower() in ("yes", "no") else "open"


def _sample(qid: str, split: str, question: str, answer: Any, answer_type: Any, img: ImageSource,
            meta: dict[str, Any]) -> RawSample | Reject:
    q, a = clean(question), clean(answer)
    if not q or not a:
        return Reject(qid, "empty_text", "question or answer is empty")
    return RawSample(
        id=qid, split=split, task="vqa", images=[img], messages=vqa_messages(q, a),
        target={"answer": a, "answer_type": _answer_type(answer_type, a)}, meta=meta,
    )


def _official(root: Path, records: list[dict[str, Any]], images: Path) -> Iterator[RawSample | Reject]:
    test_groups: set[str] = set()
    for r in records:
        if str(r.get("phrase_type", "")).strip().lower().startswith("test"):
            test_groups.add(str(r.get("qid_linked_id") or r.get("qid")))
    for r in records:
        qid = clean(r.get("qid"))
        if not qid:
            yield Reject(repr(r)[:80], "missing_field", "record has no qid")
            continue
        group = str(r.get("qid_linked_id") or r.get("qid"))
        phrase = clean(r.get("phrase_type")).lower()
        split = "test" if phrase.startswith("test") or group in test_groups else "train"
        name = clean(r.get("image_name"))
        if not name:
            yield Reject(qid, "missing_field", "image_name is empty")
            continue
        meta = {"image_name": name, "organ": clean(r.get("image_organ")),
                "question_type": clean(r.get("question_type")), "phrase_type": phrase,
                "linked_id": group}
        yield _sample(qid, split, r.get("question"), r.get("answer"), r.get("answer_type"),
                      ImageSource(path=str(images / name)), meta)


def _hub(files: dict[str, list[Path]]) -> Iterator[RawSample | Reject]:
    for split in ("train", "test"):
        for i, row in enumerate(iter_parquet(files.get(split, []), ["image", "question", "answer"])):
            rid = f"{split}-{i:05d}"
            img = hf_image(row["image"], rid)
            if isinstance(img, Reject):
                yield img
                continue
            yield _sample(rid, split, row["question"], row["answer"], None, img,
                          {"image_name": "", "organ": "", "question_type": "", "phrase_type": "", "linked_id": ""})


def records(root: Path, options: dict[str, str]) -> Iterator[RawSample | Reject]:
    if (root / OSF_JSON).exists():
        yield from _official(root, load_json(root / OSF_JSON), root / OSF_IMAGES)
    elif (root / "trainset.json").exists():
        images = root / "images"
        for split, fname in (("train", "trainset.json"), ("test", "testset.json")):
            if (root / fname).exists():
                recs = load_json(root / fname)
                if split == "test":
                    for r in recs:
                        r["phrase_type"] = "test_" + str(r.get("phrase_type", ""))
                yield from _official(root, recs, images)
    elif files := hf_splits(root, {"train": "train", "test": "test"}):
        yield from _hub(files)
    else:
        raise SourceError(f"{root}: no '{OSF_JSON}', MEVF trainset.json or HF data/*.parquet found")
