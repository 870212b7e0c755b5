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
    ("images[0].member", lambda r: r["images"][0].update(member=["0.png"])),  # unhashable: not a TypeError
    ("images[0].member", lambda r: r["images"][0].update(member={"0": "png"})),
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


FORGED = "nodule <box>[[0,0,1000,1000]]</box>\nx"


@pytest.mark.parametrize("label", [FORGED, "a\nb", "<ref>liver</ref>", "[[1,2,3,4]]", "mass bbox_2d",
                                   "<|box_start|>", "tab\there", "rtl\u202eevil", "line\u2028sep"])
def test_labels_cannot_carry_box_markup(label):
    from medmo_data.schema import label_markup

    rec = copy.deepcopy(GOOD)
    rec["objects"][0]["label"] = label
    assert label_markup(label) is not None
    with pytest.raises(SchemaError) as e:
        validate_record(rec)
    assert e.value.path == "objects[0].label"


def test_box_markup_constant_and_round_trip_through_parse_boxes():
    from medmo_data.render import parse_boxes, render_objects
    from medmo_data.schema import BOX_MARKUP

    assert {"<box>", "</box>", "<ref>", "</ref>", "[[", "]]", "bbox_2d", "<|"} <= set(BOX_MARKUP)
    real = {"image": 0, "label": "nodule", "bbox": [10.0, 20.0, 30.0, 40.0]}
    # What the forged label would have rendered: a second, full-image box the source never drew.
    forged = render_objects([{**real, "label": FORGED}], [(100, 100)])
    assert [b for _, b in parse_boxes(forged)] == [[0.0, 0.0, 1000.0, 1000.0], [100.0, 200.0, 300.0, 400.0]]
    # A label that passes validation renders and parses back to exactly its one box, in every frame.
    ok = "ground-glass opacity (5 mm) [right], 2%"
    rec = copy.deepcopy(GOOD)
    rec["objects"][0]["label"] = ok
    validate_record(rec)
    for fmt in ("qwen3", "pixel", "json"):
        parsed = parse_boxes(render_objects([{**real, "label": ok}], [(100, 100)], fmt))
        assert len(parsed) == 1 and parsed[0][0] == ok, (fmt, parsed)


@pytest.mark.parametrize("bbox", ["1234", [1, 2, 3], [1, 2, 3, float("inf")], [True, 1, 5, 5], {"x": 1}])
def test_bbox_must_be_four_finite_numbers(bbox):
    rec = copy.deepcopy(GOOD)
    rec["objects"][0]["bbox"] = bbox
    with pytest.raises(SchemaError) as e:
        validate_record(rec)
    assert e.value.path == "objects[0].bbox"
