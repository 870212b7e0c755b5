"""SLAKE: a bilingual (English/Chinese) radiology VQA set with organ/lesion boxes (Liu et al., ISBI 2021).

Get it from `med-vqa.com` or the Hugging Face re-host `BoKelvin/SLAKE` (`imgs.zip`, `train.json`,
`validation.json` (called `validate.json` before 2024-02-28; both read), `test.json`). Licence CC-BY-4.0.
Files read: the three QA JSON lists (12 fields per record, key order not fixed: `img_id, img_name, question,
answer, q_lang, location, modality, answer_type, base_type, content_type, triple, qid`) and, per image,
`imgs/xmlabN/source.jpg` and `imgs/xmlabN/detection.json` (a list of `{label: [x, y, w, h]}` in pixels,
top-left corner plus size; read as corners it gives y2 < y1).

Samples: one VQA sample per question of the chosen language (`lang=en` by default, `lang=zh` for the
Chinese questions) and one grounding sample per image with every box of its `detection.json`.
Split integrity is per IMAGE and across BOTH languages: in the real files one image can have its English
questions in `test.json` and its Chinese ones in `train.json` (e.g. `xmlab102`, qids 11934 / 4951) or the
reverse (`xmlab1`, qids 0 / 12995); 142 images are in train in one language and test in the other. So an
image is test if any language's `test.json` lists it, else val if any `validate.json` / `validation.json`
lists it, else train, and every sample on it (its questions in the built language and its grounding sample)
takes that split. A question moved that way keeps the file it came from in `meta.filed_split`; select
`filed_split == split` to score on exactly the official question list.
`imgs.zip` (as the hub ships it) is read in place when `imgs/` is not unpacked: same output bytes.
Traps: Chinese yes/no answers (`是的`, `不是`), comma-joined multi-answers kept as text, JPEG bytes passed
through untouched.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from medmo_data.formats.archive import ReleaseTree
from medmo_data.formats.tables import FileRefused, clean, load_json, vqa_messages
from medmo_data.pixels import boxes
from medmo_data.recipe import RawSample, Reject, SourceError, SourceInfo
from medmo_data.render import HINT
from medmo_data.schema import image, objects, turn

INFO = SourceInfo(
    name="slake", title="SLAKE", stages=(2, 4), tasks=("vqa", "grounding"), modality="mixed", access="open",
    license="CC-BY-4.0", homepage="https://www.med-vqa.com/slake/",
    citation="Liu et al., SLAKE: A Semantically-Labeled Knowledge-Enhanced Dataset for Medical Visual "
             "Question Answering, ISBI 2021",
    image_format="jpg",
)
HUB_PATTERNS = ["*.json", "imgs.zip", "*.md"]
SPLIT_FILES = (("train", ("train.json",)), ("val", ("validate.json", "validation.json")), ("test", ("test.json",)))
RANK = {"train": 0, "val": 1, "test": 2}
MODALITY = {"CT": "ct", "MRI": "mri", "X-Ray": "xray"}
GROUND_PROMPT = "Locate the organs and abnormalities visible in this {} image and name each. "


def _split_files(root: Path) -> list[tuple[str, Path]]:
    found = []
    for split, names in SPLIT_FILES:
        for n in names:
            if (root / n).exists():
                found.append((split, root / n))
                break
    if not any(s == "train" for s, _ in found):
        raise SourceError(f"{root}: no train.json (SLAKE QA lists train.json, validate.json, test.json)")
    return found


def _questions(root: Path) -> list[tuple[str, dict[str, Any] | Reject]]:
    """(split file, record) for every record of every language; malformed ones as rejects."""
    out: list[tuple[str, dict[str, Any] | Reject]] = []
    for split, path in _split_files(root):
        recs = load_json(path)
        if not isinstance(recs, list):
            raise SourceError(f"{path}: expected a JSON list of QA records")
        for n, r in enumerate(recs):
            if not isinstance(r, dict) or not clean(r.get("img_name")) or r.get("qid") is None:
                out.append((split, Reject(f"{path.name}:{n}", "missing_field", "record lacks img_name or qid")))
            else:
                out.append((split, r))
    return out


def image_splits(questions: list[tuple[str, dict[str, Any] | Reject]]) -> dict[str, str]:
    """img_name -> the strictest split (test > val > train) that ANY language's question on it is filed in."""
    out: dict[str, str] = {}
    for split, r in questions:
        if isinstance(r, dict):
            name = clean(r["img_name"])
            if RANK[split] >= RANK[out.get(name, "train")]:
                out[name] = split
    return out


