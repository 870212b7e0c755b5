"""Quilt-LLaVA-Pretrain: ~723K histopathology image-caption pairs from QUILT-1M (YouTube educational video
frames; PubMed and Twitter parts removed), in LLaVA pretraining form (Seyfioglu et al., CVPR 2024).

Get it from Hugging Face `wisdomik/Quilt-LLaVA-Pretrain` (gated): `quilt_pretrain.json`; images from QUILT-1M
(Zenodo 8239942, `quilt_1m/<name>.jpg`, 512x512). Licence cc-by-nc-nd-3.0, research use only, NO
redistribution of the data or of shards built from it; cite Quilt-1M and Quilt-LLaVA.
Files read: `quilt_pretrain.json` (a JSON list of `{"id", "image", "conversations": [{"from": "human",
"value": "...<image>..."}, {"from": "gpt", "value": caption}]}`), images `quilt_1m/<image>` (MedMO's layout
`images/quilt_1m/` is accepted too). The `<image>` placeholder becomes the image part where it stands
(`medmo_data.families.llava`); a record whose placeholder count differs from its image count is rejected.
From the hub id only `quilt_pretrain.json` and the card are fetched (`HUB_PATTERNS`): the hub repository has
the JSON, not the images (they are QUILT-1M's), so a build from the id alone rejects every record as
`missing_image`; pass a folder that also holds QUILT-1M's `quilt_1m/` instead.
Split: all `train` (the release has no other split). Fixtures are synthetic (no redistribution).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from medmo_data.families.llava import LlavaError, final_answer, image_list, llava_messages
from medmo_data.formats.json_stream import iter_json_objects, iter_json_records
from medmo_data.formats.tables import clean
from medmo_data.recipe import ImageSource, RawSample, Reject, SourceError, SourceInfo, require

HUB_PATTERNS = ["quilt_pretrain.json", "*.md"]
INFO = SourceInfo(
    name="quilt_llava_pretrain", title="Quilt-LLaVA-Pretrain", stages=(2,), tasks=("caption",),
    modality="pathology", access="registered", license="CC-BY-NC-ND-3.0",
    homepage="https://huggingface.co/datasets/wisdomik/Quilt-LLaVA-Pretrain",
    citation="Seyfioglu et al., Quilt-LLaVA: Visual Instruction Tuning by Extracting Localized Narratives from "
             "Open-Source Histopathology Videos, CVPR 2024; Ikezogwo et al., Quilt-1M, NeurIPS 2023",
    image_format="jpg",
    notes="gated, research only, no redistribution: build locally, never publish shards",
)
JSON = "quilt_pretrain.json"
IMAGE_DIRS = ("quilt_1m", "images/quilt_1m")


def records(root: Path, options: dict[str, str]) -> Iterator[RawSample | Reject]:
    require(root / JSON, "Quilt-LLaVA annotation file")
    images = next((root / d for d in IMAGE_DIRS if (root / d).is_dir()), None)
    if images is None:
        raise SourceError(f"{root}: no image folder ({' or '.join(IMAGE_DIRS)}) from QUILT-1M")
    for item in iter_json_objects(iter_json_records(root / JSON)):
        if isinstance(item, Reject):
            yield item
            continue
        rid, r = item
        sid = clean(r.get("id")) or rid
        try:
            names = image_list(r.get("image"))
            msgs = llava_messages(r.get("conversations"), len(names))
        except LlavaError as exc:
            yield Reject(sid, exc.reason, exc.detail)
            continue
        yield RawSample(id=sid, split="train", task="caption", messages=msgs,
                        images=[ImageSource(path=str(images / n)) for n in names],
                        target={"caption": final_answer(msgs)}, meta={"image": names[0] if names else ""})
