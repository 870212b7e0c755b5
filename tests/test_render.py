import json

import pytest

from medmo_data.render import FORMAT_HINTS, from_frame, parse_boxes, render_messages, render_objects, to_frame

OBJS = [{"image": 0, "label": "Fracture", "bbox": [100.0, 50.0, 300.0, 250.0]},
        {"image": 0, "label": "Fracture", "bbox": [10.0, 20.0, 30.0, 40.0]},
        {"image": 0, "label": "metal", "bbox": [0.0, 0.0, 640.0, 480.0]}]
SIZE = [(640, 480)]


def test_qwen3_text():
    assert render_objects(OBJS, SIZE, "qwen3") == (
        "Fracture <box>[[156, 104, 469, 521], [16, 42, 47, 83]]</box>\nmetal <box>[[0, 0, 1000, 1000]]</box>")


def test_pixel_frame_uses_fed_size():
    assert render_objects(OBJS[:1], SIZE, "pixel", fed_sizes=[(320, 240)]) == "Fracture <box>[[50, 25, 150, 125]]</box>"


def test_json_frame():
    out = json.loads(render_objects(OBJS[:1], SIZE, "json"))
    assert out == [{"bbox_2d": [156, 104, 469, 521], "label": "Fracture"}]


@pytest.mark.parametrize("fmt", ["qwen3", "pixel", "json"])
def test_round_trip_within_one_pixel(fmt):
    text = render_objects(OBJS, SIZE, fmt)
    parsed = parse_boxes(text)
    assert [p[0] for p in parsed] == ["Fracture", "Fracture", "metal"]
    for (_, coords), ob in zip(parsed, OBJS, strict=True):
        back = from_frame(coords, SIZE[0], None, fmt)
        assert max(abs(a - b) for a, b in zip(back, ob["bbox"], strict=True)) <= 1.0


def test_parser_tolerance():
    assert parse_boxes("```json\n[{\"bbox_2d\": [1, 2, 3, 4], \"label\": \"a\"}]\n```") == [("a", [1.0, 2.0, 3.0, 4.0])]
    assert parse_boxes("nodule: <box> 30, 40, 10, 20 </box>") == [("nodule", [10.0, 20.0, 30.0, 40.0])]
    assert parse_boxes("answer [5, 6, 7, 8] and [1,1,2,2]") == [(None, [5.0, 6.0, 7.0, 8.0]), (None, [1.0, 1.0, 2.0, 2.0])]
    assert parse_boxes("no boxes here") == []


def test_render_messages_hint_and_objects():
    rec = {"images": [{"width": 640, "height": 480}], "objects": OBJS[:1], "messages": [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Find it. {box_format_hint}"}]},
        {"role": "assistant", "content": [{"type": "objects"}]}]}
    msgs = render_messages(rec, "qwen3")
    assert msgs[0]["content"][1]["text"] == "Find it. " + FORMAT_HINTS["qwen3"]
    assert msgs[1]["content"] == [{"type": "text", "text": "Fracture <box>[[156, 104, 469, 521]]</box>"}]
    assert to_frame([0, 0, 640, 480], (640, 480), None, "qwen3") == [0, 0, 1000, 1000]
