"""medmo_train.metrics against hand-computed cases and the reference implementations.

Reference values were printed (10 digits) by the reference packages in a separate venv, never imported
here: pycocoevalcap 1.2 (`Cider().compute_score`, `Bleu(4).compute_score` on {i: refs}, {i: [pred]}),
rouge-score 0.1.2 (`RougeScorer(['rougeL'], use_stemmer=False).score_multi(refs, pred)`, averaged), and
MedEvalKit @9b12e3b `utils/utils.py` (`judge_multi_choice`, `judge_judgement`, `judge_close_end_vqa`,
`calculate_f1`) copied into a scratch module with mathruler 0.1.0.
"""

from __future__ import annotations

import pytest
from medmo_train.metrics import (
    bleu4,
    box_iou,
    box_iou_accuracy,
    cider_d,
    cider_d_items,
    closed_accuracy,
    closed_correct,
    extract_choice,
    match_boxes,
    mcq_accuracy,
    mcq_correct,
    open_exact,
    open_recall,
    rouge_l,
    token_recall,
)

A = (["a chest x ray with no acute findings", "left lower lobe opacity"],
     [["no acute cardiopulmonary findings on chest x ray"], ["opacity in the left lower lobe consistent with pneumonia"]])
B = (["no acute cardiopulmonary abnormality", "small left pleural effusion", "heart size is normal and lungs are clear"],
     [["no acute cardiopulmonary abnormality"], ["there is a small left pleural effusion"],
      ["the heart is normal in size and the lungs are clear", "normal heart size clear lungs"]])
E = (["the heart is normal . no effusion", "mild cardiomegaly with small bilateral effusions", "no pneumothorax",
      "lungs clear"],
     [["heart size normal no effusion or pneumothorax", "normal heart"], ["cardiomegaly and bilateral pleural effusions"],
      ["no pneumothorax is seen"], ["the lungs are clear bilaterally"]])

# (example, corpus CIDEr-D, per-item CIDEr-D, BLEU-4, mean rougeL F) from pycocoevalcap / rouge-score
REFERENCE = [
    (A, 2.8671057436, [3.3630952381, 2.3711162491], 0.0000425538, 0.4182692308),
    (B, 6.1210646926, [10.0, 5.8398033679, 2.5233907099], 0.5757575635, 0.8213716108),
    (E, 1.6424177511, [1.4009114507, 1.3504197105, 2.4229897233, 1.3953501201], 0.0000000050, 0.5997335997),
]


@pytest.mark.parametrize("example,cider,items,bleu,rouge", REFERENCE)
def test_report_metrics_equal_reference_packages(example, cider, items, bleu, rouge):
    preds, refs = example
    # tokenize=False: the inputs are what pycocoevalcap was fed (pre-tokenised, "." kept as a token in E)
    assert cider_d(preds, refs, tokenize=False) == pytest.approx(cider, abs=1e-6)
    assert cider_d_items(preds, refs, tokenize=False) == pytest.approx(items, abs=1e-6)
    assert bleu4(preds, refs, tokenize=False) == pytest.approx(bleu, abs=1e-6)
    assert rouge_l(preds, refs) == pytest.approx(rouge, abs=1e-6)


def test_cider_d_with_punctuation_equals_ptb_tokenized_reference():
    # pycocoevalcap with its Java PTBTokenizer gave 1.6636096030 on this raw text (notes 16-eval 2.6 D)
    preds = ["Bilateral pleural effusions, left greater than right.", "No pneumothorax."]
    refs = [["Small bilateral pleural effusions are seen; the left is larger."], ["There is no evidence of pneumothorax."]]
    assert cider_d(preds, refs) == pytest.approx(1.6636096030, abs=1e-6)


def test_cider_d_hand_cases():
    # one item: every n-gram has idf log(1) - log(1) = 0
    assert cider_d(["no acute findings"], [["no acute findings"]]) == 0.0
    # exact match of the first item with one reference scores 10 (cosine 1 at every n, no length penalty)
    assert cider_d_items(*B, tokenize=False)[0] == pytest.approx(10.0)
    # bare strings count as one reference each
    assert cider_d(A[0], [r[0] for r in A[1]], tokenize=False) == pytest.approx(2.8671057436, abs=1e-6)
    with pytest.raises(ValueError):
        cider_d(["a"], [])


def test_rouge_l_hand_cases_and_stemming_choice():
    # LCS "bilateral pleural noted" = 3 of 5 tokens both ways: P = R = F = 0.6. rouge-score gives 0.6 with
    # use_stemmer=False and 0.8 with True (effusion/effusions): we match the unstemmed scorer.
    assert rouge_l(["bilateral pleural effusions are noted"], ["bilateral pleural effusion is noted"]) == pytest.approx(0.6)
    # punctuation and case dropped by the tokenizer (rouge-score printed 0.6666666667)
    assert rouge_l(["Normal heart-size, no left effusion!"], ["Heart size: normal; no effusion (left)."]) == \
        pytest.approx(0.6666666667, abs=1e-9)
    assert rouge_l(["x"], [""]) == 0.0
    assert rouge_l([], []) == 0.0


