"""Decontamination: planted exact and near copies of test items are caught, near-misses are spared."""

from __future__ import annotations

import io
import json

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest
from PIL import Image

from medmo_data.mix.decontam import DecontamOptions, ItemSet
from medmo_data.mix.fingerprint import FINGERPRINT_VERSION, dhash64, pixel_hash
from medmo_data.mix.mixer import MixOptions, mix
from medmo_data.mix.stage import load_stage_manifest
from medmo_data.mix.test_items import items_from_file
from tests.fixtures._images import grey
from tests.mix_index import index_row, spec_file, write_source

# A MedQA-style stem (45 words) and edits of it.
STEM = ("A 67-year-old man presents to the emergency department with sudden onset of crushing substernal chest "
        "pain radiating to the left arm that began two hours ago while shovelling snow. He has a history of "
        "hypertension and smoking. Which of the following is the most likely diagnosis?")
NEAR = STEM.replace("67-year-old man", "67 year old male").replace("shovelling", "clearing")
MISS = ("A 12-year-old girl presents with sudden onset of crushing substernal chest pain after a fall from her "
        "bicycle; she is otherwise healthy. Which of the following is the most likely cause of her symptoms?")


def fp(img: Image.Image) -> tuple[str, int]:
    return pixel_hash(np.asarray(img)), dhash64(img)


def test_text_and_image_copies_are_caught(tmp_path):
    bench = tmp_path / "bench"
    bench.mkdir()
    a = Image.fromarray(grey(128, 128, seed=1, boxes=[(10, 10, 60, 90), (70, 20, 120, 50)]))
    b = Image.fromarray(grey(128, 128, seed=9, boxes=[(60, 70, 120, 120)]))
    a.save(bench / "a.png")
    (bench / "medqa.jsonl").write_text(json.dumps({"question": STEM, "options": {"A": "MI"}, "answer_idx": "A"}) + "\n")
    (bench / "omni.jsonl").write_text(json.dumps({"question": "What modality is shown?", "image": "a.png",
                                                  "id": "omni-1"}) + "\n")
    sa, da = fp(a)
    buf = io.BytesIO()
    a.save(buf, "JPEG", quality=90)  # a re-encoded copy: other pixels, a close dHash
    s_near, d_near = fp(Image.open(buf).convert(a.mode))
    s_miss, d_miss = fp(b)
    assert s_near != sa and bin((d_near ^ da) & (2**64 - 1)).count("1") <= 4
    data = tmp_path / "data"
    write_source(data, "medical_meadow_medqa", [
        index_row("exact", prompt=f"Q:{STEM}? \n{{'A': 'MI', 'B': 'PE'}},", task="mcq"),
        index_row("near", prompt=NEAR, task="mcq"),
        index_row("miss", prompt=MISS, task="mcq"),
    ])
    write_source(data, "roco", [
        index_row("img_exact", sha=sa, dhash=da), index_row("img_near", sha=s_near, dhash=d_near),
        index_row("img_miss", sha=s_miss, dhash=d_miss), index_row("same_q_other_image", sha="ab" * 32, dhash=5,
                                                                   prompt="What modality is shown?", task="vqa"),
    ])
    spec = spec_file(tmp_path, ["medical_meadow_medqa", "roco"])
    man, out = mix(spec, MixOptions(data=data, out=tmp_path / "m.json",
                                    benchmarks={"medqa": bench / "medqa.jsonl", "OmniMedVQA": bench / "omni.jsonl"}))
    rows = [json.loads(line) for line in out.with_name("m.excluded.jsonl").read_text().splitlines()]
    got = {r["key"]: (r["benchmark"], r["rule"], r["item_id"]) for r in rows}
    assert got == {"exact": ("MedQA", "text_ngram", "0"), "near": ("MedQA", "text_ngram", "0"),
                   "img_exact": ("OmniMedVQA", "image_exact", "omni-1"),
                   "img_near": ("OmniMedVQA", "image_near", "omni-1")}
    score = {r["key"]: r["score"] for r in rows}
    assert score["exact"] == 1.0 and 0.5 <= score["near"] < 1.0
    assert man["filters"]["decontam"]["by_benchmark"] == {"MedQA": 2, "OmniMedVQA": 2}
    assert man["filters"]["decontam"]["test_items"] == {"MedQA": 1, "OmniMedVQA": 1}
    st = load_stage_manifest(out)
    assert {s.name: s.excluded_keys for s in st.sources} == {"medical_meadow_medqa": {"exact", "near"},
                                                           "roco": {"img_exact", "img_near"}}


