"""Evaluation metrics, reimplemented to equal the field's reference code (no runtime dependency on it).

- `rouge_l`: Google `rouge-score` `RougeScorer(['rougeL'], use_stemmer=False)` F-measure, mean over items
  (multi-reference items: `score_multi`, the best reference by F).
- `cider_d`, `bleu4`: `pycocoevalcap` 1.2 `Cider` (CIDEr-D: n=4, sigma=6, clipped tf-idf, x10, document
  frequencies over the corpus's references) and `Bleu(4)` (corpus BLEU, "closest" reference length).
  Both score the whole corpus at once: CIDEr-D's idf and BLEU's counts are corpus-level.
- `closed_accuracy`, `open_recall`, `mcq_accuracy`, `extract_choice`: MedEvalKit's judges
  (`utils/utils.py`: `judge_judgement`, `judge_close_end_vqa`, `calculate_f1`, `judge_multi_choice`).
- `box_iou`, `box_iou_accuracy`: MedSG-Bench's IoU (plain xyxy, no +1 pixel) and Acc@IoU.

Tests compare each against values printed by the reference packages (tests/test_metrics.py).
"""

from __future__ import annotations

import difflib
import math
import re
from collections import Counter
from collections.abc import Sequence

Box = Sequence[float]

# ---- text normalisation ------------------------------------------------------------------------------

_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_PUNCT = re.compile(r"[^\w\s]")


def rouge_tokens(text: str) -> list[str]:
    """rouge-score's default tokenizer without stemming: lower case, runs of [a-z0-9] (others dropped)."""
    return [t for t in _NON_ALNUM.sub(" ", text.lower()).split() if t]


def coco_tokens(text: str) -> list[str]:
    """Java-free stand-in for the COCO PTBTokenizer: lower case, punctuation removed, whitespace split.

    Equal to PTB output for text without contractions (PTB drops the same punctuation tokens).
    """
    return _PUNCT.sub(" ", text.lower()).split()


def _refs(references: Sequence[str | Sequence[str]]) -> list[list[str]]:
    return [[r] if isinstance(r, str) else list(r) for r in references]


def _check_lengths(predictions: Sequence, references: Sequence) -> None:
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")


# ---- ROUGE-L -----------------------------------------------------------------------------------------

def _lcs(a: list[str], b: list[str]) -> int:
    if not a or not b:
        return 0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l_item(prediction: str, reference: str | Sequence[str]) -> float:
    """ROUGE-L F of one prediction (rouge-score `score`/`score_multi` with use_stemmer=False)."""
    best = 0.0
    hyp = rouge_tokens(prediction)
    for ref in [reference] if isinstance(reference, str) else reference:
        target = rouge_tokens(ref)
        lcs = _lcs(target, hyp)
        if not target or not hyp or lcs == 0:
            f = 0.0
        else:
            p, r = lcs / len(hyp), lcs / len(target)
            f = 2 * p * r / (p + r)
        best = max(best, f)
    return best


def rouge_l(predictions: Sequence[str], references: Sequence[str | Sequence[str]]) -> float:
    """Mean ROUGE-L F-measure in [0, 1]; equals rouge-score `RougeScorer(['rougeL'], use_stemmer=False)`.

    A reference may be a string or a list of strings (best reference by F, as `score_multi`).
    """
    _check_lengths(predictions, references)
    if not predictions:
        return 0.0
    return sum(rouge_l_item(p, r) for p, r in zip(predictions, references, strict=True)) / len(predictions)


# ---- CIDEr-D -----------------------------------------------------------------------------------------

def _ngrams(tokens: list[str], n: int = 4) -> Counter[tuple[str, ...]]:
    c: Counter[tuple[str, ...]] = Counter()
    for k in range(1, n + 1):
        for i in range(len(tokens) - k + 1):
            c[tuple(tokens[i:i + k])] += 1
    return c


