"""MIMIC-Ext-MIMIC-CXR-VQA: ~377K template questions (48 templates) on MIMIC-CXR chest X-rays
(Bae et al., NeurIPS 2023 Datasets & Benchmarks). CREDENTIALED.

Get it from PhysioNet `mimic-ext-mimic-cxr-vqa/1.0.0` (credentialed access; also needs the MIMIC-CXR-JPG,
Chest ImaGenome and MIMIC-IV data use agreements). Licence: PhysioNet Credentialed Health Data Licence;
never redistribute rows or images. Files read: `mimiccxrvqa/dataset/{train,valid,test}.json` (also accepted
directly under the input folder, and MedMO's own `{train_clean_full,valid_clean,test_clean}.json`), each a
JSON list (or `{"data": [...]}`) of records with `split, idx, subject_id, study_id, image_id, image_path,
question, semantic_type, content_type, template, template_program, template_arguments, answer`.
Images come from MIMIC-CXR-JPG: `image_path` (`pNN/pNNNNNNNN/sNNNNNNNN/<dicom_id>.jpg`) is relative to its
`files/` folder, found as `--option images=DIR`, else `<input>/mimic-cxr-jpg/2.1.0/files`,
`<input>/physionet.org/files/mimic-cxr-jpg/2.1.0/files` or `<input>/files`.
Splits: the file's split (`valid` -> `val`); the test file is a benchmark split, never train.
Traps: `answer` is a LIST: `["yes"]`, `["no"]`, a sorted multi-answer list, or EMPTY (`[]`, a query with
nothing to list). Answers are joined with ", " as MedMO did; an empty list is rejected (`empty_answer`)
unless `--option empty_answer=TEXT` names the text to say instead (MedMO trained on an empty string).
Multi-answer order is alphabetical, not semantic. Subject/study ids are kept in `meta` (needed to keep
splits patient-disjoint downstream); nothing else from MIMIC headers is copied.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from medmo_data.formats.json_stream import iter_json_items, iter_json_objects
from medmo_data.formats.tables import clean, vqa_messages
from medmo_data.recipe import ImageSource, RawSample, Reject, SourceError, SourceInfo

INFO = SourceInfo(
    name="mimic_cxr_vqa", title="MIMIC-Ext-MIMIC-CXR-VQA", stages=(2,), tasks=("vqa",), modality="xray",
    access="credentialed", license="PhysioNet-Credentialed-Health-Data-1.5.0",
    homepage="https://physionet.org/content/mimic-ext-mimic-cxr-vqa/1.0.0/",
    citation="Bae et al., EHRXQA: A Multi-Modal Question Answering Dataset for Electronic Health Records with "
             "Chest X-ray Images, NeurIPS 2023 Datasets and Benchmarks",
    image_format="jpg",
    notes="credentialed PhysioNet data: build locally, never redistribute shards",
)
FILES = {"train": ("train.json", "train_clean_full.json"), "val": ("valid.json", "valid_clean.json"),
         "test": ("test.json", "test_clean.json")}
IMAGE_DIRS = ("mimic-cxr-jpg/2.1.0/files", "physionet.org/files/mimic-cxr-jpg/2.1.0/files",
              "MIMIC-CXR-JPG/physionet.org/files/mimic-cxr-jpg/2.1.0/files", "files")


def _find(root: Path, names: tuple[str, ...]) -> Path | None:
    for folder in (root / "mimiccxrvqa" / "dataset", root / "dataset", root):
        for n in names:
            if (folder / n).is_file():
                return folder / n
    return None


def _image_root(root: Path, options: dict[str, str]) -> Path:
    if options.get("images"):
        p = Path(options["images"])
        if not p.is_dir():
            raise SourceError(f"{p}: --option images is not a folder")
        return p
    for rel in IMAGE_DIRS:
        if (root / rel).is_dir():
            return root / rel
    raise SourceError(f"{root}: no MIMIC-CXR-JPG files/ folder found (tried {', '.join(IMAGE_DIRS)}); "
                      "pass --option images=/path/to/mimic-cxr-jpg/2.1.0/files")


def _records(path: Path) -> Iterator[tuple[str, Any] | Reject]:
    """Array elements, or the elements of a top-level object's `data` list (MedMO's own files)."""
    for item in iter_json_items(path):
        if isinstance(item, Reject):
            yield item
        elif item[0] == "data" and isinstance(item[1], list):
            for i, rec in enumerate(item[1]):
                yield f"{path.name}:{i}", rec
        elif item[0].isdigit():
            yield f"{path.name}:{item[0]}", item[1]


def _answer(value: Any, empty: str | None) -> str | None:
    if isinstance(value, list):
        if not value:
            return empty
        return ", ".join(clean(v) for v in value)
    if value is None:
        return empty
    return clean(value)


def records(root: Path, options: dict[str, str]) -> Iterator[RawSample | Reject]:
    found = {split: _find(root, names) for split, names in FILES.items()}
    if not any(found.values()):
        raise SourceError(f"{root}: no mimiccxrvqa/dataset/{{train,valid,test}}.json found")
    images = _image_root(root, options)
    empty = options.get("empty_answer") or None
    for split, path in found.items():
        if path is None:
            continue
        for item in iter_json_objects(_records(path)):
            if isinstance(item, Reject):
                yield item
                continue
            rid, r = item
            question, rel = clean(r.get("question")), clean(r.get("image_path"))
            if not question or not rel:
                yield Reject(rid, "missing_field", "question or image_path is empty")
                continue
            answer = _answer(r.get("answer"), empty)
            if not answer:
                yield Reject(rid, "empty_answer", f"answer {r.get('answer')!r} is empty")
                continue
            idx = clean(r.get("idx"))
            raw_answer = r.get("answer")
            yield RawSample(
                id=f"{split}-{idx}" if idx else f"{split}-{rid}", split=split, task="vqa",
                images=[ImageSource(path=str(images / rel))], messages=vqa_messages(question, answer),
                target={"answer": answer,
                        "answers": [clean(a) for a in raw_answer] if isinstance(raw_answer, list) else [answer]},
                meta={"subject_id": clean(r.get("subject_id")), "study_id": clean(r.get("study_id")),
                      "image_id": clean(r.get("image_id")), "semantic_type": clean(r.get("semantic_type")),
                      "content_type": clean(r.get("content_type")), "template": clean(r.get("template"))},
            )
