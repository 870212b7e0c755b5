"""`medmo-data mix`: spec files, determinism, missing sources, licence filters, dedup, token budget."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from medmo_data.cli import app
from medmo_data.mix.mixer import MixOptions, mix
from medmo_data.mix.publish import PublishError
from medmo_data.mix.spec import MixError, licence_classes, load_spec
from medmo_data.mix.stage import load_stage_manifest
from tests.helpers import read_samples
from tests.mix_index import index_row, spec_file, write_source

SPECS = Path(__file__).resolve().parent.parent / "manifests"
COMMON = {"lr_scheduler_type": "cosine", "bf16": True, "adam_beta1": 0.9, "adam_beta2": 0.999,
          "weight_decay": 0.1, "warmup_ratio": 0.1, "seed": 42}


def test_specs_match_the_paper():
    want = {1: (10, 2, 1e-5, 1, 768 * 768), 2: (2, 8, 8e-6, 1, 1280 * 1280), 3: (14, 2, 5e-6, 1, None),
            4: (2, 4, 1e-6, 2, 16777216)}
    for stage, (bs, acc, lr, ep, px) in want.items():
        s = load_spec(SPECS / f"stage{stage}.yaml")
        t = s["training"]
        assert (s["stage"], s["kind"]) == (stage, "grpo" if stage == 4 else "sft")
        assert (t["per_device_train_batch_size"], t["gradient_accumulation_steps"], t["learning_rate"],
                t["num_train_epochs"]) == (bs, acc, lr, ep)
        assert {k: t[k] for k in COMMON} == COMMON
        assert (s["image"] or {}).get("max_pixels") == px
        assert all(x["weight"] == 1.0 for x in s["sources"]) and s["weight_meaning"] == "epochs"
    s4 = load_spec(SPECS / "stage4.yaml")
    assert {x["name"] for x in s4["sources"]} == {"nih_chestxray_bbox", "deeplesion", "bacteria", "ctc", "slake",
                                                 "grazpedwri_dx", "medsg"}
    assert {k: s4["training"][k] for k in ("num_generations", "epsilon", "epsilon_high", "max_completion_length",
                                           "loss_type", "max_prompt_tokens")} == {
        "num_generations": 8, "epsilon": 0.15, "epsilon_high": 0.25, "max_completion_length": 1024,
        "loss_type": "dapo", "max_prompt_tokens": 2048}
    assert s4["budget"]["max_prompt_tokens"] == 2048
    assert [x["name"] for x in load_spec(SPECS / "stage1.yaml")["sources"]] == ["medtrinity"]
    s2 = {x["name"] for x in load_spec(SPECS / "stage2.yaml")["sources"]}
    assert len(s2) == 26 and {"vqa_rad", "slake", "pmc_vqa", "pmc_oa", "medsg", "ct_rate"} <= s2
    s3 = [x["name"] for x in load_spec(SPECS / "stage3.yaml")["sources"]]
    assert len(s3) == 18 and "medical_meadow_mmmlu" not in s3 and s3[0] == "medqa"


def test_mix_writes_the_loader_shape_and_is_deterministic(vqa_rad, tmp_path):
    spec = spec_file(tmp_path, ["vqa_rad"])
    out = tmp_path / "m" / "stage2.json"
    man, _ = mix(spec, MixOptions(data=vqa_rad, out=out, seed=7))
    first = out.read_bytes(), out.with_name("stage2.excluded.jsonl").read_bytes()
    mix(spec, MixOptions(data=vqa_rad, out=out, seed=7))
    assert (out.read_bytes(), out.with_name("stage2.excluded.jsonl").read_bytes()) == first
    mix(spec, MixOptions(data=vqa_rad, out=out, seed=8))
    assert out.read_bytes() != first[0] and json.loads(out.read_bytes())["seed"] == 8
    st = load_stage_manifest(out)
    assert (st.stage, st.kind, st.seed, st.box_format) == (2, "sft", 8, "qwen3")
    src = st.sources[0]
    assert (src.name, src.samples, src.weight) == ("vqa_rad", 7, 1.0)  # the 7 train records of the fixture
    assert [s.path.resolve() for s in src.shards] == [(vqa_rad / "vqa_rad" / "train-000000.tar").resolve()]
    built = json.loads((vqa_rad / "vqa_rad" / "manifest.json").read_text())
    assert src.shards[0].sha256 == next(s["sha256"] for s in built["shards"] if s["split"] == "train")
    assert man["filters"]["decontam"]["test_items"] == {"VQA-RAD": 2}
    assert man["sources"][0]["draws"] == 7 and man["weight_meaning"] == "probability"


def test_missing_sources_are_named_with_the_build_command(vqa_rad, tmp_path):
    spec = spec_file(tmp_path, ["vqa_rad", "nih_vqa", "no_such_source"])
    with pytest.raises(MixError) as e:
        mix(spec, MixOptions(data=vqa_rad, out=tmp_path / "s.json"))
    msg = str(e.value)
    assert "2 of 3 sources are not ready" in msg
    assert f"nih_vqa: not built -> medmo-data build --recipe nih_vqa --input RAW_DIR --output {vqa_rad}" in msg
    assert "no_such_source: no recipe with this name" in msg
    r = CliRunner().invoke(app, ["mix", "--spec", str(spec), "--data", str(vqa_rad), "--out", str(tmp_path / "s.json")])
    assert r.exit_code == 2 and "nih_vqa: not built" in r.output
    man, _ = mix(spec, MixOptions(data=vqa_rad, out=tmp_path / "s.json", allow_missing=True))
    assert [s["name"] for s in man["sources"]] == ["vqa_rad"]
    assert [m["name"] for m in man["filters"]["missing_sources"]] == ["nih_vqa", "no_such_source"]
    r = CliRunner().invoke(app, ["mix", "--stage", "2", "--data", str(tmp_path / "empty"), "--allow-missing",
                                 "--out", str(tmp_path / "e.json")])
    assert r.exit_code == 0, r.output


def test_licence_and_access_filters(tmp_path):
    data = tmp_path / "data"
    write_source(data, "a", [index_row("a1", sha="11" * 32, dhash=1)], license="CC-BY-NC-SA-4.0")
    write_source(data, "b", [index_row("b1", sha="22" * 32, dhash=2)], access="credentialed",
                 license="PhysioNet Credentialed Health Data License")
    write_source(data, "c", [index_row("c1", sha="33" * 32, dhash=3)], license="CC0-1.0")
    assert licence_classes("CC-BY-NC-SA-4.0", "open") == {"non-commercial", "share-alike"}
    assert licence_classes("CC BY-NC-ND 4.0", "open") == {"non-commercial", "no-derivatives"}
    assert licence_classes("UNVERIFIED", "open") == {"unknown"}
    spec = spec_file(tmp_path, ["a", "b", "c"])
    man, _ = mix(spec, MixOptions(data=data, out=tmp_path / "m.json", exclude_licence=["non-commercial"],
                                  exclude_access=["credentialed"]))
    assert [s["name"] for s in man["sources"]] == ["c"]
    lic = man["filters"]["licence"]
    assert lic["exclude_licence"] == ["non-commercial"] and lic["exclude_access"] == ["credentialed"]
    assert [(d["name"], d["reason"], d["samples"]) for d in lic["sources_excluded"]] == [
        ("a", "licence non-commercial (CC-BY-NC-SA-4.0)", 1), ("b", "access credentialed", 1)]
    with pytest.raises(MixError, match="unknown filter value"):
        mix(spec, MixOptions(data=data, out=tmp_path / "m.json", exclude_licence=["nc"]))


def test_dedup_keeps_exactly_one_copy_by_priority(tmp_path):
    data = tmp_path / "data"
    x, y, z = "aa" * 32, "bb" * 32, "cc" * 32
    hy = 0x0F0F_3C3C_5A5A_6996
    write_source(data, "rocov2", [index_row("r1", sha=x, dhash=0x1234_5678_9ABC_DEF0),
                                  index_row("r2", sha=y, dhash=hy),
                                  index_row("q1", sha=z, dhash=7, task="vqa", prompt="Is there a mass?"),
                                  index_row("q2", sha=z, dhash=7, task="vqa", prompt="Is this an MRI?"),
                                  index_row("t1", prompt="What is asthma?", answer="A disease.")])
    write_source(data, "roco", [index_row("o1", sha=x, dhash=0x1234_5678_9ABC_DEF0, prompt="Caption this."),
                                index_row("o2", sha="dd" * 32, dhash=hy ^ 0b101),  # 2 bits: near copy
                                index_row("o3", sha="ee" * 32, dhash=hy ^ 0x7F),  # 7 bits: not a copy
                                index_row("q3", sha=z, dhash=7, task="vqa", prompt="Is there a mass?"),
                                index_row("q4", sha=z, dhash=7, task="vqa", prompt="Where is the lesion?"),
                                index_row("t2", prompt="what is   ASTHMA?", answer="A disease.")])
    write_source(data, "pmc_oa", [index_row("p1", sha=x, dhash=0x1234_5678_9ABC_DEF0, task="report")])
    man, out = mix(spec_file(tmp_path, ["rocov2", "roco", "pmc_oa"]), MixOptions(data=data, out=tmp_path / "m.json"))
    rows = [json.loads(line) for line in out.with_name("m.excluded.jsonl").read_text().splitlines()]
    got = {(r["source"], r["key"]): (r["reason"], r["kept"]) for r in rows}
    assert got == {("roco", "o1"): ("dup_image_exact", "rocov2/r1"), ("pmc_oa", "p1"): ("dup_image_exact", "rocov2/r1"),
                   ("roco", "o2"): ("dup_image_near", "rocov2/r2"), ("roco", "q3"): ("dup_image_exact", "rocov2/q1"),
                   ("roco", "t2"): ("dup_text_exact", "rocov2/t1")}
    assert man["filters"]["dedup"]["by_rule"] == {"dup_image_exact": 3, "dup_image_near": 1, "dup_text_exact": 1}
    assert {s["name"]: s["samples"] for s in man["sources"]} == {"rocov2": 5, "roco": 2, "pmc_oa": 0}
    st = load_stage_manifest(out)
    assert st.sources[1].excluded_keys == {"o1", "o2", "q3", "t2"}


def test_budget_matches_the_tiny_processor(vqa_rad, tmp_path):
    import numpy as np
    from PIL import Image

    pytest.importorskip("torchvision")
    from medmo_train.tiny import build_processor

    proc = build_processor()
    proc.save_pretrained(tmp_path / "tiny")
    bounds = {"min_pixels": 32 * 32 * 4, "max_pixels": 64 * 64 * 4}
    proc.image_processor.size = {"shortest_edge": bounds["min_pixels"], "longest_edge": bounds["max_pixels"]}
    direct = {}
    for s in read_samples(vqa_rad / "vqa_rad"):
        if s["json"]["split"] != "train":
            continue
        prompt = [m for m in s["json"]["messages"] if m["role"] != "assistant"]
        text = proc.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
        import io
        img = Image.open(io.BytesIO(s["0.jpg"])).convert("RGB")
        direct[s["__key__"]] = len(proc(text=[text], images=[img])["input_ids"][0])
    limit = int(np.median(list(direct.values())))
    over = {k for k, v in direct.items() if v > limit}
    assert 0 < len(over) < len(direct)
    spec = spec_file(tmp_path, ["vqa_rad"], kind="grpo", image=bounds, budget={"max_prompt_tokens": limit})
    man, out = mix(spec, MixOptions(data=vqa_rad, out=tmp_path / "s4.json", tokenizer=str(tmp_path / "tiny")))
    b = man["filters"]["budget"]
    assert (b["dropped"], b["max_tokens_seen"]) == (len(over), max(direct.values()))
    assert load_stage_manifest(out).sources[0].excluded_keys == over


class _FullDisk:
    """A file on a full disk: writes half of what it is given, then fails with ENOSPC."""

    def __init__(self, f: Any) -> None:
        self.f = f

    def write(self, data: Any) -> int:
        self.f.write(data[: len(data) // 2])
        self.f.flush()
        raise OSError(errno.ENOSPC, "No space left on device")

    def __enter__(self) -> _FullDisk:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.f.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.f, name)


def _dup_sources(data: Path, second: bool) -> None:
    write_source(data, "a", [index_row("a1", sha="11" * 32, dhash=1), index_row("a2", sha="12" * 32, dhash=2)])
    write_source(data, "b", [index_row("b1", sha="11" * 32 if second else "13" * 32, dhash=1)])


def test_a_failed_mix_leaves_the_previous_outputs_byte_identical(tmp_path, monkeypatch):
    """#15.4: a full disk while writing the new stage manifest keeps the old manifest and exclusions."""
    import builtins
    import io

    data, out = tmp_path / "data", tmp_path / "m" / "stage2.json"
    _dup_sources(data, second=False)
    spec = spec_file(tmp_path, ["a", "b"])
    mix(spec, MixOptions(data=data, out=out))
    excluded = out.with_name("stage2.excluded.jsonl")
    before = {p.name: p.read_bytes() for p in out.parent.iterdir()}
    assert set(before) == {"stage2.json", "stage2.excluded.jsonl"} and before["stage2.excluded.jsonl"] == b""
    _dup_sources(data, second=True)  # the next mix has one exclusion and other counts

    real_open = io.open

    def full_disk_open(file: Any, mode: str = "r", *a: Any, **k: Any) -> Any:
        f = real_open(file, mode, *a, **k)
        return _FullDisk(f) if "stage2.json" in os.fspath(file) and set(mode) & set("wax") else f

    with monkeypatch.context() as m:
        m.setattr(io, "open", full_disk_open)
        m.setattr(builtins, "open", full_disk_open)
        r = CliRunner().invoke(app, ["mix", "--spec", str(spec), "--data", str(data), "--out", str(out)])
    assert r.exit_code == 1, r.output
    line = " ".join(r.output.split())
    assert "stage2.json: No space left on device; previous outputs left unchanged" in line
    assert {p.name: p.read_bytes() for p in out.parent.iterdir()} == before  # no temporary file left either
    # a failing rename of the manifest (after the exclusions were renamed) puts the old exclusions back
    real_replace = os.replace

    def replace(src: Any, dst: Any) -> None:
        if Path(dst).name == "stage2.json":
            raise OSError(errno.ENOSPC, "No space left on device")
        real_replace(src, dst)

    with monkeypatch.context() as m:
        m.setattr(os, "replace", replace)
        with pytest.raises(PublishError, match="previous outputs restored"):
            mix(spec, MixOptions(data=data, out=out))
    assert {p.name: p.read_bytes() for p in out.parent.iterdir()} == before
    mix(spec, MixOptions(data=data, out=out))  # and with room on the disk, both files are replaced
    assert json.loads(excluded.read_text())["key"] == "b1" and out.read_bytes() != before["stage2.json"]


