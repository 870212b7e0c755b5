"""Boxes stay aligned: a stored box rendered by the adapter in each frame, parsed back and mapped onto the
image the processor actually produces lands on the same pixels (within 1 px), and scores 1.0."""

from __future__ import annotations

import io

import pytest
from medmo_train.data import Resolution, grpo_row, sft_row, stage_resolution
from medmo_train.rewards import bbox_reward
from PIL import Image

from medmo_data.render import parse_boxes
from tests.test_train_support import built, tiny_model  # noqa: F401 - pytest fixtures

STORED = (300, 170)  # a non-square stored image: the two axes scale differently
BOX = [37.4, 21.9, 251.2, 160.3]


def sample(size=STORED, box=BOX) -> dict:
    buf = io.BytesIO()
    Image.new("RGB", size, (90, 90, 90)).save(buf, format="PNG")
    record = {
        "id": "a1", "task": "grounding", "images": [{"member": "0.png", "width": size[0], "height": size[1]}],
        "messages": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Find it."}]},
                     {"role": "assistant", "content": [{"type": "objects"}]}],
        "objects": [{"image": 0, "label": "nodule", "bbox": box}], "target": {"labels": ["nodule"]},
    }
    return {"__key__": "a1", "json": record, "0.png": buf.getvalue()}


def processor_fed_size(processor, img: Image.Image) -> tuple[int, int]:
    """(width, height) of the image the processor feeds the model, from its patch grid."""
    thw = processor.image_processor(images=[img], return_tensors="pt")["image_grid_thw"][0].tolist()
    p = processor.image_processor.patch_size
    return thw[2] * p, thw[1] * p


@pytest.mark.parametrize("fmt", ["qwen3", "pixel", "json"])
@pytest.mark.parametrize("bounds", [(32 * 32, 64 * 64), (32 * 32, 160 * 160), (256 * 256, 512 * 512)])
def test_box_lands_on_same_pixels(fmt, bounds, tiny_model):  # noqa: F811
    from types import SimpleNamespace

    from transformers import AutoProcessor

    proc = AutoProcessor.from_pretrained(tiny_model)
    res = stage_resolution(SimpleNamespace(image={"min_pixels": bounds[0], "max_pixels": bounds[1]}), proc)
    s = sample()
    row = sft_row("a1", "t", s, fmt, res)
    fed_w, fed_h = processor_fed_size(proc, row["images"][0])
    assert (fed_w, fed_h) == res.fed_size(*STORED)  # the adapter's fed size is the processor's
    answer = row["messages"][-1]["content"][0]["text"]
    [(label, coords)] = parse_boxes(answer)
    assert label == "nodule"
    if fmt == "pixel":
        on_fed = coords
    else:
        on_fed = [coords[0] / 1000 * fed_w, coords[1] / 1000 * fed_h, coords[2] / 1000 * fed_w,
                  coords[3] / 1000 * fed_h]
    sx, sy = fed_w / STORED[0], fed_h / STORED[1]
    want = [BOX[0] * sx, BOX[1] * sy, BOX[2] * sx, BOX[3] * sy]
    assert max(abs(a - b) for a, b in zip(on_fed, want, strict=True)) <= 1.0, (on_fed, want)
    # the reward reads the same text back in stored pixels: a near-perfect score
    g = grpo_row("a1", "t", s, fmt, res)
    cols = {k: [g[k]] for k in ("objects", "image_sizes", "fed_sizes", "box_format")}
    [score] = bbox_reward([[{"role": "assistant", "content": answer}]], **cols)
    assert score > 0.99


def test_real_shard_box_alignment(built, tiny_model):  # noqa: F811
    """A NIH ChestX-ray14 sample as built by the project (1024x1024 stored), pixel frame at 64x64 fed."""
    from transformers import AutoProcessor

    from medmo_data.shards.reader import iter_samples

    folder = built["nih_chestxray_bbox"]
    s = next(iter_samples(next(iter(sorted(folder.glob("train-*.tar"))))))
    proc = AutoProcessor.from_pretrained(tiny_model)
    res = Resolution(32 * 32, 64 * 64)
    proc.image_processor.size = {"shortest_edge": res.min_pixels, "longest_edge": res.max_pixels}
    row = sft_row(s["__key__"], "nih", s, "pixel", res)
    fed_w, fed_h = processor_fed_size(proc, row["images"][0])
    assert (fed_w, fed_h) == (64, 64)
    parsed = parse_boxes(row["messages"][-1]["content"][0]["text"])
    stored = s["json"]["objects"]
    assert len(parsed) == len(stored)
    w, h = s["json"]["images"][0]["width"], s["json"]["images"][0]["height"]
    wants = sorted([ob["bbox"][0] * fed_w / w, ob["bbox"][1] * fed_h / h, ob["bbox"][2] * fed_w / w,
                    ob["bbox"][3] * fed_h / h] for ob in stored)
    for got, want in zip(sorted(b for _, b in parsed), wants, strict=True):
        assert max(abs(a - b) for a, b in zip(got, want, strict=True)) <= 1.0
