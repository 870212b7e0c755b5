"""NIH-VQA: the ChestX-ray14 label file asked as a question, the way MedMO used it ("NIH-VQA").

112,120 frontal chest X-rays of 30,805 patients (Wang et al., CVPR 2017), from
https://nihcc.app.box.com/v/ChestXray-NIHCC: `Data_Entry_2017_v2020.csv` (or `Data_Entry_2017.csv`; both
header variants), `train_val_list.txt` / `test_list.txt` (the official patient-level split) and the
images under `images/` (or Kaggle's `images_0NN/images/`), or still in the Box tarballs `images_NNN.tar.gz`
(read in place, streamed once: samples come in the tarballs' order) or in a re-packaging's `images_NNN.zip`
(read in place). From the hub: `alkzar90/NIH-Chest-X-ray-dataset` (its `data/` holds the label file, the split
lists and `images/images_NNN.zip`). Not the NLM VQA-Med 2020 set.
The question is one of a fixed set of phrasings (chosen by a hash of the image name, so rebuilds agree);
the answer lists the findings of `Finding Labels` joined by ", " (or "No Finding"); `target["labels"]`
holds them as a sorted list for a set-based reward. Labels are written as words (`Pleural_Thickening` ->
"Pleural Thickening"), in the choices, the answer and `target`.
Split (shared with `nih_chestxray_bbox`, see `medmo_data.families.chestxray14`): by default the official
lists, except that every image of a patient in `BBox_List_2017.csv` takes that patient's box-set split, so
the box recipe's val/test patients never reach train here (and its train patients never reach test);
`-o split=official` keeps the official lists for every image.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

from medmo_data.families.chestxray14 import (
    HUB_FILES,
    LABELS,
    NO_FINDING,
    Entry,
    data_entry_path,
    display_label,
    image_files,
    read_data_entry,
    release_root,
    split_assigner,
    streamed_images,
)
from medmo_data.formats.tables import vqa_messages
from medmo_data.recipe import ImageSource, RawSample, Reject, SourceInfo

HUB_PATTERNS = HUB_FILES  # the HF re-packaging's files, shared by both NIH recipes
INFO = SourceInfo(
    name="nih_vqa", title="NIH ChestX-ray14 findings as VQA (NIH-VQA)", stages=(2, 4), tasks=("vqa",),
    modality="xray", access="open", license="NIH-CC unrestricted (cite Wang et al. 2017)",
    homepage="https://nihcc.app.box.com/v/ChestXray-NIHCC",
    citation="Wang et al., ChestX-ray8: hospital-scale chest X-ray database and benchmarks, CVPR 2017",
)
_CHOICES = ", ".join(map(display_label, LABELS))
QUESTIONS = (
    f"Which thoracic diseases are visible in this chest X-ray? Choose from: {_CHOICES}; or answer '{NO_FINDING}'.",
    f"List all findings in this radiograph among {_CHOICES}. If there are none, answer '{NO_FINDING}'.",
    f"What abnormalities does this chest X-ray show? Possible findings: {_CHOICES}, or '{NO_FINDING}'.",
)


def question_for(name: str) -> str:
    return QUESTIONS[int(hashlib.sha1(name.encode()).hexdigest()[:8], 16) % len(QUESTIONS)]


def _sample(e: Entry, split: str, img: ImageSource) -> RawSample:
    words = [display_label(lab) for lab in e.labels]
    answer = ", ".join(words) if words else NO_FINDING
    return RawSample(
        id=e.image.removesuffix(".png"), split=split, task="vqa", images=[img],
        messages=vqa_messages(question_for(e.image), answer),
        target={"labels": sorted(words), "answer": answer},
        meta={"patient_id": e.patient, "follow_up": e.follow_up, "view": e.view},
    )


def records(root: Path, options: dict[str, str]) -> Iterator[RawSample | Reject]:
    root = release_root(root)
    split_of = split_assigner(root, options)
    image_of, archives = image_files(root)
    in_archives: dict[str, list[tuple[Entry, str]]] = {}  # image name -> its rows, while the tarballs stream
    for e in read_data_entry(data_entry_path(root)):
        if isinstance(e, Reject):
            yield e
            continue
        assert isinstance(e, Entry)
        sid = e.image.removesuffix(".png")
        split = split_of(e.image, e.patient)
        if split is None:
            yield Reject(sid, "not_in_split_lists", f"{e.image} is in neither train_val_list.txt nor test_list.txt")
        elif image_of:
            yield _sample(e, split, image_of(e.image))
        else:  # a repeated row is the build's duplicate_id reject, as from the unpacked images
            in_archives.setdefault(e.image, []).append((e, split))
    for item in streamed_images(archives, list(in_archives)):
        if isinstance(item, Reject):
            yield item
            continue
        for e, split in in_archives.pop(item[0]):
            yield _sample(e, split, ImageSource(data=item[1], mode="L"))