def test_near_miss_scores_stay_below_the_threshold():
    opts = DecontamOptions()
    import polars as pl

    from medmo_data.mix.test_items import ITEM_COLS

    items = pl.DataFrame([{"benchmark": "MedQA", "own": "medqa", "item_id": "1", "prompt": STEM, "prompt_sha1": "x",
                           "shas": [], "dhashes": [], "pmcids": []}], schema=ITEM_COLS)
    ts = ItemSet(items, opts)
    chunk = pl.DataFrame({"row": [0, 1], "prompt": [NEAR, MISS], "prompt_norm_sha1": ["a", "b"],
                          "image_hash": [[], []], "image_dhash": [[], []], "id": ["n", "m"]},
                         schema_overrides={"image_hash": pl.List(pl.String), "image_dhash": pl.List(pl.Int64)})
    # containment threshold 0: every overlapping pair is reported with its score
    ts0 = ItemSet(items, DecontamOptions(containment=0.0))
    scores = dict(ts0.match(chunk).select("row", "score").iter_rows())
    assert scores[0] >= 0.5 > scores[1] > 0.0
    assert ts.match(chunk)["row"].to_list() == [0]


def test_own_source_images_need_the_question_too(vqa_rad, tmp_path):  # noqa: F811
    """VQA-RAD's official split asks train and test questions about the same images: a train question on
    a test image stays; the test question itself on that image, or that image in another source, goes."""
    import polars as pl

    test = pl.read_parquet(vqa_rad / "vqa_rad" / "test-000000.index.parquet").row(0, named=True)
    sha, dh = test["image_hash"][0], test["image_dhash"][0]
    data = tmp_path / "data"
    import shutil
    shutil.copytree(vqa_rad / "vqa_rad", data / "vqa_rad_copy")
    write_source(data, "vqa_rad", [
        index_row("other_q", sha=sha, dhash=dh, task="vqa", prompt="Is this a CT?"),
        index_row("same_q", sha=sha, dhash=dh, task="vqa", prompt=test["prompt"]),
    ] + [index_row("test1", split="test", sha=sha, dhash=dh, task="vqa", prompt=test["prompt"])])
    write_source(data, "pmc_oa", [index_row("elsewhere", sha=sha, dhash=dh)])
    man, out = mix(spec_file(tmp_path, ["vqa_rad", "pmc_oa"]), MixOptions(data=data, out=tmp_path / "m.json"))
    rows = [json.loads(line) for line in out.with_name("m.excluded.jsonl").read_text().splitlines()]
    assert {(r["source"], r["key"], r["benchmark"], r["rule"]) for r in rows} == {
        ("vqa_rad", "same_q", "VQA-RAD", "image_exact"), ("pmc_oa", "elsewhere", "VQA-RAD", "image_exact")}


def test_traps_and_pmc_articles(tmp_path):
    data = tmp_path / "data"
    write_source(data, "medreason", [
        index_row("m1", prompt="q one", meta=json.dumps({"dataset_name": "MMLU"})),
        index_row("m2", prompt="q two", meta=json.dumps({"dataset_name": "medqa"})),
        index_row("m3", prompt="q three", meta=json.dumps({"dataset_name": "pubmedqa_labeled"})),
    ])
    write_source(data, "medical_meadow_mmmlu", [index_row("x1", prompt="anatomy q"), index_row("x2", prompt="b")])
    write_source(data, "pmc_oa", [index_row("PMC1234567_00002.jpg", sha="01" * 32, dhash=11),
                                  index_row("PMC7654321_00001.jpg", sha="02" * 32, dhash=12)])
    write_source(data, "pmc_vqa", [index_row("pmcvqa-7", id="PMC1234567_Fig1_3.jpg", sha="03" * 32, dhash=13,
                                             task="vqa", prompt="What is shown?")])
    bench = tmp_path / "test_2.csv"
    bench.write_text("Figure_path,Question,Answer\nPMC1234567_Fig2_41.jpg,What modality is used?,B\n")
    man, out = mix(spec_file(tmp_path, ["medreason", "medical_meadow_mmmlu", "pmc_oa", "pmc_vqa"]),
                   MixOptions(data=data, out=tmp_path / "m.json", benchmarks={"PMC-VQA": bench}))
    rows = [json.loads(line) for line in out.with_name("m.excluded.jsonl").read_text().splitlines()]
    assert {(r["key"], r["reason"], r["benchmark"]) for r in rows} == {
        ("m1", "trap", "MMLU-Med"), ("m3", "trap", "PubMedQA"), ("x1", "trap", "MMLU-Med"),
        ("x2", "trap", "MMLU-Med"), ("PMC1234567_00002.jpg", "decontam", "PMC-VQA")}
    assert man["filters"]["traps"] == {"MMLU-Med": 3, "PubMedQA": 1}
    assert [r["rule"] for r in rows if r["reason"] == "decontam"] == ["pmcid"]
    # the CSV names a figure that lives in images_2.zip, not beside it: counted, and the PMC rule still holds
    (entry,) = man["filters"]["decontam"]["benchmark_files"]
    assert entry["unreadable_examples"] == ["PMC1234567_Fig2_41.jpg (missing_image)"]