def test_bleu4_exact_corpus_is_one():
    assert bleu4(["the heart is normal in size"], [["the heart is normal in size"]]) == pytest.approx(1.0)


# MedEvalKit judge_multi_choice(["A. Effusion", "B. Mass", "C. Pneumothorax", "D. Normal"], X, response) was True
# for exactly the letter listed here.
MEDEVALKIT_PICKS = {
    "B": "B", "b": "B", "B. Mass": "B", "The answer is C.": "C", "Answer: D": "D", "\\boxed{C}": "C",
    "<answer>A</answer>": "A", "I think it is a pneumothorax": "C", "pneumothorax": "C", "c. pneumothorax": "C",
    "Mass": "B", "(B) Mass": "B", "B\n\nBecause the mass...": "B", "Reasoning...\n\nC. Pneumothorax": "C",
    "": "A", "E": "A", "The correct option is (D)": "A", "Option B is right": "B", "b. mass": "B", "a": "A",
    "effusion or mass": "A",
}
CHOICES = ["Effusion", "Mass", "Pneumothorax", "Normal"]


@pytest.mark.parametrize("response,letter", MEDEVALKIT_PICKS.items())
def test_mcq_judge_equals_medevalkit(response, letter):
    assert [x for x in "ABCD" if mcq_correct(response, x, CHOICES)] == [letter]


def test_extract_choice_and_mcq_accuracy():
    assert extract_choice("The answer is C.", "ABCD") == "C"
    assert extract_choice("(B) Mass", "ABCD") == "B"
    assert extract_choice("\\boxed{d}", "ABCD") == "D"
    assert extract_choice("E", "ABCD") is None  # not an offered letter
    assert extract_choice("E. none", "ABCDE") == "E"
    assert extract_choice("I think it is a pneumothorax", "ABCD") is None
    # without option texts no letter means wrong; with them the fuzzy fallback picks C
    assert mcq_accuracy(["I think it is a pneumothorax", "B", "A"], ["C", "B", "C"]) == pytest.approx(1 / 3)
    assert mcq_accuracy(["I think it is a pneumothorax", "B", "A"], ["C", "B", "C"], [CHOICES] * 3) == \
        pytest.approx(2 / 3)


# (answer, response, MedEvalKit judge_judgement / judge_close_end_vqa)
YES_NO = [("yes", "Yes", True), ("yes", "Yes, there is.", True), ("no", "No.", True), ("no", "There is no mass", True),
          ("no", "I do not know", True), ("yes", "yes and no", False), ("no", "not sure", True),
          ("yes", "\\boxed{yes}", True), ("no", "The answer is no", True)]
CLOSE_END = [("ct", "CT", True), ("ct", "CT.", True), ("ct", "It is a CT", False), ("left lung", "Left Lung", True),
             ("mri", "answer: MRI", False)]


@pytest.mark.parametrize("answer,response,ok", YES_NO + CLOSE_END)
def test_closed_judges_equal_medevalkit(answer, response, ok):
    assert closed_correct(response, answer) is ok


def test_closed_accuracy_and_open_metrics():
    assert closed_accuracy(["Yes", "no", "CT"], ["yes", "yes", "CT"]) == pytest.approx(2 / 3)
    # MedEvalKit calculate_f1(response, answer) returned (f1, precision, recall); recall is ours:
    # ("left lobe" vs "left lower lobe") -> 0.6666666667, ("the liver" vs "liver") -> 1.0
    assert token_recall("left lobe", "left lower lobe") == pytest.approx(2 / 3)
    assert token_recall("the liver", "liver") == 1.0
    assert token_recall("lungs heart", "heart and lungs") == pytest.approx(2 / 3)
    assert open_recall(["left lobe", "the liver"], ["left lower lobe", "liver"]) == pytest.approx(5 / 6)
    assert open_exact("Brain", "brain") and not open_exact("the liver", "liver")


def test_box_iou_hand_cases():
    assert box_iou([0, 0, 10, 10], [0, 0, 10, 10]) == 1.0
    assert box_iou([0, 0, 10, 10], [5, 0, 15, 10]) == pytest.approx(50 / 150)
    assert box_iou([0, 0, 10, 10], [20, 20, 30, 30]) == 0.0
    assert box_iou_accuracy([[0, 0, 10, 10], [5, 0, 15, 10], None], [[0, 0, 10, 10]] * 3) == pytest.approx(1 / 3)
    assert box_iou_accuracy([[5, 0, 15, 10]], [[0, 0, 10, 10]], threshold=0.3) == 1.0
    # one-to-one matching: two ground-truth boxes, the better prediction goes to the box it overlaps most
    assert match_boxes([[0, 0, 10, 10]], [[0, 0, 10, 10], [1, 1, 10, 10]]) == [1.0, 0.0]
    assert match_boxes([[1, 1, 10, 10], [0, 0, 10, 10]], [[0, 0, 10, 10], [1, 1, 10, 10]]) == [1.0, 1.0]
    assert match_boxes([], [[0, 0, 1, 1]]) == [0.0]