def cider_d_items(predictions: Sequence[str], references: Sequence[str | Sequence[str]],
                  tokenize: bool = True, n: int = 4, sigma: float = 6.0) -> list[float]:
    """Per-item CIDEr-D scores of a corpus (each depends on the whole corpus through the idf)."""
    _check_lengths(predictions, references)
    tok = coco_tokens if tokenize else str.split
    hyps = [_ngrams(tok(p), n) for p in predictions]
    refs = [[_ngrams(tok(r), n) for r in rs] for rs in _refs(references)]
    df: Counter[tuple[str, ...]] = Counter()
    for rs in refs:
        df.update(set().union(*[set(r) for r in rs]) if rs else set())
    log_n = math.log(float(len(refs))) if refs else 0.0

    def vec(counts: Counter[tuple[str, ...]]) -> tuple[list[dict], list[float], int]:
        v: list[dict] = [{} for _ in range(n)]
        norm = [0.0] * n
        length = 0
        for g, tf in counts.items():
            k = len(g) - 1
            w = float(tf) * (log_n - math.log(max(1.0, df[g])))
            v[k][g] = w
            norm[k] += w * w
            if k == 1:  # pycocoevalcap measures length in bigrams (tokens - 1); kept for equal scores
                length += tf
        return v, [math.sqrt(x) for x in norm], length

    def sim(h: tuple, r: tuple) -> list[float]:
        (vh, nh, lh), (vr, nr, lr) = h, r
        out = []
        for k in range(n):
            val = sum(min(w, vr[k].get(g, 0.0)) * vr[k].get(g, 0.0) for g, w in vh[k].items())
            if nh[k] != 0 and nr[k] != 0:
                val /= nh[k] * nr[k]
            out.append(val * math.exp(-((lh - lr) ** 2) / (2 * sigma ** 2)))
        return out

    scores = []
    for h, rs in zip(hyps, refs, strict=True):
        hv = vec(h)
        total = [0.0] * n
        for r in rs:
            total = [a + b for a, b in zip(total, sim(hv, vec(r)), strict=True)]
        mean = sum(total) / n
        scores.append(mean / max(1, len(rs)) * 10.0)
    return scores


def cider_d(predictions: Sequence[str], references: Sequence[str | Sequence[str]], tokenize: bool = True) -> float:
    """Corpus CIDEr-D as pycocoevalcap's `Cider().compute_score` (the paper's 143.4 is 1.434 here).

    `references[i]` is a list of reference strings (a bare string counts as one). With `tokenize`, text is
    lower-cased and stripped of punctuation first (`coco_tokens`); without, split on whitespace as given.
    A one-item corpus scores 0 (every n-gram's idf is log(1) = 0), as in pycocoevalcap.
    """
    items = cider_d_items(predictions, references, tokenize)
    return sum(items) / len(items) if items else 0.0


# ---- BLEU-4 ------------------------------------------------------------------------------------------

def bleu4(predictions: Sequence[str], references: Sequence[str | Sequence[str]], tokenize: bool = True) -> float:
    """Corpus BLEU-4 as pycocoevalcap's `Bleu(4)` (clipped counts summed over the corpus, the closest
    reference length per item, corpus brevity penalty, its 1e-15/1e-9 smoothing)."""
    _check_lengths(predictions, references)
    tok = coco_tokens if tokenize else str.split
    tiny, small = 1e-15, 1e-9
    guess, correct = [0] * 4, [0] * 4
    testlen = reflen = 0
    for p, rs in zip(predictions, _refs(references), strict=True):
        hyp = tok(p)
        counts = _ngrams(hyp)
        maxref: Counter[tuple[str, ...]] = Counter()
        lens = []
        for r in rs:
            rt = tok(r)
            lens.append(len(rt))
            for g, c in _ngrams(rt).items():
                maxref[g] = max(maxref[g], c)
        testlen += len(hyp)
        reflen += min((abs(ln - len(hyp)), ln) for ln in lens)[1] if lens else 0
        for k in range(4):
            guess[k] += max(0, len(hyp) - k)
        for g, c in counts.items():
            correct[len(g) - 1] += min(maxref.get(g, 0), c)
    if not predictions:
        return 0.0
    score = 1.0
    for k in range(4):
        score *= (correct[k] + tiny) / (guess[k] + small)
    score **= 1 / 4
    ratio = (testlen + tiny) / (reflen + small)
    return score * math.exp(1 - 1 / ratio) if ratio < 1 else score


