"""medmo-eval: benchmark readers (our shards and the external release layouts), judging, the three outputs,
resume, and an end-to-end run of the tiny Qwen3-VL on test splits built from the fixtures."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from medmo_train.eval import benchmarks as bm
from medmo_train.eval import external
from medmo_train.eval.benchmarks import Item, items, registry
from medmo_train.eval.cli import main
from medmo_train.eval.mmmu import open_correct, parse_multi_choice
from medmo_train.eval.score import aggregate, score_item
from PIL import Image

from tests.helpers import build_fixture, read_samples
from tests.test_train_support import tiny_model  # noqa: F401 - pytest fixture

# one benchmark of each kind: closed VQA (VQA-RAD), open VQA (SLAKE), MCQ (MedQA), report (IU-Xray),
# grounding (DeepLesion)
E2E = {"vqa-rad": "vqa_rad", "slake": "slake", "medqa": "medqa", "iu-xray": "iu_xray", "deeplesion": "deeplesion"}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("evaldata")
    for source in [*E2E.values(), "chexpert_plus"]:
        build_fixture(source, root)
    return root / "out"


def _expected(data: Path, source: str, keep) -> list[dict]:
    """The fixture's records an independent filter says the benchmark scores (in shard order)."""
    return [s["json"] for s in read_samples(data / source) if keep(s["json"])]


def test_shard_items_follow_medevalkit_prompts(data):
    reg = registry()
    rad = list(items(data, reg["vqa-rad"]))
    recs = _expected(data, "vqa_rad", lambda r: r["split"] == "test")
    assert [i.id for i in rad] == [r["id"] for r in recs] and len(rad) == 2
    assert all(i.kind == "closed" for i in rad)  # answers "No": yes/no rule
    assert rad[0].messages[0]["content"][-1]["text"] == "Is there a mass?\nPlease output 'yes' or 'no'(no extra output)."
    assert len(rad[0].images) == 1 and rad[0].images[0].size[0] > 0
    slake = list(items(data, reg["slake"]))
    en_vqa = _expected(data, "slake", lambda r: r["split"] == "test" and r["task"] == "vqa"
                       and r["meta"].get("lang") == "en" and r["meta"]["filed_split"] == "test")
    assert en_vqa and len(en_vqa) < len(_expected(data, "slake", lambda r: r["split"] == "test"
                                                  and r["task"] == "vqa" and r["meta"].get("lang") == "en"))
    assert [i.id for i in slake] == [r["id"] for r in en_vqa] and all(i.kind == "open" for i in slake)
    assert slake[0].prompt.endswith("\nPlease answer the question concisely.")
    mcq = list(items(data, reg["medqa"]))
    assert len(mcq) == len(_expected(data, "medqa", lambda r: r["split"] == "test"))
    text = mcq[0].messages[0]["content"][0]["text"]
    assert text.startswith("\nQuestion: A junior orthopaedic surgery resident")
    assert "\nOptions: \nA. Disclose the error" in text
    assert text.endswith("D. Refuse to dictate the operative report\nAnswer with the option's letter from the given "
                         "choices directly.")
    assert "Answer with the letter of the correct option" not in text and mcq[0].reference == "B"
    report = list(items(data, reg["iu-xray"]))[0]
    assert report.reference.startswith("Findings: Borderline cardiomegaly.") and \
        report.reference.endswith("Impression: No acute pulmonary findings..")  # MedEvalKit's golden, verbatim
    assert len(report.images) == 2 and report.prompt.startswith("<image><image>You are a helpful assistant.")
    pmc = bm.pmc_vqa_record(_expected(data, "medqa", lambda r: r["split"] == "test")[0], "qwen3")
    assert "\nOptions: \nA: Disclose the error" in pmc.prompt
    # CheXpert Plus releases train/valid only: its valid split is the scored one
    chex = list(items(data, reg["chexpert-plus"]))
    assert [i.id for i in chex] == [r["id"] for r in _expected(data, "chexpert_plus", lambda r: r["split"] == "val")]
    assert len(chex) == 1
    ground = list(items(data, reg["deeplesion"]))
    assert len(ground) == len(_expected(data, "deeplesion", lambda r: r["split"] == "test"))
    g = ground[0]
    assert g.boxes == [[260.437, 210.224, 279.221, 226.613]] and g.reference == "abdomen <box>[[509, 411, 545, 443]]</box>"
    assert "{box_format_hint}" not in g.prompt and "0 to 1000" in g.prompt


