"""PMC-OA: 1.65M biomedical image-caption pairs (sub-figures and sub-captions) from the PubMed Central Open
Access subset (Lin et al., PMC-CLIP, MICCAI 2023).

Get it from Hugging Face `axiong/pmc_oa`: `pmc_oa.jsonl` (sub-captions split by ChatGPT; config `pmc_oa`)
or `pmc_oa_beta.jsonl` (whole captions; `--option config=pmc_oa_beta`), older revisions `train.jsonl`,
`valid.jsonl`, `test.jsonl` (read when present, as train/val/test); images from `images.zip` (members
`caption_T060_filtered_top4_sep_v0_subfigures/<image>`, as public loaders list them after extracting it into
`images/`), read in place, or unpacked under `images/caption_T060_filtered_top4_sep_v0_subfigures/`,
`caption_T060_filtered_top4_sep_v0_subfigures/` or `images/`. Licence: per-article PMC OA licences. Rows: `image` (e.g. `PMC212319_Fig3_4.jpg`), `caption`,
optionally `pmcid`, `url_name`, `alignment_type`, `alignment_score`.
Captions are kept as released (sub-figure letters such as "A. ..." included). `meta.pmcid` (the field, else
the file-name prefix) is the decontamination key: PMC-VQA's benchmark figures come from the same OA subset,
so `--option exclude=path/to/PMC-VQA/test_2.csv` rejects rows of any article whose figure is in that CSV's
`Figure_path` (`benchmark_overlap`). Without it, decontaminate at `mix` time by `meta.pmcid`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from medmo_data.formats.archive import ReleaseTree
from medmo_data.formats.tables import clean, iter_csv, iter_jsonl, pmcid, vqa_messages
from medmo_data.recipe import RawSample, Reject, SourceError, SourceInfo

INFO = SourceInfo(
    name="pmc_oa", title="PMC-OA", stages=(2,), tasks=("caption",), modality="mixed", access="open",
    license="PMC-OA-per-article", homepage="https://huggingface.co/datasets/axiong/pmc_oa",
    citation="Lin et al., PMC-CLIP: Contrastive Language-Image Pre-training using Biomedical Documents, "
             "MICCAI 2023",
    image_format="jpg",
)
HUB_PATTERNS = ["pmc_oa.jsonl", "pmc_oa_beta.jsonl", "images.zip", "*.md"]
SUBFIGS = "caption_T060_filtered_top4_sep_v0_subfigures"
IMAGE_DIRS = (f"images/{SUBFIGS}", SUBFIGS, "images")
OLD_SPLITS = (("train", "train.jsonl"), ("val", "valid.jsonl"), ("test", "test.jsonl"))
PROMPT = "Describe this biomedical figure."


def _excluded(options: dict[str, str]) -> set[str]:
    if not options.get("exclude"):
        return set()
    path = Path(options["exclude"])
    if not path.is_file():
        raise SourceError(f"{path}: --option exclude must name a PMC-VQA CSV with a Figure_path column")
    return {pmcid(item[1]["Figure_path"].strip()) for item in iter_csv(path, required=["Figure_path"])
            if not isinstance(item, Reject)} - {""}


def _config(options: dict[str, str]) -> str:
    config = options.get("config", "pmc_oa")
    if config not in ("pmc_oa", "pmc_oa_beta"):
        raise SourceError(f"--option config={config!r}: expected pmc_oa or pmc_oa_beta")
    return config


def hub_patterns(options: dict[str, str]) -> list[str]:
    """From the hub: the one caption file `--option config` reads, the images and the card."""
    return [f"{_config(options)}.jsonl", "images.zip", "*.md"]


def records(root: Path, options: dict[str, str]) -> Iterator[RawSample | Reject]:
    config = _config(options)
    if (root / f"{config}.jsonl").exists():
        files = [("train", root / f"{config}.jsonl")]
    else:
        files = [(s, root / n) for s, n in OLD_SPLITS if (root / n).exists()]
    if not files:
        raise SourceError(f"{root}: no {config}.jsonl (or train/valid/test.jsonl) found")
    images = next((ReleaseTree(root, d) for d in IMAGE_DIRS if (root / d).is_dir()), None)
    if images is None:  # the hub's images.zip, read in place
        images = ReleaseTree(root, SUBFIGS, zips=("images.zip",), prefixes=[f"{d}/" for d in IMAGE_DIRS] + [""])
    if not images.found:
        raise SourceError(f"{root}: no image folder ({', '.join(IMAGE_DIRS)}) and no images.zip")
    excluded = _excluded(options)
    for split, path in files:
        for item in iter_jsonl(path):
            if isinstance(item, Reject):
                yield item
                continue
            rid, r = item
            name, caption = clean(r.get("image")), clean(r.get("caption"))
            if not name or not caption:
                yield Reject(rid, "empty_text", "image or caption is empty")
                continue
            pid = clean(r.get("pmcid")) or pmcid(name)
            if pid and not pid.startswith("PMC"):
                pid = f"PMC{pid}"
            if pid in excluded:
                yield Reject(rid, "benchmark_overlap", f"{pid} has a figure in {options['exclude']}")
                continue
            yield RawSample(id=f"{split}-{Path(name).stem}", split=split, task="caption",
                            images=[images.image(name)], messages=vqa_messages(PROMPT, caption),
                            target={"caption": caption}, meta={"pmcid": pid, "image": name})