def test_benchmark_file_formats(tmp_path):
    (tmp_path / "p.json").write_text(json.dumps([{"id": "u-1", "data": {"Question": "Does X cause Y?",
                                                                        "Options": {"A": "yes"}}}]))
    (tmp_path / "m.csv").write_text("question,A,B\nWhich nerve?,x,y\n")
    (tmp_path / "x.jsonl").write_text(json.dumps({"id": "Text-1001", "question": "A patient...",
                                                  "image_hash": "ff" * 16, "image_dhash": 99}) + "\n")
    (tmp_path / "ori_pqal.json").write_text(json.dumps({"21645374": {"QUESTION": "Do mitochondria play a role?",
                                                                     "final_decision": "yes"}}))
    q = items_from_file("PubMedQA", tmp_path / "ori_pqal.json").row(0, named=True)
    assert (q["item_id"], q["prompt"]) == ("21645374", "Do mitochondria play a role?")
    p = items_from_file("pubmedqa", tmp_path / "p.json").row(0, named=True)
    assert (p["benchmark"], p["item_id"], p["prompt"], p["own"]) == ("PubMedQA", "u-1", "Does X cause Y?", "pubmedqa")
    m = items_from_file("mmlu-med", tmp_path / "m.csv").row(0, named=True)
    assert (m["benchmark"], m["item_id"], m["prompt"]) == ("MMLU-Med", "0", "Which nerve?")
    x = items_from_file("MedXpertQA", tmp_path / "x.jsonl").row(0, named=True)
    assert (x["item_id"], x["shas"], x["dhashes"]) == ("Text-1001", ["ff" * 16], [99])


