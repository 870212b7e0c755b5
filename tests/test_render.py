import json

import pytest

from medmo_data.render import (
    FORMAT_HINTS,
    MULTI_IMAGE_HINT,
    from_frame,
    parse_boxes,
    parse_image_boxes,
    render_messages,
    render_objects,
    to_frame,
)

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


# --- several images: `Picture n: ` before each line, `"picture": n` in JSON (1-based, Qwen3-VL's naming) ---

TWO = [(640, 480), (200, 100)]
MULTI = [{"image": 1, "label": "Tumor", "bbox": [20.0, 10.0, 60.0, 50.0]},
         {"image": 0, "label": "Tumor", "bbox": [100.0, 50.0, 300.0, 250.0]},
         {"image": 1, "label": "Tumor", "bbox": [0.0, 0.0, 10.0, 10.0]}]


def test_multi_image_lines_name_their_picture():
    assert render_objects(MULTI, TWO, "qwen3") == (
        "Picture 2: Tumor <box>[[100, 100, 300, 500], [0, 0, 50, 100]]</box>\n"
        "Picture 1: Tumor <box>[[156, 104, 469, 521]]</box>")
    assert render_objects(MULTI[:1], TWO, "pixel", fed_sizes=[(320, 240), (400, 200)]) == \
        "Picture 2: Tumor <box>[[40, 20, 120, 100]]</box>"
    assert json.loads(render_objects(MULTI[:1], TWO, "json")) == [
        {"bbox_2d": [100, 100, 300, 500], "label": "Tumor", "picture": 2}]
    # one image: no marker, exactly as before
    assert "Picture" not in render_objects(OBJS, SIZE, "qwen3") + render_objects(OBJS, SIZE, "json")


@pytest.mark.parametrize("fmt", ["qwen3", "pixel", "json"])
def test_multi_image_round_trip(fmt):
    parsed = parse_image_boxes(render_objects(MULTI, TWO, fmt))
    assert sorted((i, lab) for i, lab, _ in parsed) == [(0, "Tumor"), (1, "Tumor"), (1, "Tumor")]
    for i, _, coords in parsed:
        back = from_frame(coords, TWO[i], None, fmt)
        assert min(max(abs(a - b) for a, b in zip(back, ob["bbox"], strict=True)) for ob in MULTI
                   if ob["image"] == i) <= 1.0


def test_picture_marker_parsing():
    text = "It's in the third image. Picture 3: Spleen <box>[[1, 2, 3, 4]]</box>\nkidney <box>[5, 6, 7, 8]</box>"
    # a marker holds until the next one; the label is the text after the marker
    assert parse_image_boxes(text) == [(2, "Spleen", [1.0, 2.0, 3.0, 4.0]), (2, "kidney", [5.0, 6.0, 7.0, 8.0])]
    assert parse_boxes(text) == [("Spleen", [1.0, 2.0, 3.0, 4.0]), ("kidney", [5.0, 6.0, 7.0, 8.0])]
    assert parse_image_boxes("Picture 2:\nliver <box>[[1, 2, 3, 4]]</box>") == [(1, "liver", [1.0, 2.0, 3.0, 4.0])]
    assert parse_image_boxes("a <box>[[1, 2, 3, 4]]</box>") == [(None, "a", [1.0, 2.0, 3.0, 4.0])]
    assert parse_image_boxes("Picture 2: [1, 2, 3, 4] Picture 1: [5, 6, 7, 8]") == [
        (1, None, [1.0, 2.0, 3.0, 4.0]), (0, None, [5.0, 6.0, 7.0, 8.0])]
    assert parse_image_boxes('[{"bbox_2d": [1, 2, 3, 4], "label": "a", "picture": 0}]') == [(None, "a", [1.0, 2.0, 3.0, 4.0])]


def test_multi_image_hint():
    rec = {"images": [{"width": 640, "height": 480}, {"width": 200, "height": 100}], "objects": MULTI[:1],
           "messages": [{"role": "user", "content": [{"type": "image"}, {"type": "image"},
                                                     {"type": "text", "text": "Find it. {box_format_hint}"}]},
                        {"role": "assistant", "content": [{"type": "objects"}]}]}
    msgs = render_messages(rec, "qwen3")
    assert msgs[0]["content"][2]["text"] == "Find it. " + FORMAT_HINTS["qwen3"] + MULTI_IMAGE_HINT
    assert msgs[1]["content"] == [{"type": "text", "text": "Picture 2: Tumor <box>[[100, 100, 300, 500]]</box>"}]
