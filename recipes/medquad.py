"""MedQuAD: 47,457 consumer-health question/answer pairs built from 12 NIH websites (cancer.gov, GARD, GHR,
MedlinePlus, NIDDK, NINDS, NIHSeniorHealth, NHLBI, CDC, ...), one XML file per document (Ben Abacha &
Demner-Fushman, BMC Bioinformatics 2019). Licence CC BY 4.0.

Get it from GitHub `abachaa/MedQuAD`: folders `1_CancerGov_QA` ... `12_MPlusHerbsSupplements_QA`, one
`<Document id source url>` per file with `<Focus>`, `<FocusAnnotations>` and `<QAPairs>/<QAPair pid>/
<Question qid qtype>` + `<Answer>`. Variant schemas handled: 4 NINDS files use lowercase `<doc docid corpus>/
<doctitle-focus>/<qaPairs>/<pair>/<question>/<answer>`, and `9_CDC_QA/0000397.xml` has the root
`<DiseaseFile fid source>`. Entities (`&apos;`) are decoded by the XML parser. Also read: the HF mirror CSV
(`keivalya/MedQuad-MedicalQnADataset`, `medDataset_processed.csv`: `qtype, Question, Answer`), only when
no XML folder is present.

Only 16,423 pairs have answers: the three MedlinePlus copyright sets (ADAM, MPlusDrugs, MPlusHerbs) ship
empty `<Answer></Answer>` (an XML comment says why), and GARD has 5 empty answers. Every pair without an
answer is counted as a reject with reason `no_answer`; a file that is not well-formed XML or not UTF-8 is
one reject (`malformed_xml` / `non_utf8_text`) and a pair without a question is `empty_text`.
Text: the space before "?" ("What is (are) X ?") and a doubled "? ?" are removed; answers keep their
line breaks, runs of blanks (no-break spaces included) collapse to one space, and a bullet hidden in a run
of blanks ("...percent    - Prediabetes") starts a new line.
Ids `<folder>/<file stem>/<qid>`: qids repeat across folders, and inside `1_CancerGov_QA` the sub-document
files `0000013_2_1.xml` ... `0000013_2_6.xml` (and `0000013_3_N.xml`) reuse their parent's Document id and
qids (`0000013_2-1` ...) for different questions: 42 real pairs share 8 `(folder, qid)` keys, none of them a
duplicate; `(folder, file, qid)` is unique. A true duplicate (the same cleaned question AND answer as an
earlier pair: 48 real pairs, all in `5_NIDDK_QA`, inside one file or across republished files such as
`0000027.xml` = `0000037.xml`) is rejected as `duplicate_pair`, naming its file and the pair it repeats.
Every reject's detail names its file. Single `train` split; no benchmark overlap found (sources.md §6.2).

Left unread on purpose: `QA-TestSet-LiveQA-Med-Qrels-2479-Answers.zip`. It is not a QA set: it holds TREC
judgments (`<question no> <1-Incorrect|...|4-Excellent> <answer id>` for 103 LiveQA-Med 2017 test
questions, whose text is not in the zip) and a CSV `AnswerID, Answer` of the 2,479 judged MedQuAD answers,
1,914 of them from the three MedlinePlus sets whose answers the XML release removed for copyright.
"""

from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path

from medmo_data.families.text_qa import instruction_messages
from medmo_data.formats.tables import FileRefused, iter_csv, read_small
from medmo_data.recipe import RawSample, Reject, SourceError, SourceInfo

INFO = SourceInfo(
    name="medquad", title="MedQuAD", stages=(3,), tasks=("text_qa",), modality="none", access="open",
    license="CC-BY-4.0", homepage="https://github.com/abachaa/MedQuAD",
    citation="Ben Abacha & Demner-Fushman, A Question-Entailment Approach to Question Answering, "
             "BMC Bioinformatics 2019",
    images_per_sample=0,
)
HUB_PATTERNS = ["*.csv", "*.md"]
CSV_NAME = "medDataset_processed.csv"
_FOLDER = re.compile(r"^\d+_.+_QA(_XML)?$")


def clean_question(text: str) -> str:
    text = re.sub(r"\s+([?.!])", r"\1", re.sub(r"\s+", " ", text))
    return re.sub(r"\?{2,}", "?", text).strip()


def clean_answer(text: str) -> str:
    text = text.replace("\r\n", "\n")
    text = re.sub(r"[ \t\xa0]{2,}- ", "\n- ", text)  # bullets flattened into runs of blanks
    text = re.sub(r"[ \t\xa0]+", " ", text)  # NINDS pads sentences with no-break spaces
    text = "\n".join(line.strip() for line in text.split("\n"))
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _child(el: ET.Element, *names: str) -> ET.Element | None:
    for c in el:
        if c.tag.lower() in names:
            return c
    return None


