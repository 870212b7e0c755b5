"""`mix` output bytes pinned on a fixed synthetic index that exercises every rule (issue 19: a new engine
must exclude exactly the same rows)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from medmo_data.mix.mixer import MixOptions, mix
from tests.mix_index import index_row, spec_file, write_source

# ---- a fixed synthetic index that exercises every rule; its outputs are kept as the expected bytes ----

GOLDEN = Path(__file__).resolve().parent / "data" / "mix_golden"
VOCAB = ("lesion nodule mass effusion fracture liver lung kidney brain heart bone chest abdomen pelvis spine axial "
         "coronal contrast opacity edema cyst tumor margin density signal left right upper lower which what where "
         "shows image finding patient scan ct mri xray").split()


def golden_index(root: Path) -> Path:
    """Sources under root/data, a benchmark file and the spec (root/spec.yaml); deterministic (seeded)."""
    import numpy as np

    rng = np.random.default_rng(20261130)
    data = root / "data"

    def words(n: int) -> str:
        return " ".join(VOCAB[i] for i in rng.integers(0, len(VOCAB), n))

    def img() -> dict[str, Any]:
        return {"sha": bytes(rng.integers(0, 256, 32, dtype=np.uint8)).hex(),
                "dhash": int(rng.integers(-(2**63), 2**63 - 1)),
                "image_thumb": [bytes(rng.integers(0, 256, 256, dtype=np.uint8))]}

    def flip(dh: int, bits: int) -> int:
        for b in rng.choice(64, bits, replace=False):
            dh ^= 1 << int(b)
        return dh - (1 << 64) if dh >= 1 << 63 else dh

    def blur(thumb: bytes, d: int) -> bytes:
        a = np.frombuffer(thumb, np.uint8).astype(np.int16) + rng.integers(-d, d + 1, 256)
        return bytes(np.clip(a, 0, 255).astype(np.uint8))

    tests = [dict(img(), prompt=f"{words(7)}?") for _ in range(40)]
    write_source(data, "vqa_rad", [index_row(f"t{i}", split="test", task="vqa", **t) for i, t in enumerate(tests)])
    qs = [words(24) for _ in range(30)]
    write_source(data, "medqa", [index_row(f"q{i}", split="test", task="mcq", prompt=q) for i, q in enumerate(qs)])
    write_source(data, "pmc_vqa", [index_row("pv1", id="PMC7000001_Fig1_2.jpg", split="test", task="vqa", **img())])
    roco = []
    for i in range(700):
        im = img()
        if i < 6:  # exact copies of test images
            im = {k: tests[i][k] for k in ("sha", "dhash", "image_thumb")}
        elif i < 12:  # near copies (2 dHash bits, thumbnail within 2 grey levels)
            t = tests[i]
            im = dict(img(), dhash=flip(t["dhash"], 2), image_thumb=[blur(t["image_thumb"][0], 2)])
        elif i < 18:  # another patient: dHash within 3 bits, thumbnail far
            im = dict(img(), dhash=flip(tests[i]["dhash"], 3))
        prompt = f"Describe the image, variant {i % 5}." if i % 3 else f"{words(12)}."
        roco.append(index_row(f"r{i:04d}", answer=f"a{i % 650}", prompt=prompt, widths=[int(rng.integers(200, 3000))],
                              heights=[int(rng.integers(200, 3000))], **im))
    roco += [dict(roco[20], key="r_dup1"), dict(roco[21], key="r_dup2")]  # identical samples
    write_source(data, "roco", roco, per_file=300)
    pmc = []
    for i in range(400):
        im = img()
        if i < 30:  # the same figure as roco (exact), a re-encoded one (1 bit), an unrelated one
            r = roco[100 + i]
            im = ({"sha": r["image_hash"][0], "dhash": r["image_dhash"][0], "image_thumb": r["image_thumb"]}
                  if i % 3 == 0 else dict(img(), dhash=flip(r["image_dhash"][0], 1)) if i % 3 == 1 else im)
        pmc.append(index_row(f"p{i:04d}", id=f"PMC{7000000 + i % 40}_{i:05d}.jpg", prompt="Describe the image.",
                             answer=f"p{i}", **im))
    write_source(data, "pmc_oa", pmc)
    old = [index_row(f"o{i}", dhash=flip(tests[20 + i]["dhash"], 2), sha=img()["sha"]) for i in range(4)]
    old += [index_row(f"o{i}", **{k: v for k, v in img().items() if k != "image_thumb"}) for i in range(4, 60)]
    write_source(data, "pubmed_vision", old, drop=("image_thumb",))
    reason = []
    for i in range(300):
        q = qs[i] if i < 5 else (qs[i] + " " + words(10) if i < 10 else words(30))
        meta = json.dumps({"dataset_name": ["medqa", "mmlu", "pubmedqa_labeled", "medmcqa"][i % 4] if i % 7 == 0
                           else "medqa"})
        reason.append(index_row(f"m{i:04d}", task="reasoning", prompt=q, answer=f"m{i % 290}", meta=meta))
    reason += [dict(reason[50], key="m_dup", id="m_dup")]
    write_source(data, "medreason", reason)
    slake = [index_row(f"s{i}", task="grounding" if i % 2 else "vqa", prompt=f"{words(9)}?", **img())
             for i in range(80)]
    write_source(data, "slake", slake)
    bench = root / "bench.jsonl"
    bench.write_text("".join(json.dumps({"id": f"x{i}", "question": reason[200 + i]["prompt"]}) + "\n"
                             for i in range(3)))
    return spec_file(root, ["roco", "pmc_oa", "pubmed_vision", "medreason", "slake"], kind="grpo",
                     tasks=["caption", "vqa", "reasoning"], budget={"max_prompt_tokens": 2000},
                     image={"min_pixels": 65536, "max_pixels": 4_000_000})


def _golden_mix(root: Path) -> tuple[bytes, bytes]:
    spec = golden_index(root)
    out = root / "out" / "stage.json"
    mix(spec, MixOptions(data=root / "data", out=out, benchmarks={"MedXpertQA": root / "bench.jsonl"}))
    return out.read_bytes(), out.with_name("stage.excluded.jsonl").read_bytes()


def test_mix_output_bytes_are_pinned(tmp_path):
    """A fixed synthetic index through every rule (traps, text/image/PMC decontamination with and without
    thumbnails, the task filter, the token budget, the three dedup rules, two index files per source): the
    stage manifest and exclusions file equal the kept copies byte for byte, so an engine change that moves
    one exclusion fails here. Regenerate only for an intended rule change: MEDMO_PIN_MIX=1."""
    man, excl = _golden_mix(tmp_path)
    if os.environ.get("MEDMO_PIN_MIX"):
        GOLDEN.mkdir(parents=True, exist_ok=True)
        (GOLDEN / "stage.json").write_bytes(man)
        (GOLDEN / "stage.excluded.jsonl").write_bytes(excl)
    m = json.loads(man)
    f = m["filters"]
    # the planted cases, so the pinned file itself is checked against intent
    assert f["by_reason"]["task"] == 40 and f["traps"] == {"MMLU-Med": 10, "PubMedQA": 11}
    # 6 exact + 6 near copies confirmed; 6 other images within 3 bits rejected; 4 old-index rows by dHash
    assert f["decontam"]["image_near_checks"] == {"confirmed": 12, "rejected_by_thumb": 6, "unconfirmed_no_thumb": 4}
    assert set(f["dedup"]["by_rule"]) == {"dup_exact", "dup_image_exact", "dup_image_near", "dup_text_exact"}
    assert f["budget"]["dropped"] > 0 and f["decontam"]["by_rule"].keys() >= {"image_exact", "image_near",
                                                                             "text_exact", "text_ngram", "pmcid"}
    assert man == (GOLDEN / "stage.json").read_bytes()
    assert excl == (GOLDEN / "stage.excluded.jsonl").read_bytes()
