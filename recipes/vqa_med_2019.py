"""VQA-Med-2019 (ImageCLEF 2019): 4,200 radiology images, 15,292 QA pairs in four categories (modality,
plane, organ system, abnormality). Ben Abacha et al., CLEF 2019.

Get it from Zenodo record 10499039 (train/val) and GitHub `abachaa/VQA-Med-2019` (`VQAMed2019Test/`).
Licence CC BY 4.0. Files read (pipe-separated, no header):
- `ImageClef-2019-VQA-Med-Training/QAPairsByCategory/C{1..4}_{Modality,Plane,Organ,Abnormality}_train.txt`
  (`<image-id>|<question>|<answer>`), images `Train_images/<image-id>.jpg`; the category comes from the file
  a line is in. Without the category folder, `All_QA_Pairs_train.txt` is read (category empty).
- `ImageClef-2019-VQA-Med-Validation/` the same with `_val` and `Val_images/` -> split `val`.
- `VQAMed2019Test/VQAMed2019_Test_Questions_w_Ref_Answers.txt` (`<image-id>|<category>|<question>|<answer>`),
  images `VQAMed2019Test/VQAMed2019_Test_Images/` -> split `test` (the benchmark: never train).
Zips are read in place, as Zenodo and GitHub ship them: `ImageClef-2019-VQA-Med-Training.zip` /
`-Validation.zip` (members under the folder name, or at the top) instead of the unpacked folders, and
`VQAMed2019Test.zip` instead of `VQAMed2019Test/`; the test images are themselves a zip,
`VQAMed2019Test/VQAMed2019_Test_Images.zip` (a Git LFS file on GitHub; inside Zenodo's test zip, a zip in a
zip), read in place too (members under `VQAMed2019_Test_Images/` or at the top). Unpacked folders work the same.
Traps: test answers list accepted alternatives separated by `#` (`face, sinuses, and neck#skull and contents`):
the assistant says the first, `target["answers"]` keeps all. Parentheses are literal (`ct w/contrast (iv)`),
never stripped. Answers are lower-case as released. MedMO read its own `all.csv` built from these files.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from medmo_data.formats.archive import ReleaseTree
from medmo_data.formats.tables import vqa_messages
from medmo_data.recipe import RawSample, Reject, SourceError, SourceInfo

INFO = SourceInfo(
    name="vqa_med_2019", title="VQA-Med-2019 (ImageCLEF)", stages=(2,), tasks=("vqa",), modality="mixed",
    access="open", license="CC-BY-4.0", homepage="https://github.com/abachaa/VQA-Med-2019",
    citation="Ben Abacha et al., VQA-Med: Overview of the Medical Visual Question Answering Task at "
             "ImageCLEF 2019, CLEF 2019",
    image_format="jpg",
)
CATEGORIES = (("C1", "Modality", "modality"), ("C2", "Plane", "plane"), ("C3", "Organ", "organ"),
              ("C4", "Abnormality", "abnormality"))
SPLITS = (("train", "ImageClef-2019-VQA-Med-Training", "train", "Train_images"),
          ("val", "ImageClef-2019-VQA-Med-Validation", "val", "Val_images"))
TEST_DIR = "VQAMed2019Test"
TEST_FILE = "VQAMed2019_Test_Questions_w_Ref_Answers.txt"
TEST_IMAGES = "VQAMed2019_Test_Images"


def _tree(root: Path, folder: str) -> ReleaseTree:
    """`folder/` unpacked or `folder.zip` (members under `folder/` or at the top), read in place."""
    return ReleaseTree(root, folder, zips=(f"{folder}.zip",), prefixes=(f"{folder}/", ""))


def _lines(tree: ReleaseTree, rel: str, fields: int) -> Iterator[tuple[str, list[str]] | Reject]:
    """(line id, fields) per non-empty line of a pipe-separated file (BOM and CR tolerated)."""
    raw, where, name = tree.read_bytes(rel), tree.where(rel), rel.rsplit("/", 1)[-1]
    for n, line in enumerate(raw.split(b"\n"), 1):
        lid = f"{name}:{n}"
        try:
            text = line.decode("utf-8-sig" if n == 1 else "utf-8").rstrip("\r")
        except UnicodeDecodeError as exc:
            yield Reject(lid, "non_utf8_text", f"{where}:{n}: byte {exc.start} is not UTF-8")
            continue
        if not text.strip():
            continue
        parts = text.split("|")
        if len(parts) != fields:
            yield Reject(lid, "malformed_line", f"{where}:{n}: {len(parts)} '|'-separated fields, expected {fields}")
            continue
        yield lid, [p.strip() for p in parts]


def _sample(lid: str, split: str, image_id: str, category: str, question: str, answer: str,
            images: ReleaseTree) -> RawSample | Reject:
    if not image_id or not question or not answer:
        return Reject(lid, "empty_text", "image id, question or answer is empty")
    answers = [a.strip() for a in answer.split("#") if a.strip()] if split == "test" else [answer]
    return RawSample(
        id=f"{split}-{category or 'all'}-{lid.rsplit(':', 1)[1]}", split=split, task="vqa",
        images=[images.image(f"{image_id}.jpg")],
        messages=vqa_messages(question, answers[0]),
        target={"answer": answers[0], "answers": answers, "category": category},
        meta={"image_id": image_id, "category": category},
    )


def _train_val(root: Path) -> Iterator[RawSample | Reject]:
    for split, folder, suffix, image_dir in SPLITS:
        base = _tree(root, folder)
        if not base.found:
            continue
        files = [(f"QAPairsByCategory/{c}_{name}_{suffix}.txt", cat) for c, name, cat in CATEGORIES]
        if not any(base.exists(p) for p, _ in files):
            files = [(f"All_QA_Pairs_{suffix}.txt", "")]
        images = base.subtree(image_dir)
        for rel, cat in files:
            if not base.exists(rel):
                raise SourceError(f"{base.where(rel)}: missing QA file of {folder}")
            for item in _lines(base, rel, 3):
                if isinstance(item, Reject):
                    yield item
                    continue
                lid, (image_id, q, a) = item
                yield _sample(f"{cat or 'all'}:{lid.rsplit(':', 1)[1]}", split, image_id, cat, q, a, images)


def _test(root: Path) -> Iterator[RawSample | Reject]:
    base = _tree(root, TEST_DIR)
    if not base.found or not base.exists(TEST_FILE):
        return
    images = base.subtree(TEST_IMAGES, zips=(f"{TEST_IMAGES}.zip",), prefixes=(f"{TEST_IMAGES}/", ""))
    if not images.found:
        raise SourceError(f"{base.where(TEST_IMAGES)}: no test image folder or {TEST_IMAGES}.zip")
    for item in _lines(base, TEST_FILE, 4):
        if isinstance(item, Reject):
            yield item
            continue
        lid, (image_id, cat, q, a) = item
        yield _sample(f"{cat}:{lid.rsplit(':', 1)[1]}", "test", image_id, cat.lower(), q, a, images)


def records(root: Path, options: dict[str, str]) -> Iterator[RawSample | Reject]:
    if not any(_tree(root, d).found for d in (SPLITS[0][1], SPLITS[1][1], TEST_DIR)):
        raise SourceError(f"{root}: none of {SPLITS[0][1]}/, {SPLITS[1][1]}/, {TEST_DIR}/ (or their .zip) found")
    yield from _train_val(root)
    yield from _test(root)