def test_stage4_keeps_box_tasks_only(tmp_path):
    """#14.2: the spec's `tasks` filter drops SLAKE's VQA rows from stage 4, lists and counts them."""
    data = tmp_path / "data"
    write_source(data, "slake", [
        index_row("v1", sha="01" * 32, dhash=1, task="vqa", prompt="Is this a CT?"),
        index_row("v2", sha="02" * 32, dhash=2, task="vqa", prompt="Which organ is abnormal?"),
        index_row("g1", sha="01" * 32, dhash=1, task="grounding", prompt="Locate the liver.", n_objects=1),
    ])
    write_source(data, "bacteria", [index_row("d1", sha="03" * 32, dhash=3, task="detection", prompt="Find cells.")])
    write_source(data, "nih_chestxray_bbox", [index_row("n1", sha="04" * 32, dhash=4, task="classification",
                                                        prompt="Which finding?")])
    assert load_spec(SPECS / "stage4.yaml")["tasks"] == ["grounding", "detection"]
    out = tmp_path / "m" / "stage4.json"
    r = CliRunner().invoke(app, ["mix", "--stage", "4", "--data", str(data), "--out", str(out), "--allow-missing"])
    assert r.exit_code == 0, r.output
    assert "tasks: grounding, detection; 3 rows of other tasks left out (nih_chestxray_bbox 1, slake 2)" in " ".join(
        r.output.split())
    man = json.loads(out.read_text())
    assert man["tasks"] == ["grounding", "detection"]
    assert {s["name"]: (s["samples"], s["filtered_by_task"]) for s in man["sources"]} == {
        "nih_chestxray_bbox": (0, 1), "bacteria": (1, 0), "slake": (1, 2)}
    assert man["filters"]["tasks"] == {"keep": ["grounding", "detection"], "rows_filtered": 3,
                                       "by_source": {"nih_chestxray_bbox": 1, "slake": 2},
                                       "by_task": {"classification": 1, "vqa": 2}}
    assert man["filters"]["by_reason"] == {"task": 3}
    rows = [json.loads(line) for line in out.with_name("stage4.excluded.jsonl").read_text().splitlines()]
    assert {(x["source"], x["key"], x["reason"], x["rule"]) for x in rows} == {
        ("slake", "v1", "task", "vqa"), ("slake", "v2", "task", "vqa"),
        ("nih_chestxray_bbox", "n1", "task", "classification")}
    st = load_stage_manifest(out)
    assert {s.name: s.excluded_keys for s in st.sources} == {"nih_chestxray_bbox": {"n1"}, "bacteria": set(),
                                                           "slake": {"v1", "v2"}}
    # without the key every task enters, and the manifest says so
    man, _ = mix(spec_file(tmp_path, ["slake"]), MixOptions(data=data, out=tmp_path / "all.json"))
    assert man["tasks"] is None and man["sources"][0]["samples"] == 3 and man["filters"]["tasks"]["rows_filtered"] == 0
    with pytest.raises(MixError, match="field tasks must be a non-empty list of task names"):
        mix(spec_file(tmp_path, ["slake"], tasks=["boxes"]), MixOptions(data=data, out=tmp_path / "x.json"))


def test_token_count_of_an_empty_index_file(tmp_path):
    """The task filter can leave an index file with no rows: counting its prompts with a real tokenizer
    returns nothing instead of failing inside the tokenizer (the demo's stage 4 died here)."""
    import numpy as np

    pytest.importorskip("torchvision")
    from medmo_train.tiny import build_processor

    from medmo_data.mix.budget import TextCounter

    build_processor().save_pretrained(tmp_path / "tiny")
    counter = TextCounter(str(tmp_path / "tiny"))
    assert counter.count([], [], [], np.zeros(0, dtype=np.int64)).shape == (0,)
    assert counter.count(["Is there a mass?"], [""], [1], np.array([16]))[0] > 4
