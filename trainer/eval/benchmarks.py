"""The benchmarks `medmo-eval` scores: where each one's test items come from, how each item is prompted
and which judge scores it (MedEvalKit's prompts and judges; docs/eval.md has the table and the reasons).

Benchmarks built by one of our recipes stream that source's scored split from the shards
(`DATA/<source>/manifest.json`); the others are read from the benchmark's own release files under
`DATA/benchmarks/<folder>/` by the readers in `external.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medmo_train.data import open_images

from medmo_data.build.manifest import load as load_manifest
from medmo_data.mix.decontam import BENCHMARKS as DECONTAM
from medmo_data.render import render_messages
from medmo_data.shards.reader import iter_samples

# MedEvalKit utils/question_formats.py, non-reasoning variants (verbatim, including the leading "\n" and
# the space after "Options:")
JUDGEMENT = "\nPlease output 'yes' or 'no'(no extra output)."
CLOSE_ENDED = "\nAnswer the question using a single word or phrase."
OPEN_ENDED = "\nPlease answer the question concisely."
REPORT = ("You are a helpful assistant. Please generate a report for the given images, including both findings "
          "and impressions. Return the report in the following format: Findings: {} Impression: {}.")
MCQ_INSTRUCTION = "Answer with the option's letter from the given choices directly."
OUR_MCQ_SUFFIX = "\n\nAnswer with the letter of the correct option."  # medmo_data.families.text_qa.mcq_messages


def mcq_prompt(question: str, choices: list[str], sep: str = ". ") -> str:
    """MedEvalKit `get_multiple_choice_prompt` with choices lettered A, B, ... joined by `sep`."""
    options = "\n".join(f"{chr(65 + i)}{sep}{c}" for i, c in enumerate(choices))
    return f"\nQuestion: {question}\nOptions: \n{options}\n{MCQ_INSTRUCTION}"


@dataclass
class Item:
    """One scored test item: the prompt as chat messages, its images, and what the judge needs."""

    id: str
    kind: str  # closed | open | mcq | mmmu_mcq | mmmu_open | report | grounding
    messages: list[dict[str, Any]]
    images: list[Any] = field(default_factory=list)  # PIL images (opened lazily)
    reference: str = ""
    choices: list[str] | None = None
    boxes: list[list[float]] | None = None  # grounding: ground truth, stored pixels of `image_size`
    image_size: tuple[int, int] | None = None
    box_format: str = "qwen3"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def prompt(self) -> str:
        return "".join(p.get("text", "") if p["type"] == "text" else "<image>" for m in self.messages
                       for p in m["content"])


def user_turn(images: int, text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"type": "image"}] * images + [{"type": "text", "text": text}]}]


@dataclass(frozen=True)
class Benchmark:
    name: str
    group: str  # vqa | text | report | grounding
    title: str  # the column or row heading in results.md
    sources: tuple[str, ...] = ()  # our recipes whose split holds the items
    splits: tuple[str, ...] = ("test",)
    convert: Callable[[dict[str, Any], str], Item | None] | None = None  # (record, box_format) -> Item
    reader: Callable[[Path], Iterator[Item]] | None = None  # external: folder -> items
    folder: str = ""  # external: DATA/benchmarks/<folder>
    download: str = ""  # external: how to get the files


# ---- records of our shards -> items ------------------------------------------------------------------

def _user_text(rec: dict[str, Any]) -> str:
    return "".join(p.get("text", "") for m in rec["messages"] if m["role"] == "user" for p in m["content"]
                   if p["type"] == "text")


def _n_images(rec: dict[str, Any]) -> int:
    return len(rec.get("images", []))


def yes_no_vqa(rec: dict[str, Any], box_format: str) -> Item | None:
    """VQA-RAD, PathVQA (MedEvalKit): closed iff the answer is yes/no; judgement or open-ended prompt."""
    if rec["task"] != "vqa":
        return None
    q, a = _user_text(rec), str(rec["target"]["answer"])
    closed = a.strip().lower() in ("yes", "no")
    text = q + (JUDGEMENT if closed else OPEN_ENDED)
    return Item(rec["id"], "closed" if closed else "open", user_turn(_n_images(rec), text), reference=a)


def slake_vqa(rec: dict[str, Any], box_format: str) -> Item | None:
    """SLAKE English: the release's answer_type decides; CLOSED gets the single-word prompt. MedEvalKit
    uses the yes/no judge only for answers spelled "yes"/"no"; SLAKE writes "Yes"/"No", which therefore
    go to the exact-match judge: kept, for comparable numbers. Only the questions the release files in
    test.json are scored (`meta.filed_split`): the recipe also holds out, as test, the questions that
    train.json / validate.json ask about a test image, but they are not part of the benchmark."""
    meta = rec.get("meta", {})
    if rec["task"] != "vqa" or meta.get("lang", "en") != "en" or meta.get("filed_split", "test") != "test":
        return None
    q, a = _user_text(rec), str(rec["target"]["answer"])
    closed = str(rec["target"].get("answer_type", "")).lower() == "closed"
    text = q + (CLOSE_ENDED if closed else OPEN_ENDED)
    return Item(rec["id"], "closed" if closed else "open", user_turn(_n_images(rec), text), reference=a,
                extra={"yes_no_judge": a in ("yes", "no")})


def _question(rec: dict[str, Any], choices: dict[str, str]) -> str:
    """The question stem: our MCQ prompt minus its option block and instruction."""
    text = _user_text(rec)
    tail = "\n\n" + "\n".join(f"{k}. {v}" for k, v in choices.items()) + OUR_MCQ_SUFFIX
    return text[: -len(tail)].strip() if text.endswith(tail) else text.replace(OUR_MCQ_SUFFIX, "").strip()


def mcq_record(rec: dict[str, Any], box_format: str, sep: str = ". ") -> Item | None:
    """PMC-VQA, MedMCQA, MedQA: MedEvalKit's multiple-choice prompt from the stored options."""
    if rec["task"] != "mcq":
        return None
    choices = dict(rec["target"]["choices"])
    text = mcq_prompt(_question(rec, choices), list(choices.values()), sep)
    return Item(rec["id"], "mcq", user_turn(_n_images(rec), text), reference=str(rec["target"]["answer"]),
                choices=list(choices.values()))


