import copy

import pytest

from medmo_data.schema import SchemaError, validate_record

GOOD = {
    "schema": "medmo/v1", "id": "x1", "source": "s", "split": "train", "task": "grounding", "modality": "ct",
    "messages": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "find"}]},
                 {"role": "assistant", "content": [{"type": "objects"}]}],
    "images": [{"member": "0.png", "width": 10, "height": 8, "source_width": 20, "source_height": 16,
                "derivation": {}}],
    "objects": [{"image": 0, "label": "a", "bbox": [1.0, 1.0, 5.0, 5.0]}],
    "target": {}, "license": "CC0", "access": "open", "meta": {},
}


def test_good_record_passes():
    validate_record(GOOD)


@pytest.mark.parametrize("path,mutate", [
    ("split", lambda r: r.update(split="training")),
    ("task", lambda r: r.update(task="segmentation")),
    ("objects[0].bbox", lambda r: r["objects"][0].update(bbox=[5.0, 1.0, 1.0, 5.0])),
    ("objects[0].bbox", lambda r: r["objects"][0].update(bbox=[1.0, 1.0, 11.0, 5.0])),
    ("objects[0].image", lambda r: r["objects"][0].update(image=3)),
    ("images[0].member", lambda r: r["images"][0].update(member="0.gif")),
    ("images[0].width", lambda r: r["images"][0].update(width=0)),
    ("messages", lambda r: r["messages"][0]["content"].pop(0)),
    ("messages[1].role", lambda r: r["messages"][1].update(role="bot")),
    ("access", lambda r: r.update(access="public")),
])
def test_bad_field_named(path, mutate):
    rec = copy.deepcopy(GOOD)
    mutate(rec)
    with pytest.raises(SchemaError) as e:
        validate_record(rec)
    assert e.value.path == path