def read_detection(raw: bytes) -> list[tuple[str, list[float]]]:
    """(label, XYXY) per entry of a `detection.json`; raises ValueError on any malformed entry."""
    data = json.loads(raw.decode("utf-8"))
    if not isinstance(data, list):
        raise ValueError("expected a list of {label: [x, y, w, h]} objects")
    out = []
    for k, entry in enumerate(data):
        if not isinstance(entry, dict) or len(entry) != 1:
            raise ValueError(f"entry {k} is not a single-key object")
        (label, xywh), = entry.items()
        if not clean(label) or not isinstance(xywh, list) or len(xywh) != 4:
            raise ValueError(f"entry {k}: need a label and [x, y, w, h], got {entry!r}")
        out.append((clean(label), boxes.from_xywh(*xywh)))
    return out


def _grounding(imgs: ReleaseTree, name: str, split: str, first: dict[str, Any], lang: str) -> RawSample | Reject:
    folder = name.rsplit("/", 1)[0]
    sid = f"det-{folder}"
    det = f"{folder}/detection.json"
    if not imgs.exists(det):
        return Reject(sid, "missing_detection", f"{imgs.where(det)} does not exist")
    try:
        found = read_detection(imgs.read_bytes(det))
    except FileRefused as exc:  # a FIFO, device or huge file where detection.json should be
        return Reject(sid, exc.reason, str(exc))
    except (ValueError, UnicodeDecodeError, TypeError) as exc:
        return Reject(sid, "malformed_detection", f"{imgs.where(det)}: {exc}")
    if not found:
        return Reject(sid, "no_objects", f"{det} lists no box")
    mod = clean(first.get("modality"))
    return RawSample(
        id=sid, split=split, task="grounding", modality=MODALITY.get(mod, "mixed"),
        images=[imgs.image(name)],
        messages=[turn("user", image(), GROUND_PROMPT.format(mod or "medical") + HINT), turn("assistant", objects())],
        objects=[{"image": 0, "label": lab, "bbox": b} for lab, b in found],
        target={"labels": sorted({lab for lab, _ in found})},
        meta={"img_name": name, "location": clean(first.get("location")), "qid": -1, "lang": lang,
              "content_type": "", "base_type": "", "filed_split": split},
    )


def records(root: Path, options: dict[str, str]) -> Iterator[RawSample | Reject]:
    lang = options.get("lang", "en")
    if lang not in ("en", "zh"):
        raise SourceError(f"option lang must be 'en' or 'zh', got {lang!r}")
    imgs = ReleaseTree(root, "imgs")  # unpacked imgs/ or the hub's imgs.zip, read in place
    if not imgs.found:
        raise SourceError(f"{root}: no imgs/ folder or imgs.zip")
    questions = _questions(root)
    image_split = image_splits(questions)  # all languages: a zh test image is a test image for en too
    first_q: dict[str, dict[str, Any]] = {}
    for split, r in questions:
        if isinstance(r, Reject):
            yield r
            continue
        if r.get("q_lang") != lang:
            continue
        qid, name = f"q{r['qid']}", clean(r["img_name"])
        first_q.setdefault(name, r)
        q, a = clean(r.get("question")), clean(r.get("answer"))
        if not q or not a:
            yield Reject(qid, "empty_text", "question or answer is empty")
            continue
        yield RawSample(
            id=qid, split=image_split[name], task="vqa", modality=MODALITY.get(clean(r.get("modality")), "mixed"),
            images=[imgs.image(name)], messages=vqa_messages(q, a),
            target={"answer": a, "answer_type": clean(r.get("answer_type")).lower()},
            meta={"img_name": name, "location": clean(r.get("location")), "qid": int(r["qid"]), "lang": lang,
                  "content_type": clean(r.get("content_type")), "base_type": clean(r.get("base_type")),
                  "filed_split": split},
        )
    for name in sorted(first_q, key=lambda n: (len(n), n)):  # the images of the built language
        yield _grounding(imgs, name, image_split[name], first_q[name], lang)
