"""PubMedVision: 1.3M medical VQA samples built from PubMed figures, captions reformatted by GPT-4V
(Chen et al., HuatuoGPT-Vision, arXiv 2406.19280).

Get it from Hugging Face `FreedomIntelligence/PubMedVision`; licence apache-2.0. Files read:
`PubMedVision_Alignment_VQA.json` and `PubMedVision_InstructionTuning_VQA.json` (647,031 records each), JSON
lists of `{"id", "image": [paths], "conversations": [{"from": "human"|"gpt", "value"}], "modality",
"body_part"}`; images from `images_{0..19}.zip` (about 57 GB), either unzipped flat as the card says
(`unzip -j ... -d images/`; the record's paths `images/<name>.jpg` are relative to the input folder) or, when
there is no `images/` folder, read in place from the zips the hub ships: a path is looked up by its file
name in all twenty (the card's `-j` means the folders inside the zips do not matter). `--option subset=alignment|instruction|both`
(default both; MedMO used the Alignment file only). The Chinese and original-caption files are not read.
Traps: `image` is a LIST (multi-image samples exist: they get their own shard series); the raw turns carry no
`<image>` token (HuatuoGPT-Vision's training code prepends one per image), so images are put before the
first question, while records that do carry placeholders must match their image count. `modality` is the
free-text label of HuatuoGPT-Vision-7B, mapped to the schema's vocabulary (unknown -> mixed); the raw label
stays in `meta`. Split: all `train` (no official split).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from medmo_data.families.llava import LlavaError, image_list, llava_messages
from medmo_data.formats.archive import ReleaseTree
from medmo_data.formats.json_stream import iter_json_objects, iter_json_records
from medmo_data.formats.tables import clean
from medmo_data.recipe import ImageSource, RawSample, Reject, SourceError, SourceInfo

INFO = SourceInfo(
    name="pubmed_vision", title="PubMedVision", stages=(2,), tasks=("vqa", "instruction"), modality="mixed",
    access="open", license="Apache-2.0", homepage="https://huggingface.co/datasets/FreedomIntelligence/PubMedVision",
    citation="Chen et al., HuatuoGPT-Vision, Towards Injecting Medical Visual Knowledge into Multimodal LLMs at "
             "Scale, arXiv 2406.19280",
    image_format="jpg",
)
HUB_PATTERNS = ["PubMedVision_Alignment_VQA.json", "PubMedVision_InstructionTuning_VQA.json", "images_*.zip"]
SUBSETS = {"alignment": ("PubMedVision_Alignment_VQA.json", "vqa"),
           "instruction": ("PubMedVision_InstructionTuning_VQA.json", "instruction")}
# HuatuoGPT-Vision's modality labels -> schema modalities (lower-cased keys).
MODALITY = {
    "computed tomography": "ct", "ct": "ct", "magnetic resonance imaging": "mri", "mri": "mri",
    "digital radiography": "xray", "x-ray": "xray", "radiography": "xray", "ultrasound": "ultrasound",
    "microscopy images": "microscopy", "microscopy": "microscopy", "histopathology": "pathology",
    "pathology": "pathology", "fundus photography": "fundus", "optical coherence tomography": "oct",
    "dermoscopy": "dermoscopy", "endoscopy": "endoscopy", "positron emission tomography": "pet",
    "single photon emission computed tomography": "spect", "digital photography": "clinical_photo",
}


def _chosen(options: dict[str, str]) -> list[str]:
    subset = options.get("subset", "both")
    if subset not in (*SUBSETS, "both"):
        raise SourceError(f"--option subset={subset!r}: expected alignment, instruction or both")
    return [k for k in SUBSETS if subset in (k, "both")]


def hub_patterns(options: dict[str, str]) -> list[str]:
    """From the hub: the JSON file(s) `--option subset` reads and the twenty image zips."""
    return [SUBSETS[k][0] for k in _chosen(options)] + ["images_*.zip"]


def records(root: Path, options: dict[str, str]) -> Iterator[RawSample | Reject]:
    chosen = _chosen(options)
    present = [k for k in chosen if (root / SUBSETS[k][0]).exists()]
    if not present:
        raise SourceError(f"{root}: none of {[SUBSETS[k][0] for k in chosen]} found")
    zipped = None if (root / "images").is_dir() else ReleaseTree(root, "images", zips=("images_*.zip",), flat=True)
    if zipped is not None and not zipped.found:
        raise SourceError(f"{root}: no images/ folder and no images_*.zip")
    for key in present:
        fname, task = SUBSETS[key]
        for item in iter_json_objects(iter_json_records(root / fname)):
            if isinstance(item, Reject):
                yield item
                continue
            rid, r = item
            sid = f"{key}-{clean(r.get('id')) or rid}"
            try:
                names = image_list(r.get("image"))
                if not names:
                    raise LlavaError("missing_image", "the record lists no image")
                msgs = llava_messages(r.get("conversations"), len(names), missing="prepend")
            except LlavaError as exc:
                yield Reject(sid, exc.reason, exc.detail)
                continue
            label = clean(r.get("modality"))
            yield RawSample(
                id=sid, split="train", task=task, messages=msgs,
                images=[ImageSource(path=str(root / n)) if zipped is None else zipped.image(n) for n in names],
                modality=MODALITY.get(label.lower(), "mixed"),
                meta={"subset": key, "modality_label": label, "body_part": clean(r.get("body_part"))},
            )