def _text(el: ET.Element | None) -> str:
    return "".join(el.itertext()) if el is not None else ""


def document(path: Path, folder: str) -> Iterator[RawSample | Reject]:
    """Every QA pair of one MedQuAD XML file, in file order."""
    fid = f"{folder}/{path.stem}"
    try:
        data = read_small(path)
    except FileRefused as exc:  # a FIFO or device in the tree, a huge file: this document only
        yield Reject(fid, exc.reason, str(exc))
        return
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        yield Reject(fid, "non_utf8_text", f"{path}: byte {exc.start} is not UTF-8")
        return
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        yield Reject(fid, "malformed_xml", f"{path}: {exc}")
        return
    doc_id = root.get("id") or root.get("docid") or root.get("fid") or path.stem
    source = root.get("source") or root.get("corpus") or ""
    focus = clean_question(_text(_child(root, "focus", "doctitle-focus")))
    pairs = _child(root, "qapairs")
    for n, pair in enumerate(list(pairs) if pairs is not None else [], 1):
        if pair.tag.lower() not in ("qapair", "pair"):
            continue
        q_el = _child(pair, "question")
        qid = (q_el.get("qid") if q_el is not None else None) or f"{doc_id}-{pair.get('pid') or n}"
        rid = f"{folder}/{path.stem}/{qid}"
        question, answer = clean_question(_text(q_el)), clean_answer(_text(_child(pair, "answer")))
        if not question:
            yield Reject(rid, "empty_text", f"{path}: pair {pair.get('pid')} has no question")
            continue
        if not answer:
            yield Reject(rid, "no_answer", f"{path}: pair {pair.get('pid')} has an empty answer")
            continue
        yield RawSample(id=rid, split="train", task="text_qa", messages=instruction_messages(question, None, answer),
                        target={"answer": answer},
                        meta={"collection": folder, "document": doc_id, "source": source, "focus": focus,
                              "qtype": (q_el.get("qtype") or "") if q_el is not None else "",
                              "url": root.get("url") or ""})


def drop_repeats(items: Iterator[RawSample | Reject], file_of: Callable[[str], str]) -> Iterator[RawSample | Reject]:
    """Reject a pair whose question AND answer equal an earlier pair's as `duplicate_pair`;
    `file_of(id)` names the file a pair came from, for the reject's detail."""
    first: dict[bytes, str] = {}
    for item in items:
        if isinstance(item, RawSample):
            key = hashlib.sha1(repr(item.messages).encode("utf-8")).digest()
            if key in first:
                yield Reject(item.id, "duplicate_pair", f"{file_of(item.id)}: same question and answer as "
                                                        f"{first[key]}")
                continue
            first[key] = item.id
        yield item


def _csv(path: Path) -> Iterator[RawSample | Reject]:
    for item in iter_csv(path, required=["Question", "Answer"]):
        if isinstance(item, Reject):
            yield item
            continue
        rid, row = item
        question, answer = clean_question(row["Question"]), clean_answer(row["Answer"])
        if not question or not answer:
            yield Reject(rid, "no_answer" if question else "empty_text", f"{path.name}: empty question or answer")
            continue
        yield RawSample(id=rid, split="train", task="text_qa", messages=instruction_messages(question, None, answer),
                        target={"answer": answer},
                        meta={"collection": "", "document": "", "source": "", "focus": "",
                              "qtype": row.get("qtype", "").strip(), "url": ""})


def records(root: Path, options: dict[str, str]) -> Iterator[RawSample | Reject]:
    folders = sorted((p for p in root.rglob("*") if p.is_dir() and _FOLDER.match(p.name)),
                     key=lambda p: (int(p.name.split("_")[0]), p.name))
    if folders:
        pairs = (item for folder in folders for path in sorted(folder.glob("*.xml"))
                 for item in document(path, folder.name))
        yield from drop_repeats(pairs, lambda sid: sid.rsplit("/", 1)[0] + ".xml")  # <folder>/<stem>.xml
        return
    csvs = sorted(root.rglob(CSV_NAME)) or sorted(root.rglob("*.csv"))
    if csvs:
        yield from drop_repeats(_csv(csvs[0]), lambda sid: csvs[0].name)
        return
    raise SourceError(f"{root}: no MedQuAD collection folders (e.g. 1_CancerGov_QA/*.xml) and no {CSV_NAME}")
