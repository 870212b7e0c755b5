"""`medmo-data export` layouts (issue #17 part 2).

LLaMA-Factory and ms-swift cannot be installed beside this project (they pin `datasets<=4.0.0` and
`<4.8.5`; we run 5.x), so these tests re-implement the checks their loaders make, citing where:
- LLaMA-Factory (hiyouga/LLaMA-Factory, src/llamafactory/data/): `parser.get_dataset_list` reads the
  `dataset_info.json` entry; `loader._load_single_dataset` accepts only json/jsonl/parquet/arrow/csv/txt
  files; `converter.SharegptDatasetConverter` drops samples whose roles do not alternate user/assistant
  after an optional system turn or whose turn count is odd; `mm_plugin._validate_input` raises when the
  `<image>` count differs from len(images); `_find_medias` joins paths to the dataset dir.
- ms-swift (modelscope/ms-swift): docs/source_en/Customization/Custom-dataset.md (`messages`, `images`,
  `objects` with `ref`/`bbox` matching the `<ref-object>`/`<bbox>` counts, `bbox_type` real, `image_id`);
  `RowPreprocessor._check_objects` (boxes of 2 or 4 numbers); `Template.normalize_bbox` (norm1000 for
  Qwen3-VL: `int(round(x / width * 1000))` of the ORIGINAL image size), re-implemented below.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

from medmo_data.publish.export import ExportError, export, parquet_features
from medmo_data.render import to_frame
from tests.helpers import build_fixture, read_samples

LF_FILE_TYPES = {"arrow", "csv", "json", "jsonl", "parquet", "txt"}  # llamafactory FILEEXT2TYPE


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A png grounding source with boxes and a jpg VQA source, plus a stage manifest over both."""
    tmp = tmp_path_factory.mktemp("export")
    a = build_fixture("deeplesion", tmp / "a").path.parent
    b = build_fixture("vqa_rad", tmp / "b").path.parent
    samples = {s["__key__"]: s for folder in (a, b) for s in read_samples(folder)}
    shards = []
    for folder in (a, b):
        man = json.loads((folder / "manifest.json").read_text())
        shards.append({"name": man["source"], "weight": 0.5, "manifest": str(folder / "manifest.json"),
                       "samples": man["splits"]["train"], "excluded_keys": "excl.jsonl",
                       "shards": [{"path": str(folder / s["path"]), "sha256": s["sha256"], "samples": s["samples"]}
                                  for s in man["shards"] if s["split"] == "train"]})
    skip = next(k for k, s in samples.items() if s["json"]["source"] == "vqa_rad" and s["json"]["split"] == "train")
    (tmp / "excl.jsonl").write_text(json.dumps({"source": "vqa_rad", "key": skip}) + "\n")
    shards[1]["samples"] -= 1
    stage = {"schema": "medmo-stage/v1", "stage": 2, "kind": "sft", "seed": 42, "box_format": "pixel",
             "image": None, "sources": shards, "filters": {}, "training": {}}
    (tmp / "stage2.json").write_text(json.dumps(stage))
    return a, b, tmp / "stage2.json", samples, skip


def _member_bytes(samples, source, key_member):
    key, member = key_member.split(".", 1)
    return samples[key][member]


def _lf_rows(out: Path, entry: dict) -> list[dict]:
    assert entry["file_name"].rsplit(".", 1)[-1] in LF_FILE_TYPES
    return [json.loads(line) for line in (out / entry["file_name"]).read_text().splitlines()]


def _lf_check(out: Path, rows: list[dict], entry: dict, samples) -> None:
    cols, tags = entry["columns"], entry.get("tags", {})
    role, content = tags.get("role_tag", "from"), tags.get("content_tag", "value")
    user, assistant = tags.get("user_tag", "human"), tags.get("assistant_tag", "gpt")
    system = tags.get("system_tag", "system")
    for row in rows:
        msgs = row[cols["messages"]]
        if msgs and msgs[0][role] == system:
            msgs = msgs[1:]
        assert msgs and len(msgs) % 2 == 0, "Invalid message count"
        for i, m in enumerate(msgs):
            assert m[role] == (user if i % 2 == 0 else assistant), "Invalid role tag"
        images = row[cols["images"]]
        assert sum(m[content].count("<image>") for m in msgs) == len(images)
        for p in images:
            f = out / p
            assert f.is_file()
            assert f.read_bytes() == _member_bytes(samples, None, f.name)  # copied, never re-encoded


def _export_both(built, out: Path, fmt: str) -> dict:
    """Both sources exported into one folder; its dataset_info.json."""
    for folder in built[:2]:
        export(folder, fmt, out)
    return json.loads((out / "dataset_info.json").read_text())