# ---- MedEvalKit judges -------------------------------------------------------------------------------

_ANSWER_MARKERS = ["**answer**:", "**answer**", "*answer*:", "**answer:**", "answer is", "answer:", "答案:",
                   "final answer", "final answer is"]


def boxed_content(text: str) -> str | None:
    """Content of the last `\\boxed{...}` (braces balanced), like mathruler's `extract_boxed_content`."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, i = 0, start + len("\\boxed")
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1:j]
    return None


def tagged(text: str, tag: str = "answer") -> str:
    """Text between <tag> and </tag> (MedEvalKit `extract`), else the whole text."""
    m = re.search(rf"<{tag}>(.*?)</{tag}>", text, re.S)
    return m.group(1) if m and m.group(1) else text


def parse_response(response: str) -> str:
    """MedEvalKit `parse_response`: lower case, unwrap \\boxed{} or <answer>, keep what follows an
    "answer:"-style marker."""
    response = response.lower()
    if "boxed" in response:
        response = boxed_content(response) or "None"
    elif "<answer>" in response:
        response = tagged(response)
    for marker in _ANSWER_MARKERS:
        if marker in response:
            response = response.split(marker)[-1]
    return response


def is_yes_no(answer: str) -> bool:
    return answer.strip().lower() in ("yes", "no")


def closed_correct(prediction: str, answer: str, yes_no_judge: bool = True) -> bool:
    """One closed question: yes/no answers by MedEvalKit `judge_judgement` (exactly one of "yes"/"no"
    occurs, and it is the answer), other answers by `judge_close_end_vqa` (exact match after parsing).
    `yes_no_judge=False` judges yes/no answers by exact match too (MedEvalKit's SLAKE path)."""
    answer = answer.strip().lower()
    boxed = boxed_content(prediction)
    # no strip after parsing, as MedEvalKit: "answer: MRI" leaves " mri", which is not "mri"
    response = parse_response((boxed if boxed is not None else prediction).strip())
    response = response.replace("\n", "").replace(".", "")
    if yes_no_judge and is_yes_no(answer):
        return (("yes" in response) ^ ("no" in response)) and answer in response
    return response == answer


def closed_accuracy(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Fraction of closed VQA questions answered right (`closed_correct`)."""
    _check_lengths(predictions, references)
    if not predictions:
        return 0.0
    return sum(closed_correct(p, r) for p, r in zip(predictions, references, strict=True)) / len(predictions)


def open_exact(prediction: str, answer: str) -> bool:
    """MedEvalKit's open-question "accuracy": the parsed response equals the answer (lower case)."""
    boxed = boxed_content(prediction)
    return parse_response((boxed if boxed is not None else prediction).strip()) == answer.strip().lower()


def token_recall(prediction: str, answer: str) -> float:
    """Share of the answer's distinct words found in the prediction (MedEvalKit `calculate_f1`'s recall:
    sets of lower-cased whitespace tokens)."""
    boxed = boxed_content(prediction)
    pred = set(parse_response(boxed if boxed is not None else prediction).split())
    gold = set(answer.lower().split())
    return len(pred & gold) / len(gold) if gold else 0.0


def open_recall(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Mean token recall of open VQA answers (`token_recall`), in [0, 1]."""
    _check_lengths(predictions, references)
    if not predictions:
        return 0.0
    return sum(token_recall(p, r) for p, r in zip(predictions, references, strict=True)) / len(predictions)


def extract_choice(text: str, letters: Sequence[str] = "ABCD") -> str | None:
    """The option letter a response picks, or None when it names none.

    MedEvalKit's `judge_multi_choice` reading: a bare letter before the first blank line (or "X." after
    the last one), then \\boxed{}/<answer>/"answer is" unwrapping, then the text before the first "." and
    after the last ":" must be one letter. Also accepted: "(B)" and "B)" at the start (MMMU's layout).
    """
    lower = [x.lower() for x in letters]
    response = text.lower()
    blocks = response.split("\n\n")
    if blocks[0] in lower:
        response = blocks[0]
    elif blocks[-1].split(".")[0] in lower:
        response = blocks[-1].split(".")[0]
    response = parse_response(response).strip().replace("\n", "")
    head = response.split(".")[0].split(":")[-1].strip()
    if head in lower:
        return letters[lower.index(head)]
    m = re.match(r"^\(?([a-z])\)", head)
    if m and m.group(1) in lower:
        return letters[lower.index(m.group(1))]
    return None


def mcq_correct(prediction: str, answer: str, choices: Sequence[str] | None = None,
                letters: Sequence[str] | None = None) -> bool:
    """One multiple-choice item, as MedEvalKit `judge_multi_choice`.

    `choices` are the option texts in letter order. A response without a letter is matched to an option
    whose "X. text" string it equals, else to the most similar one (difflib ratio, first on ties), so
    every response picks some option, as in MedEvalKit. Without `choices`, no letter means wrong.
    """
    letters = list(letters or [chr(65 + i) for i in range(len(choices or "ABCD"))])
    picked = extract_choice(prediction, letters)
    if picked is None and choices:
        full = [f"{x}. {c}".lower() for x, c in zip(letters, choices, strict=False)]
        response = parse_response(prediction.lower()).strip().lower().replace("\n", "")
        if response in full:
            picked = letters[full.index(response)]
        else:
            ratios = [difflib.SequenceMatcher(None, c, response).ratio() for c in full]
            best = max(range(len(full)), key=lambda i: (ratios[i], -i))
            picked = letters[best] if ratios[best] > 0 else letters[0]
    return picked is not None and picked.upper() == answer.strip().upper()


def mcq_accuracy(predictions: Sequence[str], answers: Sequence[str],
                 choices: Sequence[Sequence[str]] | None = None) -> float:
    """Fraction of multiple-choice items answered with the right letter (`mcq_correct`)."""
    _check_lengths(predictions, answers)
    if not predictions:
        return 0.0
    ok = [mcq_correct(p, a, choices[i] if choices else None)
          for i, (p, a) in enumerate(zip(predictions, answers, strict=True))]
    return sum(ok) / len(ok)


# ---- boxes -------------------------------------------------------------------------------------------

def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two [x1, y1, x2, y2] boxes (continuous coordinates, no +1)."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match_boxes(pred: Sequence[Box], gt: Sequence[Box]) -> list[float]:
    """IoU of each ground-truth box with its predicted box, matched one to one greedily by IoU (0 if
    unmatched). A single-box item reduces to MedSG-Bench's IoU of the first predicted box only if the model
    gave one box; with several, the best-overlapping one is used."""
    pairs = sorted(((box_iou(p, g), i, j) for i, p in enumerate(pred) for j, g in enumerate(gt)), reverse=True)
    used_p: set[int] = set()
    out = [0.0] * len(gt)
    done: set[int] = set()
    for iou, i, j in pairs:
        if iou <= 0 or i in used_p or j in done:
            continue
        used_p.add(i)
        done.add(j)
        out[j] = iou
    return out


def box_iou_accuracy(pred: Sequence[Box | None], gt: Sequence[Box], threshold: float = 0.5) -> float:
    """Acc@IoU: share of ground-truth boxes whose paired prediction (None: no box) has IoU >= threshold."""
    _check_lengths(pred, gt)
    if not gt:
        return 0.0
    return sum(p is not None and box_iou(p, g) >= threshold for p, g in zip(pred, gt, strict=True)) / len(gt)