def pubmedqa_record(rec: dict[str, Any], box_format: str) -> Item | None:
    """PubMedQA, as MedEvalKit: `Context: {contexts joined by newlines}\n` + the multiple-choice prompt of
    the question, options lettered without a space ("A.yes"). Our record stores
    `Context:\n{context}\n\nQuestion: {question}` (recipes/pubmedqa.py)."""
    item = mcq_record(rec, box_format, sep=".")
    if item is None:
        return None
    stem = _question(rec, dict(rec["target"]["choices"]))
    if stem.startswith("Context:\n") and "\n\nQuestion: " in stem:
        context, question = stem[len("Context:\n"):].rsplit("\n\nQuestion: ", 1)
        text = f"Context: {context}\n" + mcq_prompt(question, item.choices or [], ".")
        item.messages = user_turn(_n_images(rec), text)
    return item


def pmc_vqa_record(rec: dict[str, Any], box_format: str) -> Item | None:
    """PMC-VQA: MedEvalKit puts the csv's choice cells in the prompt as they are ("B: text", with the
    release's stray spaces, which the recipe strips)."""
    return mcq_record(rec, box_format, sep=": ")


def report_record(rec: dict[str, Any], box_format: str) -> Item | None:
    """Report generation: MedEvalKit's report prompt; golden = "Findings: {f} Impression: {i}."."""
    if rec["task"] not in ("report", "caption"):
        return None
    t = rec["target"]
    if "findings" in t or "impression" in t:
        gold = f"Findings: {t.get('findings', '')} Impression: {t.get('impression', '')}."
    else:
        gold = str(t.get("report") or t.get("caption") or "")
    return Item(rec["id"], "report", user_turn(_n_images(rec), REPORT), reference=gold)


