"""LLaVA conversations -> medmo/v1 messages."""

import pytest

from medmo_data.families.llava import LlavaError, final_answer, image_list, llava_messages, split_placeholders


def conv(*turns):
    return [{"from": f, "value": v} for f, v in turns]


def test_placeholders_become_image_parts_in_order():
    msgs = llava_messages(conv(("human", "Compare <image>\nwith < IMAGE >: what changed?"),
                               ("gpt", "The mass grew.")), 2)
    assert msgs == [
        {"role": "user", "content": [{"type": "text", "text": "Compare"}, {"type": "image"},
                                     {"type": "text", "text": "with"}, {"type": "image"},
                                     {"type": "text", "text": ": what changed?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "The mass grew."}]},
    ]
    assert final_answer(msgs) == "The mass grew."


def test_image_only_user_turn_and_multi_turn():
    msgs = llava_messages(conv(("human", "<image>\n"), ("gpt", "H&E, 20x."), ("human", "Grade?"), ("gpt", "2")), 1)
    assert msgs[0]["content"] == [{"type": "image"}]
    assert [m["role"] for m in msgs] == ["user", "assistant", "user", "assistant"]
    assert final_answer(msgs) == "2"


def test_count_mismatch_is_rejected_unless_prepend():
    turns = conv(("human", "What is shown?"), ("gpt", "A CT."))
    with pytest.raises(LlavaError) as e:
        llava_messages(turns, 2)
    assert e.value.reason == "image_count_mismatch"
    msgs = llava_messages(turns, 2, missing="prepend")
    assert msgs[0]["content"] == [{"type": "image"}, {"type": "image"}, {"type": "text", "text": "What is shown?"}]
    # Prepending never hides a wrong count: one placeholder for two images stays a mismatch.
    with pytest.raises(LlavaError, match="1 <image> placeholder"):
        llava_messages(conv(("human", "<image> What?"), ("gpt", "x")), 2, missing="prepend")


@pytest.mark.parametrize("turns,reason", [
    (conv(("gpt", "x"), ("human", "<image>")), "bad_turn_order"),
    (conv(("human", "<image> a"), ("human", "b"), ("gpt", "c")), "bad_turn_order"),
    (conv(("human", "<image> a")), "bad_turn_order"),
    (conv(("human", "<image> a"), ("gpt", "  ")), "empty_text"),
    (conv(("human", "a"), ("gpt", "see <image>")), "image_in_answer"),
    (conv(("robot", "<image> a"), ("gpt", "b")), "bad_conversation"),
    ([{"from": "human", "value": None}], "bad_conversation"),
    ([], "bad_conversation"),
])
def test_bad_conversations(turns, reason):
    with pytest.raises(LlavaError) as e:
        llava_messages(turns, 1)
    assert e.value.reason == reason


def test_image_list_and_split():
    assert image_list("a.jpg") == ["a.jpg"]
    assert image_list(["a.jpg", "b.jpg"]) == ["a.jpg", "b.jpg"]
    assert image_list(None) == []
    with pytest.raises(LlavaError):
        image_list([1])
    assert split_placeholders("<image>") == [{"type": "image"}]
