"""PMC-VQA: 227K multiple-choice questions on 149K figures from PubMed Central papers (Zhang et al.,
arXiv 2305.10415).

Get it from Hugging Face `xmcmic/PMC-VQA` (mirror `RadGenome/PMC-VQA`). Licence not stated on the card
(treated as per-article PMC OA licences). Both releases are read, as MedMO did (`--option release=v1|v2|both`):
- v2: `train_2.csv`, `test_2.csv` (`index, Figure_path, Caption, Question, Choice A..D, Answer, split`, with
  `Answer` the LETTER), images `figures/<Figure_path>`: unpacked, or read in place from the hub's
  `images_2.zip` (2.2 GB, members `figures/<Figure_path>`);
- v1: `train.csv`, `test.csv` (or `test_clean.csv` when `test.csv` is absent) (`Figure_path, Question,
  Answer, Choice A..D, Answer_label`, `Anwser` spelling accepted), images `images/<Figure_path>`: unpacked,
  or in place from `images.zip` (18.9 GB; members under `images/`, else `figures/`, else at the top: the
  member prefix is not documented).
From the hub id, `hub_patterns` fetch the CSVs and zip of the releases read and the card, never
`oa_comm_use_file_list.csv`: about 21 GB for both (the default), ~2.2 GB with `--option release=v2`.
Choices carry a letter prefix and stray spaces (`"  B: Left Anterior Descending "`): the prefix is removed.
The letter is resolved to its text; the sample is `medmo_data.families.text_qa` MCQ (`target` has choices, letter,
text) with the figure before the question. `--option explain=caption` adds the v2 `Caption` as the
explanation (MedMO appended it as "Reason"); off by default.
Splits: train files -> train, test files -> test. `test_2.csv` is the MedEvalKit benchmark, so a train row
whose figure appears in any test file read is rejected (`test_figure_overlap`), and a (figure, question)
pair already seen (v1 and v2 overlap) is rejected as `duplicate_qa`. `meta.pmcid` (the figure name's PMC
prefix) is the decontamination key against PMC-OA.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from medmo_data.families.text_qa import mcq_messages, mcq_target
from medmo_data.formats.archive import ReleaseTree
from medmo_data.formats.tables import iter_csv, pmcid
from medmo_data.recipe import RawSample, Reject, SourceError, SourceInfo
from medmo_data.schema import image

INFO = SourceInfo(
    name="pmc_vqa", title="PMC-VQA", stages=(2,), tasks=("mcq",), modality="mixed", access="open",
    license="PMC-OA-per-article", homepage="https://huggingface.co/datasets/xmcmic/PMC-VQA",
    citation="Zhang et al., PMC-VQA: Visual Instruction Tuning for Medical Visual Question Answering, "
             "arXiv 2305.10415",
    image_format="jpg",
)
HUB_FILES = {"v2": ["train_2.csv", "test_2.csv", "images_2.zip"],
             "v1": ["train.csv", "test.csv", "test_clean.csv", "images.zip"]}
HUB_PATTERNS = HUB_FILES["v2"] + HUB_FILES["v1"] + ["README.md"]  # both releases: the default
RELEASES = {"v2": ("figures", (("train", "train_2.csv"), ("test", "test_2.csv"))),
            "v1": ("images", (("train", "train.csv"), ("test", "test.csv")))}
# release -> (zip the hub ships, member prefixes to try in order)
ZIPS = {"v2": ("images_2.zip", ("figures/", "")), "v1": ("images.zip", ("images/", "figures/", ""))}
LETTERS = "ABCD"
_PREFIX = re.compile(r"^\s*([A-D])\s*[:.)]\s*")
_LETTER = re.compile(r"^([A-D])(?:\s*[:.)].*)?$", re.S)  # "B", "B:", "B: text"


def choice_text(cell: str, letter: str) -> str:
    """A choice cell without its own letter prefix (`"  B: Left Anterior Descending "` -> the text)."""
    m = _PREFIX.match(cell)
    return cell[m.end():].strip() if m and m.group(1) == letter else cell.strip()


def _files(root: Path, releases: list[str]) -> list[tuple[str, str, Path, ReleaseTree]]:
    out = []
    for rel in releases:
        folder, files = RELEASES[rel]
        tree: ReleaseTree | None = None
        for split, name in files:
            path = root / name
            if split == "test" and rel == "v1" and not path.exists():
                path = root / "test_clean.csv"
            if path.exists():
                if tree is None:
                    tree = ReleaseTree(root, folder, zips=(ZIPS[rel][0],), prefixes=ZIPS[rel][1])
                    if not tree.found:
                        raise SourceError(f"{root}: {name} found but no {folder}/ folder or {ZIPS[rel][0]} "
                                          f"(the {rel} figures)")
                out.append((rel, split, path, tree))
    return out


def _test_figures(files: list[tuple[str, str, Path, ReleaseTree]]) -> set[str]:
    figs: set[str] = set()
    for _, split, path, _ in files:
        if split != "test":
            continue
        for item in iter_csv(path, required=["Figure_path"]):
            if not isinstance(item, Reject):
                figs.add(item[1]["Figure_path"].strip())
    return figs


def _releases(options: dict[str, str]) -> list[str]:
    release = options.get("release", "both")
    if release not in ("v1", "v2", "both"):
        raise SourceError(f"--option release={release!r}: expected v1, v2 or both")
    return ["v2", "v1"] if release == "both" else [release]


def hub_patterns(options: dict[str, str]) -> list[str]:
    """The hub files of the releases `--option release` reads, and the card."""
    return [f for rel in _releases(options) for f in HUB_FILES[rel]] + ["README.md"]


def records(root: Path, options: dict[str, str]) -> Iterator[RawSample | Reject]:
    files = _files(root, _releases(options))
    if not files:
        raise SourceError(f"{root}: no PMC-VQA CSV (train_2.csv, test_2.csv, train.csv, test.csv) found")
    explain = options.get("explain") == "caption"
    test_figs = _test_figures(files)
    seen: set[tuple[str, str]] = set()
    for rel, split, path, images in files:
        n = 0
        for item in iter_csv(path, required=["Figure_path", "Question", *[f"Choice {c}" for c in LETTERS]]):
            if isinstance(item, Reject):
                yield item
                continue
            rid, row = item
            n += 1
            sid = f"{path.stem}-{row.get('index', '').strip() or n}"
            fig, question = row["Figure_path"].strip(), row["Question"].strip()
            raw = (row["Answer_label"] if "Answer_label" in row else row.get("Answer", "")).strip()
            m = _LETTER.match(raw)
            if not m:
                yield Reject(sid, "bad_answer_letter", f"{rid}: answer {raw!r:.40} is not a letter A-D")
                continue
            letter = m.group(1)
            choices = {c: choice_text(row[f"Choice {c}"], c) for c in LETTERS}
            if not fig or not question or not all(choices.values()):
                yield Reject(sid, "empty_text", f"{rid}: figure, question or a choice is empty")
                continue
            if split == "train" and fig in test_figs:
                yield Reject(sid, "test_figure_overlap", f"{rid}: figure {fig} is in a test file")
                continue
            key = (fig, " ".join(question.lower().split()))
            if key in seen:
                yield Reject(sid, "duplicate_qa", f"{rid}: figure {fig} with this question was already read")
                continue
            seen.add(key)
            caption = (row.get("Caption") or "").strip()
            msgs = mcq_messages(question, choices, letter, explanation=caption if explain and caption else None)
            msgs[-2]["content"].insert(0, image())  # the figure goes before the question
            yield RawSample(id=sid, split=split, task="mcq", images=[images.image(fig)],
                            messages=msgs, target=mcq_target(choices, letter),
                            meta={"figure": fig, "pmcid": pmcid(fig), "release": rel})