def grounding_record(rec: dict[str, Any], box_format: str) -> Item | None:
    """Grounding/detection: the record's own prompt in `box_format`; ground truth = its boxes."""
    if rec["task"] not in ("grounding", "detection") or not rec.get("objects"):
        return None
    rendered = render_messages(rec, box_format)
    last = max(i for i, m in enumerate(rendered) if m["role"] == "assistant")
    target = rec["objects"][0]["image"]  # boxes are compared on the image the answer is about
    im = rec["images"][target]
    boxes = [list(o["bbox"]) for o in rec["objects"] if o["image"] == target]
    return Item(rec["id"], "grounding", rendered[:last], boxes=boxes, image_size=(im["width"], im["height"]),
                box_format=box_format, reference=_assistant_text(rendered[last]),
                extra={"labels": [o["label"] for o in rec["objects"] if o["image"] == target]})


def _assistant_text(msg: dict[str, Any]) -> str:
    return "".join(p.get("text", "") for p in msg["content"] if p["type"] == "text")


def shard_items(data: Path, bench: Benchmark, box_format: str) -> Iterator[Item]:
    """Items of `bench` from the built sources' scored splits, in manifest order."""
    assert bench.convert is not None
    for source in bench.sources:
        folder = data / source
        man = load_manifest(folder)
        for sh in man["shards"]:
            if sh["split"] not in bench.splits:
                continue
            for sample in iter_samples(folder / sh["path"]):
                rec = sample["json"]
                item = bench.convert(rec, box_format)
                if item is None:
                    continue
                item.id = f"{source}/{item.id}" if len(bench.sources) > 1 else item.id
                item.images = open_images(sample, rec)
                yield item


def missing_reason(data: Path, bench: Benchmark) -> tuple[str, str] | None:
    """(reason, command) when the benchmark's data is absent under `data`, else None."""
    if bench.reader is not None:
        if (data / "benchmarks" / bench.folder).is_dir():
            return None
        return f"{data / 'benchmarks' / bench.folder} not found", bench.download.replace("DATA/", f"{data}/")
    absent = []
    for s in bench.sources:
        mpath = data / s / "manifest.json"
        cmd = f"medmo-data build --recipe {s} --input RAW_DIR --output {data}"
        if not mpath.exists():
            absent.append((f"{s} not built", cmd))
            continue
        if not any(sh["split"] in bench.splits for sh in load_manifest(mpath)["shards"]):
            absent.append((f"{s} built, but without {'/'.join(bench.splits)} shards", cmd))
    if len(absent) == len(bench.sources):
        return "; ".join(a for a, _ in absent), " && ".join(c for _, c in absent)
    return None


def _src(name: str) -> tuple[str, ...]:
    """The recipe decontamination lists for a benchmark (one source of truth for the name mapping)."""
    return (DECONTAM[name]["source"],)