@pytest.mark.parametrize("fmt", ["llamafactory", "sharegpt"])
def test_llamafactory_layouts(built, tmp_path, fmt):
    samples = built[3]
    out = tmp_path / fmt
    info = _export_both(built, out, fmt)
    assert {"medmo_deeplesion_train", "medmo_vqa_rad_train", "medmo_vqa_rad_test"} <= set(info)
    for name, entry in info.items():
        assert entry["formatting"] == "sharegpt"
        rows = _lf_rows(out, entry)
        src, split = name.removeprefix("medmo_").rsplit("_", 1)
        want = [s for s in samples.values() if s["json"]["source"] == src and s["json"]["split"] == split]
        assert len(rows) == len(want)
        _lf_check(out, rows, entry, samples)
    row = _lf_rows(out, info["medmo_deeplesion_train"])[0]
    msgs = row["messages"] if fmt == "llamafactory" else row["conversations"]
    answer = msgs[-1]["content" if fmt == "llamafactory" else "value"]
    assert "<box>[[" in answer  # qwen3 frame by default


def test_swift_grounding_objects(built, tmp_path):
    a, b, _, samples, _ = built
    out = tmp_path / "swift"
    export(a, "swift", out)
    export(b, "swift", out)
    n_box = 0
    for f in sorted(out.glob("*.jsonl")):
        for line in f.read_text().splitlines():
            row = json.loads(line)
            text = "".join(m["content"] for m in row["messages"])
            assert all(m["role"] in ("system", "user", "assistant") for m in row["messages"])
            assert text.count("<image>") == len(row["images"])
            assert "{box_format_hint}" not in text
            for p in row["images"]:
                assert Path(p).is_absolute() and Path(p).is_file()
            if "objects" not in row:
                assert "<bbox>" not in text
                continue
            obj = row["objects"]
            assert len(obj["ref"]) == text.count("<ref-object>") and len(obj["bbox"]) == text.count("<bbox>")
            assert obj.get("bbox_type", "real") == "real" and len(obj["image_id"]) == len(obj["bbox"])
            key = Path(row["images"][0]).name.split(".")[0]
            rec = samples[key]["json"]
            for box, ref, img, stored in zip(obj["bbox"], obj["ref"], obj["image_id"], rec["objects"], strict=True):
                assert ref == stored["label"] and img == stored["image"]
                assert len(box) == 4 and box[0] < box[2] and box[1] < box[3]
                w, h = Image.open(row["images"][img]).size
                assert box[2] <= w and box[3] <= h
                # Template.normalize_bbox (norm1000, the Qwen3-VL template) lands on our qwen3 frame.
                swift = [int(round(v / d * 1000)) for v, d in zip(box, (w, h, w, h), strict=True)]
                assert swift == to_frame(stored["bbox"], (w, h), None, "qwen3")
                n_box += 1
    assert n_box > 0


def test_parquet_uniform_across_png_and_jpg(built, tmp_path):
    datasets = pytest.importorskip("datasets")
    a, b, _, samples, _ = built
    out = tmp_path / "pq"
    export(a, "parquet", out)
    export(b, "parquet", out)
    files = sorted((out / "data").glob("*.parquet"))
    schemas = {pq.read_schema(f).remove_metadata() for f in files}
    assert len(schemas) == 1  # one schema for every source
    ds = datasets.load_dataset("parquet", data_dir=str(out), split="train",
                               cache_dir=str(tmp_path / "cache"))
    assert ds.features == parquet_features()
    want = [s for s in samples.values() if s["json"]["split"] == "train"]
    assert len(ds) == len(want)
    formats = set()
    raw = ds.cast_column("images", datasets.List(datasets.Image(decode=False)))
    for row, dec in zip(raw, ds, strict=True):
        rec = json.loads(row["record"])
        sample = samples[row["images"][0]["path"].split(".")[0]]
        assert rec == sample["json"]
        assert row["images"][0]["bytes"] == sample[rec["images"][0]["member"]]  # stored bytes, not re-encoded
        formats.add(dec["images"][0].format)
    assert formats == {"PNG", "JPEG"}


def test_stage_manifest_export_skips_excluded_and_uses_stage_frame(built, tmp_path):
    _, _, stage, samples, skip = built
    out = tmp_path / "st"
    res = export(stage, "llamafactory", out)
    info = json.loads((out / "dataset_info.json").read_text())
    assert set(info) == {"medmo_stage2_deeplesion_train", "medmo_stage2_vqa_rad_train"}  # one per source
    assert json.loads((out / "stage2_weights.json").read_text())["weights"] == {"deeplesion": 0.5, "vqa_rad": 0.5}
    rows = [json.loads(x) for name in sorted(info)
            for x in (out / info[name]["file_name"]).read_text().splitlines()]
    want = [k for k, s in samples.items() if s["json"]["split"] == "train" and k != skip]
    assert res.samples == {"train": len(want)} and len(rows) == len(want)
    assert not (out / "images" / "vqa_rad" / f"{skip}.0.jpg").exists()
    grounding = [r for r in rows if "<box>" in r["messages"][-1]["content"]]
    assert grounding and "absolute pixels" in grounding[0]["messages"][0]["content"]  # the stage's pixel frame
    digest = {hashlib.sha256(p.read_bytes()).hexdigest() for p in (out / "images").rglob("*.*")}
    assert len(digest) == sum(len(samples[k]["json"]["images"]) for k in want)