def test_slake_closed_yes_no_is_exact_match_as_medevalkit():
    # MedEvalKit's SLAKE checks `answer in ["yes", "no"]` before lower-casing; SLAKE writes "Yes", so
    # judge_close_end_vqa decides: "Yes, it is." is wrong there, right under VQA-RAD's yes/no judge.
    rec = {"id": "q1", "task": "vqa", "images": [{}], "meta": {"lang": "en"},
           "target": {"answer": "Yes", "answer_type": "CLOSED"},
           "messages": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Is it a CT?"}]}]}
    item = bm.slake_vqa(rec, "qwen3")
    assert item.kind == "closed" and item.prompt == "<image>Is it a CT?\nAnswer the question using a single word or phrase."
    assert score_item(item, "Yes, it is.")["correct"] is False and score_item(item, "Yes.")["correct"] is True
    rad = bm.yes_no_vqa({**rec, "target": {"answer": "Yes"}}, "qwen3")
    assert score_item(rad, "Yes, it is.")["correct"] is True


def test_grounding_scores_answers_in_every_frame():
    item = Item("x", "grounding", [], boxes=[[100.0, 50.0, 300.0, 150.0], [10.0, 10.0, 20.0, 20.0]],
                image_size=(400, 200))
    qwen = "lesion <box>[[250, 250, 750, 750]]</box>"
    assert score_item(item, qwen)["ious"] == [1.0, 0.0]
    js = '```json\n[{"bbox_2d": [250, 250, 750, 750], "label": "lesion"}]\n```'
    assert score_item(item, js)["ious"] == [1.0, 0.0]
    bare = "[250, 250, 750, 750] and [25, 50, 50, 100]"
    assert score_item(item, bare)["ious"] == [1.0, 1.0]
    # normalised [0, 1] floats in a 0-1000 frame (MedSG-Bench's extract_bbox reads them so)
    assert score_item(item, "[0.25, 0.25, 0.75, 0.75]")["ious"] == [1.0, 0.0]
    # pixel frame: coordinates of the fed image (800x400 here), mapped back to stored pixels
    px = Item("x", "grounding", [], boxes=[[100.0, 50.0, 300.0, 150.0]], image_size=(400, 200), box_format="pixel")
    assert score_item(px, "lesion <box>[[200, 100, 600, 300]]</box>", fed_size=(800, 400))["ious"] == [1.0]
    half = score_item(item, "lesion <box>[[250, 250, 500, 750]]</box>")
    lines = [{"kind": "grounding", "score": s} for s in (score_item(item, qwen), half)]
    m = aggregate("grounding", lines)
    assert m["gt_boxes"] == 4 and m["acc_iou50"] == pytest.approx(2 / 4) and m["mean_iou"] == pytest.approx(1.5 / 4)


def test_mmmu_parsing_hand_cases():
    opts = ["aspirin", "heparin", "warfarin", "insulin"]
    assert parse_multi_choice("(B)", "ABCD", opts) == "B"
    assert parse_multi_choice("The answer is C.", "ABCD", opts) == "C"
    assert parse_multi_choice("I would start heparin for this patient today", "ABCD", opts) == "B"
    assert parse_multi_choice("A or (D)? I pick (D)", "ABCD", opts) == "D"
    # none named: a random letter, seeded by the item id (stable across reruns)
    assert parse_multi_choice("no idea", "ABCD", opts, seed="id1") == parse_multi_choice("??", "ABCD", opts, seed="id1")
    assert open_correct("The dose is 2.50 mg", "2.5") and not open_correct("The dose is 3 mg", "2.5")
    assert open_correct("so the answer is the left atrium", ["left atrium", "LA"])


def _parquet(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)


def _png(size=(32, 24)) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((size[1], size[0], 3), 90, np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def make_external(root: Path) -> None:
    """Miniatures of the external benchmarks in their release / hub layouts."""
    b = root / "benchmarks"
    for n, subject in enumerate(external.MMLU_MEDICAL):  # the hub snapshot has every subject's folder
        _parquet(b / f"mmlu/{subject}/test-00000-of-00001.parquet", [
            {"question": f"Which bone is in the wrist ({subject})?", "subject": subject,
             "choices": ["Femur", "Scaphoid", "Tibia", "Ulna"], "answer": n % 4}])
    _parquet(b / "mmlu/astronomy/test-00000-of-00001.parquet", [  # not a medical subject: not read
        {"question": "Sun?", "subject": "astronomy", "choices": ["a", "b", "c", "d"], "answer": 0}])
    for subject in external.MMMU_MEDICAL:
        if subject != "Clinical_Medicine":
            _parquet(b / f"MMMU/{subject}/validation-00000-of-00001.parquet", [
                {"id": f"validation_{subject}_1", "question": "Q?", "options": "['x', 'y']", "answer": "A",
                 "question_type": "multiple-choice", "image_1": {"bytes": _png(), "path": "a.png"}, "image_2": None}])
    _parquet(b / "MMMU/Clinical_Medicine/validation-00000-of-00001.parquet", [
        {"id": "validation_Clinical_Medicine_1", "question": "<image 1> What is shown?", "options": "['Edema', 'Mass']",
         "answer": "B", "question_type": "multiple-choice", "image_1": {"bytes": _png(), "path": "a.png"},
         "image_2": None},
        {"id": "validation_Clinical_Medicine_2", "question": "Dose in mg?", "options": "[]", "answer": "2.5",
         "question_type": "open", "image_1": None, "image_2": None}])
    _jsonl(b / "MedXpertQA/MM/test.jsonl", [
        {"id": "MM-1", "question": "Which finding?", "options": {"A": "a", "B": "b", "C": "c", "D": "d", "E": "e"},
         "label": "E", "images": ["MM-1-a.jpeg", "MM-1-b.jpeg"], "medical_task": "Diagnosis",
         "question_type": "Reasoning"}])
    _jsonl(b / "MedXpertQA/Text/test.jsonl", [
        {"id": "Text-1", "question": "Q?", "options": {x: x.lower() for x in "ABCDEFGHIJ"}, "label": "J",
         "medical_task": "Treatment", "question_type": "Understanding"}])
    (b / "MedXpertQA/images").mkdir(parents=True)
    for n in ("MM-1-a.jpeg", "MM-1-b.jpeg"):
        (b / "MedXpertQA/images" / n).write_bytes(_png())
    qa = b / "OmniMedVQA/QA_information/Open-access/ACRIMA.json"
    qa.parent.mkdir(parents=True)
    qa.write_text(json.dumps([{"dataset": "ACRIMA", "question_id": "ACRIMA_0001", "question_type": "Disease Diagnosis",
                               "question": "What is the diagnosis?", "gt_answer": "Glaucoma",
                               "image_path": "Images/ACRIMA/Im001.png", "option_A": "Normal", "option_B": "Glaucoma",
                               "modality_type": "Fundus Photography"}]), encoding="utf-8")
    (b / "OmniMedVQA/Images/ACRIMA").mkdir(parents=True)
    (b / "OmniMedVQA/Images/ACRIMA/Im001.png").write_bytes(_png())
    _parquet(b / "Medbullets_op4/data/train-00000-of-00001.parquet", [
        {"question": "A 30-year-old...", "options": {"A": "w", "B": "x", "C": "y", "D": "z"}, "answer_idx": "C"}])
    _parquet(b / "Medbullets_op5/data/train-00000-of-00001.parquet", [
        {"question": "A 40-year-old...", "opa": "v", "opb": "w", "opc": "x", "opd": "y", "ope": "z", "answer_idx": "E"}])
    _jsonl(b / "SuperGPQA/SuperGPQA-all.jsonl", [
        {"uuid": "u1", "question": "Med?", "options": ["p", "q", "r"], "answer_letter": "B", "discipline": "Medicine",
         "field": "Clinical Medicine", "difficulty": "easy"},
        {"uuid": "u2", "question": "Phys?", "options": ["p", "q"], "answer_letter": "A", "discipline": "Science"}])


def test_external_readers_read_release_layouts(tmp_path):
    make_external(tmp_path)
    reg = registry()
    got = {n: list(items(tmp_path, reg[n])) for n in ("mmlu-med", "mmmu-med", "medxpertqa-mm", "medxpertqa-text",
                                                       "omnimedvqa", "medbullets-op4", "medbullets-op5", "supergpqa-med")}
    assert [(i.id, i.reference) for i in got["mmlu-med"]][:2] == [("anatomy/0", "A"), ("clinical_knowledge/0", "B")]
    assert len(got["mmlu-med"]) == 9  # astronomy is not read
    assert "\nOptions: \nA.Femur\nB.Scaphoid" in got["mmlu-med"][0].prompt  # MedEvalKit's "A.text" for MMLU
    mmmu = [i for i in got["mmmu-med"] if "Clinical" in i.id]
    assert len(got["mmmu-med"]) == 6
    assert [i.kind for i in mmmu] == ["mmmu_mcq", "mmmu_open"] and len(mmmu[0].images) == 1 and not mmmu[1].images
    assert mmmu[0].messages[0]["content"][-1]["text"] == (
        "\n<image 1> What is shown?\n\n(A) Edema\n(B) Mass\n\n        Answer with the option's letter from the given "
        "choices directly.")
    mm = got["medxpertqa-mm"][0]
    assert mm.reference == "E" and len(mm.images) == 2
    assert [p["type"] for p in mm.messages[0]["content"]] == ["text", "image", "text", "image", "text"]
    assert mm.messages[0]["content"][2]["text"] == "<image_2>: "
    assert got["medxpertqa-text"][0].choices == list("abcdefghij") and not got["medxpertqa-text"][0].images
    omni = got["omnimedvqa"][0]
    assert (omni.reference, omni.choices, omni.images[0].size) == ("B", ["Normal", "Glaucoma"], (32, 24))
    assert [(i.reference, len(i.choices)) for i in got["medbullets-op4"] + got["medbullets-op5"]] == [("C", 4), ("E", 5)]
    assert [(i.id, i.choices) for i in got["supergpqa-med"]] == [("u1", ["p", "q", "r"])]


def test_external_reader_names_the_missing_field(tmp_path):
    _jsonl(tmp_path / "benchmarks/SuperGPQA/SuperGPQA-all.jsonl", [{"uuid": "u1", "discipline": "Medicine"}])
    with pytest.raises(external.BenchmarkFileError, match=r"SuperGPQA-all.jsonl: field 'question' missing"):
        list(items(tmp_path, registry()["supergpqa-med"]))


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.slow
def test_end_to_end_tiny_model_writes_outputs_and_resumes(data, tiny_model, tmp_path, capsys):  # noqa: F811
    make_external(data)  # adds the MMLU miniature (an external text benchmark) beside the built sources
    out = tmp_path / "eval"
    args = ["--model", str(tiny_model), "--data", str(data), "--out", str(out), "--max-new-tokens", "8",
            "--batch-size", "4", "--min-pixels", str(32 * 32), "--max-pixels", str(64 * 64), "--limit", "3",
            "--benchmark", *E2E, "mmlu-med", "mmmu-med", "medxpertqa-mm", "omnimedvqa", "pathvqa"]
    assert main(args) == 0
    res = json.loads((out / "results.json").read_text())
    # external: MMLU (text), MMMU (a batch mixing image and text-only items), MedXpertQA MM (two images)
    expected = {"vqa-rad": 2, "slake": 2, "medqa": 3, "iu-xray": 1, "deeplesion": 3, "mmlu-med": 3, "mmmu-med": 3,
                "medxpertqa-mm": 1, "omnimedvqa": 1}
    assert {k: v["n"] for k, v in res["benchmarks"].items()} == expected
    for name, n in expected.items():
        rows = _lines(out / "predictions" / f"{name}.jsonl")
        assert len(rows) == n and all({"id", "prompt", "prediction", "reference", "score"} <= set(r) for r in rows)
    assert res["generation"]["do_sample"] is False and res["generation"]["max_new_tokens"] == 8
    assert [m["name"] for m in res["missing"]] == ["pathvqa"]
    assert "medmo-data build --recipe path_vqa" in res["missing"][0]["build"]
    m = res["benchmarks"]
    assert set(m["iu-xray"]["metrics"]) >= {"rouge_l", "cider_d", "bleu4"}
    assert m["iu-xray"]["metrics"]["ratescore"] == "not run"
    assert m["vqa-rad"]["metrics"]["n_closed"] == 2 and m["slake"]["metrics"]["n_open"] == 2
    md = (out / "results.md").read_text()
    assert "| VQA-RAD (closed / all) |" in md and "| IU-Xray |" in md and "| DeepLesion |" in md
    assert "| pathvqa |" in md
    # per-item judgements are consistent with the aggregate
    rad = _lines(out / "predictions" / "vqa-rad.jsonl")
    assert m["vqa-rad"]["metrics"]["accuracy"] == sum(r["score"]["correct"] for r in rad) / 2

    # rerun: nothing generated again, same lines
    capsys.readouterr()
    assert main(args) == 0
    assert "medqa: 3 items (0 generated, 3 resumed)" in capsys.readouterr().err
    assert len(_lines(out / "predictions" / "medqa.jsonl")) == 3
    # a torn last line (killed mid-write) is dropped and that item generated again
    p = out / "predictions" / "medqa.jsonl"
    p.write_text("\n".join(p.read_text().splitlines()[:2]) + '\n{"id": "us4-te', encoding="utf-8")
    assert main(args) == 0
    assert "medqa: 3 items (1 generated, 2 resumed)" in capsys.readouterr().err
    assert [r["id"] for r in _lines(p)] == [r["id"] for r in _lines(out / "predictions" / "medqa.jsonl")]
    assert json.loads((out / "results.json").read_text())["benchmarks"]["medqa"]["n"] == 3
    # predictions made under other settings are never mixed in
    assert main([*args, "--max-new-tokens", "16"]) == 2
    assert "made with max_new_tokens=8" in capsys.readouterr().err


def test_cli_rejects_unknown_benchmark_and_missing_vllm(tmp_path, capsys, monkeypatch):
    assert main(["--model", "m", "--data", str(tmp_path), "--benchmark", "nope"]) == 2
    assert "unknown benchmark(s) nope" in capsys.readouterr().err
    monkeypatch.setattr("medmo_train.eval.cli.vllm_available", lambda: False)
    assert main(["--model", "m", "--data", str(tmp_path), "--backend", "vllm"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "vLLM" in err


def test_all_missing_run_lists_build_commands_without_loading_a_model(tmp_path):
    out = tmp_path / "o"
    assert main(["--model", str(tmp_path / "no-model"), "--data", str(tmp_path), "--out", str(out)]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["benchmarks"] == {} and len(res["missing"]) == len(registry())
    assert f"--local-dir {tmp_path}/benchmarks/MMMU" in (out / "results.md").read_text()


def test_pubmedqa_prompt_is_medevalkits():
    rec = {"task": "mcq", "id": "1", "images": [],
           "target": {"choices": {"A": "yes", "B": "no", "C": "maybe"}, "answer": "A"},
           "messages": [{"role": "user", "content": [{"type": "text", "text": (
               "Context:\nBACKGROUND: b.\nRESULTS: r.\n\nQuestion: Does it work?\n\nA. yes\nB. no\nC. maybe\n\n"
               "Answer with the letter of the correct option.")}]}]}
    assert bm.pubmedqa_record(rec, "qwen3").prompt == (
        "Context: BACKGROUND: b.\nRESULTS: r.\n\nQuestion: Does it work?\nOptions: \nA.yes\nB.no\nC.maybe\n"
        "Answer with the option's letter from the given choices directly.")


def test_question_stem_recovered_from_our_mcq_prompt():
    rec = {"task": "mcq", "id": "1", "images": [], "target": {"choices": {"A": "x", "B": "y"}, "answer": "B"},
           "messages": [{"role": "user", "content": [{"type": "text", "text": "Stem?\n\nA. x\nB. y\n\nAnswer with the "
                                                                                "letter of the correct option."}]}]}
    item = bm.mcq_record(rec, "qwen3")
    assert item.prompt == "\nQuestion: Stem?\nOptions: \nA. x\nB. y\nAnswer with the option's letter from the given " \
                          "choices directly."


def test_console_script_and_package_declared():
    import tomllib

    cfg = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text(encoding="utf-8"))
    assert cfg["project"]["scripts"]["medmo-eval"] == "medmo_train.eval.cli:main"
    assert "medmo_train.eval" in cfg["tool"]["setuptools"]["packages"]


def test_vllm_backend_builds_requests_with_images(monkeypatch):
    from medmo_train.eval.generate import GenerationSettings, VLLMBackend

    class Out:
        def __init__(self, text):
            self.outputs = [type("C", (), {"text": text})()]

    class FakeLLM:
        def generate(self, reqs, params, use_tqdm=False):
            self.reqs = reqs
            return [Out(f" answer {i} ") for i in range(len(reqs))]

    class FakeProcessor:
        def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=True):
            return "|".join(p.get("text", "<img>") for m in messages for p in m["content"])

    backend = VLLMBackend.__new__(VLLMBackend)
    backend.settings, backend.processor, backend.llm, backend.params = GenerationSettings(), FakeProcessor(), \
        FakeLLM(), None
    img = Image.new("L", (8, 8))
    batch = [Item("a", "closed", bm.user_turn(1, "Q?"), images=[img]), Item("b", "mcq", bm.user_turn(0, "T?"))]
    assert backend.generate(batch) == ["answer 0", "answer 1"]
    first, second = backend.llm.reqs
    assert first["prompt"] == "<img>|Q?" and first["multi_modal_data"]["image"][0].mode == "RGB"
    assert second == {"prompt": "T?"}  # text-only: no multi_modal_data


def test_embedding_score_and_rate_model_check(tiny_model, tmp_path, capsys, monkeypatch):  # noqa: F811
    from medmo_train.eval.cli import embedding_score

    same = embedding_score(["a small right pleural effusion"], ["a small right pleural effusion"], tiny_model)
    assert same == pytest.approx(1.0, abs=1e-5)
    a = embedding_score(["no pneumothorax", "liver lesion"], ["lung nodule", "no"], tiny_model)
    assert a < 1.0 and a == pytest.approx(embedding_score(["lung nodule", "no"], ["no pneumothorax", "liver lesion"],
                                                          tiny_model), abs=1e-6)
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None if name == "RaTEScore" else object())
    assert main(["--model", "m", "--data", str(tmp_path), "--rate-model", str(tmp_path)]) == 2
    assert "RaTEScore" in capsys.readouterr().err


def test_resumed_predictions_keep_generations_with_unicode_line_separators(tmp_path):
    """A generation holding U+2028 or U+0085 is written raw (ensure_ascii=False) and is one line: reading it
    back keeps it, where splitlines() cut it in two and dropped it as a torn line."""
    from medmo_train.eval.report import load_predictions

    path = tmp_path / "medqa.jsonl"
    rows = [{"id": "a", "prediction": "first\u2028second\x85third"}, {"id": "b", "prediction": "B"}]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    assert load_predictions(path) == {"a": rows[0], "b": rows[1]}
    assert path.read_text(encoding="utf-8").count("\n") == 2  # not rewritten: nothing was torn