def registry() -> dict[str, Benchmark]:
    """Every benchmark, in the order of the paper's tables."""
    from . import external as ext

    hub = "huggingface-cli download --repo-type dataset {repo} --local-dir DATA/benchmarks/{folder}"
    b = [
        Benchmark("mmmu-med", "vqa", "MMMU-Med", reader=ext.mmmu_medical, folder="MMMU",
                  download=hub.format(repo="MMMU/MMMU", folder="MMMU")),
        Benchmark("vqa-rad", "vqa", "VQA-RAD", _src("VQA-RAD"), convert=yes_no_vqa),
        Benchmark("slake", "vqa", "SLAKE", _src("SLAKE"), convert=slake_vqa),
        Benchmark("pathvqa", "vqa", "PathVQA", _src("PathVQA"), convert=yes_no_vqa),
        Benchmark("pmc-vqa", "vqa", "PMC-VQA", _src("PMC-VQA"), convert=pmc_vqa_record),
        Benchmark("omnimedvqa", "vqa", "OmniMedVQA", reader=ext.omnimedvqa, folder="OmniMedVQA",
                  download=hub.format(repo="foreverbeliever/OmniMedVQA", folder="OmniMedVQA")
                  + " && unzip the release zip there (QA_information/, Images/)"),
        Benchmark("medxpertqa-mm", "vqa", "MedXpertQA (MM)", reader=ext.medxpertqa_mm, folder="MedXpertQA",
                  download=hub.format(repo="TsinghuaC3I/MedXpertQA", folder="MedXpertQA")
                  + " && unzip DATA/benchmarks/MedXpertQA/images.zip -d DATA/benchmarks/MedXpertQA"),
        Benchmark("mmlu-med", "text", "MMLU-Med", reader=ext.mmlu_medical, folder="mmlu",
                  download=hub.format(repo="cais/mmlu", folder="mmlu")),
        Benchmark("pubmedqa", "text", "PubMedQA", _src("PubMedQA"), convert=pubmedqa_record),
        Benchmark("medmcqa", "text", "MedMCQA", _src("MedMCQA"), ("val",), convert=mcq_record),
        Benchmark("medqa", "text", "MedQA", _src("MedQA"), convert=mcq_record),
        Benchmark("medbullets-op4", "text", "Medbullets op4", reader=ext.medbullets_op4, folder="Medbullets_op4",
                  download=hub.format(repo="tuenguyen/Medical-Eval-MedBullets_op4", folder="Medbullets_op4")),
        Benchmark("medbullets-op5", "text", "Medbullets op5", reader=ext.medbullets_op5, folder="Medbullets_op5",
                  download=hub.format(repo="LangAGI-Lab/medbullets_op5", folder="Medbullets_op5")),
        Benchmark("medxpertqa-text", "text", "MedXpertQA (Text)", reader=ext.medxpertqa_text, folder="MedXpertQA",
                  download=hub.format(repo="TsinghuaC3I/MedXpertQA", folder="MedXpertQA")),
        Benchmark("supergpqa-med", "text", "SuperGPQA (Med)", reader=ext.supergpqa_medical, folder="SuperGPQA",
                  download=hub.format(repo="m-a-p/SuperGPQA", folder="SuperGPQA")),
        Benchmark("mimic-cxr", "report", "MIMIC-CXR", _src("MIMIC-CXR"), convert=report_record),
        Benchmark("chexpert-plus", "report", "CheXpert Plus", _src("CheXpert-Plus"), ("val",),
                  convert=report_record),  # the release has train/valid only,
        Benchmark("iu-xray", "report", "IU-Xray", _src("IU-Xray"), convert=report_record),
        Benchmark("medtrinity", "report", "MedTrinity", ("medtrinity",), convert=report_record),
        Benchmark("medsg-bench", "grounding", "MedSG-Bench", _src("MedSG-Bench"), convert=grounding_record),
        Benchmark("deeplesion", "grounding", "DeepLesion", ("deeplesion",), convert=grounding_record),
        Benchmark("nih-boxes", "grounding", "NIH ChestX-ray14 boxes", ("nih_chestxray_bbox",),
                  convert=grounding_record),
        Benchmark("grazpedwri-dx", "grounding", "GRAZPEDWRI-DX", ("grazpedwri_dx",), convert=grounding_record),
        Benchmark("cells", "grounding", "Cells (DeepCell, CTC, bacteria)", ("deepcell", "ctc", "bacteria"),
                  convert=grounding_record),
    ]
    return {x.name: x for x in b}


def items(data: Path, bench: Benchmark, box_format: str = "qwen3") -> Iterator[Item]:
    """The benchmark's items, from our shards or from its release files."""
    if bench.reader is not None:
        yield from bench.reader(data / "benchmarks" / bench.folder)
    else:
        present = Benchmark(bench.name, bench.group, bench.title,
                            tuple(s for s in bench.sources if (data / s / "manifest.json").exists()),
                            bench.splits, bench.convert)
        yield from shard_items(data, present, box_format)
