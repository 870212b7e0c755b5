"""MedSG-188K / MedSG-Bench: grounding across medical image SEQUENCES (2-6 images; Yue et al. 2025,
arXiv 2505.11852), eight tasks: Registered_Diff, Non_Registered_Diff, multi_view, object_tracking,
concept, patch, crossmodal, referring.

Get it from the Hugging Face org `MedSG-Bench` (training set MedSG-188K and the benchmark). Licence
CC-BY-4.0 (`croissant.json`). Files read (the input is the folder that holds `MedSG-Bench/`):
- `MedSG-Bench/MedSG-Train/Task1.json ... Task8.json` -> train. LLaMA-Factory sharegpt records: `id`, `task`,
  `images` (`MedSG-Bench/MedSG-Train/TaskN/<file>.png`), `conversations` alternating human/gpt; the first
  human turn opens with one `<image>\\n` per image; answers carry Qwen2-VL box tokens in PIXELS of the
  336x336 images, `It's in the third image. <|box_start|>(92,150),(164,224)<|box_end|>`.
- `MedSG-Bench/MedSG-Bench/Task1.json ... Task8.json` -> test ONLY (the benchmark; MedMO merged it into
  train). Records: `task`, `images`, `question`, `answer` = `[x1, y1, x2, y2]` pixels. `bench=skip` leaves
  it out.
Samples: one grounding sample per question: a multi-turn record (Task8 has 3 questions) becomes one
sample per turn, each with all the images, because an objects part renders all of a sample's boxes.
The box belongs to the image the answer names ("first" ... "sixth image"); when it names none, to the
LAST image (the query image of the difference, tracking and multi-view tasks: UNVERIFIED on the paper).
The label is the referring expression (`<|object_ref_start|>X<|object_ref_end|>`), else `difference`
(difference tasks) or `target`. Boxes given in a QUESTION (tracking: where the object was) are written
as `[x1, y1, x2, y2] (pixel coordinates)`, because the renderer only re-frames
answer boxes. Image paths: everything up to `MedSG-Train/` / `MedSG-Bench/` is dropped, so a fork's
absolute paths resolve too.
From a hub id, `HUB_PATTERNS` fetch only the task JSON files and their PNG folders under `MedSG-Train/` and
`MedSG-Bench/` at any depth, plus the card (the repository's exact file list was not seen: UNVERIFIED; if it
ships images in archives, download it yourself and pass the unpacked folder).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from medmo_data.formats.tables import clean, load_json
from medmo_data.recipe import ImageSource, RawSample, Reject, SourceError, SourceInfo
from medmo_data.render import HINT
from medmo_data.schema import image, objects, text, turn

HUB_PATTERNS = ["*MedSG-Train/*", "*MedSG-Bench/Task*", "*.md"]  # fnmatch: "*" also crosses "/"


def _include_bench(options: dict[str, str]) -> bool:
    return options.get("bench", "test") != "skip"


def hub_patterns(options: dict[str, str]) -> list[str]:
    """HUB_PATTERNS, without MedSG-Bench when `--option bench=skip` leaves it unread."""
    return [p for p in HUB_PATTERNS if _include_bench(options) or "Bench" not in p]


INFO = SourceInfo(
    name="medsg", title="MedSG-188K / MedSG-Bench", stages=(2, 4), tasks=("grounding",), modality="mixed",
    access="open", license="CC-BY-4.0", homepage="https://huggingface.co/MedSG-Bench",
    citation="Yue et al., MedSG-Bench: A Benchmark for Medical Image Sequences Grounding, arXiv 2505.11852",
    images_per_sample=2,
)
TASKS = {1: "Registered_Diff", 2: "Non_Registered_Diff", 3: "multi_view", 4: "object_tracking", 5: "concept",
         6: "patch", 7: "crossmodal", 8: "referring"}
BOX = re.compile(r"<\|box_start\|>\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)\s*,\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)\s*<\|box_end\|>")
REF = re.compile(r"<\|object_ref_start\|>(.*?)<\|object_ref_end\|>", re.S)
ORDINALS = ["first", "second", "third", "fourth", "fifth", "sixth"]
ORDINAL = re.compile(r"\b(" + "|".join(ORDINALS) + r")\s+image\b", re.I)
MODALITY = {"CT": "ct", "MRI": "mri", "MR": "mri", "PET": "pet", "US": "ultrasound", "XRAY": "xray",
            "X-RAY": "xray", "CXR": "xray", "ENDOSCOPY": "endoscopy", "DERMOSCOPY": "dermoscopy",
            "FUNDUS": "fundus", "OCT": "oct", "PATHOLOGY": "pathology", "MICROSCOPY": "microscopy"}
SUFFIX = " " + HINT


def task_files(root: Path, include_bench: bool) -> list[tuple[str, Path]]:
    found = [("train", p) for p in sorted(root.rglob("MedSG-Train/Task*.json"))]
    if include_bench:
        found += [("test", p) for p in sorted(root.rglob("MedSG-Bench/Task*.json")) if p.parent.name == "MedSG-Bench"]
    if not found:
        raise SourceError(f"{root}: no MedSG-Bench/MedSG-Train/TaskN.json or MedSG-Bench/MedSG-Bench/TaskN.json")
    return found


def resolve(json_dir: Path, rel: str) -> Path:
    marker = json_dir.name + "/"
    at = rel.rfind(marker)
    return json_dir / (rel[at + len(marker):] if at >= 0 else rel)


def modality_of(paths: list[str]) -> str:
    found = set()
    for p in paths:
        tokens = Path(p).stem.upper().split("_")
        found.add(next((MODALITY[t] for t in tokens[1:] if t in MODALITY), "mixed"))
    return found.pop() if len(found) == 1 else "mixed"


def plain_question(question: str) -> tuple[str, str | None, int]:
    """Question text without model tokens, its referring expression, and how many boxes it quoted."""
    ref = REF.search(question)
    q = REF.sub(lambda m: m.group(1).strip(), question).replace("<image>", "")
    quoted = len(BOX.findall(q))
    q = BOX.sub(lambda m: f"[{m.group(1)}, {m.group(2)}, {m.group(3)}, {m.group(4)}] (pixel coordinates)", q)
    return " ".join(q.split()), (ref.group(1).strip() if ref else None), quoted


def _sample(sid: str, split: str, task: str, images: list[Path], names: list[str], question: str, prefix: str,
            box: list[float], index: int, meta: dict[str, Any]) -> RawSample:
    q, ref, quoted = plain_question(question)
    label = ref or ("difference" if task.endswith("_Diff") else "target")
    reply = [text(prefix + " "), objects()] if prefix else [objects()]
    return RawSample(
        id=sid, split=split, task="grounding", modality=modality_of(names),
        images=[ImageSource(path=str(p)) for p in images],
        messages=[turn("user", *([image()] * len(images)), q + SUFFIX), turn("assistant", *reply)],
        objects=[{"image": index, "label": label, "bbox": box}], target={"labels": [label]},
        meta={**meta, "task": task, "query_boxes": quoted},
    )


def _image_index(answer: str, n: int) -> int:
    m = ORDINAL.search(answer)
    return ORDINALS.index(m.group(1).lower()) if m else n - 1


def _train(rec: dict[str, Any], rid: str, task: str, imgs: list[Path], names: list[str]
           ) -> Iterator[RawSample | Reject]:
    conv = rec.get("conversations")
    if not isinstance(conv, list) or len(conv) < 2 or len(conv) % 2:
        yield Reject(rid, "malformed_record", "conversations must alternate human/gpt")
        return
    first = str(conv[0].get("value", ""))
    if first.count("<image>") != len(imgs):
        yield Reject(rid, "image_count_mismatch", f"{first.count('<image>')} <image> tokens, {len(imgs)} images")
        return
    for k in range(0, len(conv), 2):
        human, gpt = conv[k], conv[k + 1]
        sid = f"{rid}#{k // 2}"
        if human.get("from") != "human" or gpt.get("from") != "gpt":
            yield Reject(sid, "malformed_record", "turns are not human then gpt")
            continue
        answer = str(gpt.get("value", ""))
        boxes = BOX.findall(answer)
        if len(boxes) != 1:
            yield Reject(sid, "no_box" if not boxes else "several_boxes", f"{len(boxes)} box tokens in the answer")
            continue
        idx = _image_index(answer, len(imgs))
        if idx >= len(imgs):
            yield Reject(sid, "bad_box", f"answer names image {idx + 1} of {len(imgs)}")
            continue
        yield _sample(sid, "train", task, imgs, names, str(human.get("value", "")), clean(BOX.sub("", answer)),
                      [float(v) for v in boxes[0]], idx, {"record": rid, "turn": k // 2})


def _bench(rec: dict[str, Any], rid: str, task: str, imgs: list[Path], names: list[str]) -> RawSample | Reject:
    ans = rec.get("answer")
    if isinstance(ans, str):
        ans = [int(v) for v in re.findall(r"-?\d+", ans)]
    if not isinstance(ans, list) or len(ans) != 4:
        return Reject(rid, "bad_box", f"answer {rec.get('answer')!r} is not [x1, y1, x2, y2]")
    return _sample(rid, "test", task, imgs, names, str(rec.get("question", "")), "",
                   [float(v) for v in ans], len(imgs) - 1, {"record": rid, "turn": 0})


def records(root: Path, options: dict[str, str]) -> Iterator[RawSample | Reject]:
    for split, path in task_files(root, _include_bench(options)):
        num = int(re.sub(r"\D", "", path.stem) or 0)
        recs = load_json(path)
        if not isinstance(recs, list):
            raise SourceError(f"{path}: expected a JSON list of records")
        for n, rec in enumerate(recs):
            where = "MedSG-Train" if split == "train" else "MedSG-Bench"
            rid = clean(rec.get("id")) if isinstance(rec, dict) and rec.get("id") else f"{where}/{path.stem}/{n}"
            if not isinstance(rec, dict) or not isinstance(rec.get("images"), list) or not rec["images"]:
                yield Reject(rid, "missing_field", f"{path.name}[{n}] has no images list")
                continue
            names = [str(p) for p in rec["images"]]
            imgs = [resolve(path.parent, p) for p in names]
            task = clean(rec.get("task")) or TASKS.get(num, path.stem)
            if split == "train":
                yield from _train(rec, rid, task, imgs, names)
            else:
                yield _bench(rec, rid, task, imgs, names)