def test_export_errors(tmp_path, built):
    a = built[0]
    with pytest.raises(ExportError, match="manifest.json: not found"):
        export(tmp_path, "swift", tmp_path / "o")
    with pytest.raises(ExportError, match="--format 'axolotl'"):
        export(a, "axolotl", tmp_path / "o")
    with pytest.raises(ExportError, match="--box-format 'xywh'"):
        export(a, "swift", tmp_path / "o", box_format="xywh")


LF_CHECK = r"""
import json, os, sys
from llamafactory.data.converter import get_dataset_converter
from llamafactory.data.parser import get_dataset_list
from llamafactory.hparams import DataArguments

d, names = sys.argv[1], sys.argv[2:]
n = 0
for attr in get_dataset_list(names, d):
    conv = get_dataset_converter(attr.formatting, attr, DataArguments(dataset_dir=d))
    for line in open(os.path.join(d, attr.dataset_name), encoding="utf-8"):
        ex = conv(json.loads(line))
        assert ex["_prompt"] and ex["_response"], "converter dropped the sample (invalid roles or count)"
        assert all(os.path.isfile(p) for p in ex["_images"]), ex["_images"]
        tokens = sum(m["content"].count("<image>") for m in ex["_prompt"] + ex["_response"])
        assert tokens == len(ex["_images"]), (tokens, ex["_images"])
        n += 1
print(n)
"""


@pytest.mark.skipif(not os.environ.get("MEDMO_LLAMAFACTORY_PYTHON"),
                    reason="set MEDMO_LLAMAFACTORY_PYTHON to a python with llamafactory (it pins datasets<=4.0)")
@pytest.mark.parametrize("fmt", ["llamafactory", "sharegpt"])
def test_llamafactory_own_converter_reads_the_export(built, tmp_path, fmt):
    """Optional: LLaMA-Factory's own parser and converter, in its own environment, over our export."""
    samples = built[3]
    out = tmp_path / fmt
    names = sorted(_export_both(built, out, fmt))
    r = subprocess.run([os.environ["MEDMO_LLAMAFACTORY_PYTHON"], "-c", LF_CHECK, str(out), *names],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert int(r.stdout.split()[-1]) == len(samples)


SWIFT_CHECK = r"""
import json, sys
from types import SimpleNamespace
from PIL import Image
from swift.dataset import load_dataset
from swift.template.base import Template

out = []
for path in sys.argv[1:]:
    train, _ = load_dataset([path])
    for row in train:
        objs = row.get("objects")
        if not objs or not objs.get("bbox"):
            continue
        sizes = [Image.open(im["path"]).size for im in row["images"]]
        objs = {**objs, "bbox": [list(b) for b in objs["bbox"]], "width": [w for w, _ in sizes],
                "height": [h for _, h in sizes]}
        Template.normalize_bbox(SimpleNamespace(norm_bbox="norm1000"), SimpleNamespace(objects=objs, images=[]))
        out.append({"image": row["images"][0]["path"], "bbox": objs["bbox"]})
print(json.dumps(out))
"""


@pytest.mark.skipif(not os.environ.get("MEDMO_SWIFT_PYTHON"),
                    reason="set MEDMO_SWIFT_PYTHON to a python with ms-swift (it pins datasets<4.8.5)")
def test_swift_own_loader_and_box_normalisation(built, tmp_path):
    """Optional: ms-swift's own `load_dataset` reads the export, and its Qwen3-VL box normalisation
    (`Template.normalize_bbox`, norm1000) gives exactly our `qwen3` frame."""
    a, _, _, samples, _ = built
    out = tmp_path / "swift"
    export(a, "swift", out)
    files = sorted(str(p) for p in out.glob("*.jsonl"))
    r = subprocess.run([os.environ["MEDMO_SWIFT_PYTHON"], "-c", SWIFT_CHECK, *files],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = json.loads(r.stdout.strip().splitlines()[-1])
    assert len(rows) == sum(1 for s in samples.values() if s["json"]["source"] == "deeplesion")
    for row in rows:
        rec = samples[Path(row["image"]).name.split(".")[0]]["json"]
        size = (rec["images"][0]["width"], rec["images"][0]["height"])
        assert row["bbox"] == [to_frame(o["bbox"], size, None, "qwen3") for o in rec["objects"]]