def test_precomputed_fingerprints_must_be_of_the_indices_version(tmp_path):
    """A benchmark row's `image_sha256` is a version 1 value: used against version 1 indices, an error naming
    the file and row against version 2 ones (it could never match), unless the row's image can be read."""
    (tmp_path / "v1.jsonl").write_text(json.dumps({"id": "a", "question": "Q?", "image_sha256": "ab" * 32,
                                                   "image_dhash": 5}) + "\n")
    x = items_from_file("MedXpertQA", tmp_path / "v1.jsonl", version=1).row(0, named=True)
    assert (x["shas"], x["dhashes"]) == (["ab" * 32], [5])
    with pytest.raises(ValueError, match=r"v1.jsonl row 0: precomputed image fingerprints are version 1"):
        items_from_file("MedXpertQA", tmp_path / "v1.jsonl", version=2)
    (tmp_path / "both.jsonl").write_text(json.dumps({"id": "b", "question": "Q?", "image_sha256": "ab" * 32,
                                                     "image_hash": "cd" * 16}) + "\n")
    assert items_from_file("MedXpertQA", tmp_path / "both.jsonl", version=2)["shas"][0].to_list() == ["cd" * 16]
    assert items_from_file("MedXpertQA", tmp_path / "both.jsonl", version=1)["shas"][0].to_list() == ["ab" * 32]
    Image.fromarray(np.full((8, 8), 7, np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "img.jsonl").write_text(json.dumps({"id": "a", "question": "Q?", "image": "a.png",
                                                    "image_sha256": "ab" * 32}) + "\n")
    x = items_from_file("MedXpertQA", tmp_path / "img.jsonl", version=2).row(0, named=True)
    assert x["shas"] == [pixel_hash(np.full((8, 8), 7, np.uint8))]


def _prints(img: Image.Image) -> dict:
    from medmo_data.mix.fingerprint import image_prints

    dh, thumb = image_prints(img)
    return {"sha": pixel_hash(np.asarray(img)), "dhash": dh, "image_thumb": [thumb]}


def _half_jpeg75(a: np.ndarray) -> Image.Image:
    """What a re-hosting collection does to a test image: half size, JPEG quality 75."""
    img = Image.fromarray(a)
    half = img.resize((img.width // 2, img.height // 2), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    half.save(buf, "JPEG", quality=75)
    return Image.open(io.BytesIO(buf.getvalue())).convert("L")


def test_near_images_need_the_thumbnail_too(tmp_path):
    """#13.7 both directions: a resized, re-encoded copy of a test CT slice is excluded; another patient's
    slice at the same level, within 4 dHash bits of it (the old rule dropped it), stays; an index written
    before the thumbnail column falls back to the dHash alone, counted."""
    from medmo_data.mix.fingerprint import thumb_distance
    from scripts.near_dup_rate import ct_phantom

    rng = np.random.default_rng(0)
    slices = [ct_phantom(rng) for _ in range(8)]
    prints = [_prints(Image.fromarray(a)) for a in slices]
    d64 = lambda i, j: ((prints[i]["dhash"] ^ prints[j]["dhash"]) & (2**64 - 1)).bit_count()  # noqa: E731
    a, b = next((i, j) for i in range(8) for j in range(i + 1, 8) if d64(i, j) <= 4)
    assert thumb_distance(prints[a]["image_thumb"][0], prints[b]["image_thumb"][0]) > 6.0
    copy = _prints(_half_jpeg75(slices[a]))
    assert copy["sha"] != prints[a]["sha"] and ((copy["dhash"] ^ prints[a]["dhash"]) & (2**64 - 1)).bit_count() <= 4
    data = tmp_path / "data"
    write_source(data, "ct_test", [index_row("t1", split="test", task="vqa", prompt="Where is the lesion?",
                                             **prints[a])])
    write_source(data, "roco", [index_row("copy", **copy), index_row("other_patient", **prints[b])])
    write_source(data, "old", [index_row("other_patient_old", **prints[b])], drop=("image_thumb",))
    man, out = mix(spec_file(tmp_path, ["roco", "old"]), MixOptions(data=data, out=tmp_path / "m.json"))
    rows = [json.loads(line) for line in out.with_name("m.excluded.jsonl").read_text().splitlines()]
    assert {(r["key"], r["benchmark"], r["rule"]) for r in rows} == {
        ("copy", "ct_test:test", "image_near"), ("other_patient_old", "ct_test:test", "image_near")}
    dec = man["filters"]["decontam"]
    assert dec["image_near_checks"] == {"confirmed": 1, "rejected_by_thumb": 1, "unconfirmed_no_thumb": 1}
    assert dec["settings"]["image_thumb_distance"] == 4.0


def test_real_copies_are_caught_from_benchmark_files(tmp_path):
    """Real DICOMs from the pydicom wheel: the ultrasound frame pydicom ships twice (640x480 JPEG 2000 and
    320x240 RGB) and a half-size JPEG q75 copy of its CT slice are near copies of a benchmark image; its
    MR slice is not near the CT."""
    import warnings

    import pydicom
    from pydicom.data import get_testdata_file

    from scripts.near_dup_rate import _u8

    def grey_of(name: str) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            a = pydicom.dcmread(get_testdata_file(name)).pixel_array
        return np.asarray(Image.fromarray(a).convert("L")) if a.ndim == 3 else _u8(a)

    bench = tmp_path / "bench"
    bench.mkdir()
    Image.fromarray(grey_of("examples_jpeg2k.dcm")).save(bench / "us.png")
    ct = grey_of("693_J2KI.dcm")
    Image.fromarray(ct).save(bench / "ct.png")
    (bench / "omni.jsonl").write_text("".join(json.dumps({"id": i, "question": "What is shown?", "image": f})
                                              + "\n" for i, f in (("us-1", "us.png"), ("ct-1", "ct.png"))))
    data = tmp_path / "data"
    write_source(data, "pubmed_vision", [
        index_row("us_small", **_prints(Image.fromarray(grey_of("examples_rgb_color.dcm")))),
        index_row("ct_copy", **_prints(_half_jpeg75(ct))),
        index_row("mr", **_prints(Image.fromarray(grey_of("examples_overlay.dcm")))),
    ])
    man, out = mix(spec_file(tmp_path, ["pubmed_vision"]),
                   MixOptions(data=data, out=tmp_path / "m.json", benchmarks={"OmniMedVQA": bench / "omni.jsonl"}))
    rows = [json.loads(line) for line in out.with_name("m.excluded.jsonl").read_text().splitlines()]
    assert {(r["key"], r["rule"], r["item_id"]) for r in rows} == {("us_small", "image_near", "us-1"),
                                                                 ("ct_copy", "image_near", "ct-1")}
    assert man["filters"]["decontam"]["image_near_checks"]["confirmed"] == 2


def test_the_build_stores_each_images_thumbnail(vqa_rad):  # noqa: F811
    """The index's image_thumb is the 16x16 grey thumbnail of the stored image, beside its dHash."""
    import polars as pl

    from medmo_data.mix.fingerprint import dhash64, thumb16
    from tests.helpers import read_samples

    idx = pl.read_parquet(vqa_rad / "vqa_rad" / "train-000000.index.parquet")
    by_key = {r["key"]: r for r in idx.iter_rows(named=True)}
    for s in read_samples(vqa_rad / "vqa_rad"):
        if s["__key__"] in by_key:
            img = Image.open(io.BytesIO(s["0.jpg"]))
            row = by_key[s["__key__"]]
            assert row["image_thumb"] == [thumb16(img)] and len(row["image_thumb"][0]) == 256
            assert row["image_dhash"] == [dhash64(img)]
            assert row["image_hash"] == [pixel_hash(np.asarray(img))]
    meta = pq.read_schema(vqa_rad / "vqa_rad" / "train-000000.index.parquet").metadata
    assert meta[b"medmo.fingerprint"] == str(FINGERPRINT_VERSION).encode()  # what `mix` checks


def test_near_candidates_are_every_pair_within_the_distance():
    """The radius-1 band tables find exactly the (training image, test image) pairs a full pair scan finds."""
    import polars as pl

    from medmo_data.mix.test_items import ITEM_COLS

    rng = np.random.default_rng(5)
    base = rng.integers(-(2**63), 2**63 - 1, 60, dtype=np.int64)
    items = pl.DataFrame([{"benchmark": "X", "own": None, "item_id": str(i), "prompt": "", "prompt_sha1": "",
                           "shas": [], "dhashes": [int(h)], "pmcids": [], "thumbs": []} for i, h in enumerate(base)],
                         schema=ITEM_COLS)
    train = []
    for _ in range(3000):  # copies of test hashes with 0-7 random bits flipped, and unrelated hashes
        h = int(base[rng.integers(0, 60)]) & (2**64 - 1)
        for b in rng.choice(64, rng.integers(0, 8), replace=False):
            h ^= 1 << int(b)
        train.append(h - 2**64 if h >= 2**63 else h)
    train += rng.integers(-(2**63), 2**63 - 1, 1000, dtype=np.int64).tolist()
    chunk = pl.DataFrame({"row": np.arange(len(train)), "image_dhash": [[h] for h in train]},
                         schema={"row": pl.Int64, "image_dhash": pl.List(pl.Int64)})
    for d in (0, 1, 2, 4, 6):
        ts = ItemSet(items, DecontamOptions(image_dhash_distance=d))
        got = ts._near(chunk, None)
        got = set() if got is None else set(got.select("row", "item").iter_rows())
        want = {(r, i) for r, h in enumerate(train) for i, b in enumerate(base)
                if ((h ^ int(b)) & (2**64 - 1)).bit_count() <= d}
        assert got == want and (d < 2 or len(want) > 100)


def test_words_normalises_only_non_ascii_texts_and_splits_like_python():
    """decontam.words (NFKC only where a text has a non-ASCII character) gives the words Python's
    NFKC + lower + \\w+ gives, on ASCII and on texts that NFKC changes."""
    import re
    import unicodedata

    from medmo_data.mix.decontam import words

    texts = ["Ｆｕｌｌ-width ＣＴ scan", "plain ASCII text, here!", "", "ﬁbrosis ① x² ＆ co", "Ärzte: Öl—über_all",
             "tab\tand\nnewline", "Ⅻ ㎏ ﬀ", "naïve café (e\u0301)", None]
    got = words(pl.Series(texts)).to_list()
    assert got == [re.findall(r"\w+", unicodedata.normalize("NFKC", t or "").lower()) for t in texts]
    assert got[0] == ["full", "width", "ct", "scan"] and got[3] == ["fibrosis", "1", "x2", "co"]
