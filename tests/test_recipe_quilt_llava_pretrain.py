from tests.helpers import build_fixture, by_id, read_samples, texts


def test_quilt_llava_pretrain(tmp_path):
    res = build_fixture("quilt_llava_pretrain", tmp_path)
    m = res.manifest
    assert m["counts"] == {"read": 4, "written": 2, "rejected": 2}
    assert m["rejects_by_reason"] == {"image_count_mismatch": 1, "empty_text": 1}
    s = by_id(read_samples(tmp_path / "out" / "quilt_llava_pretrain"))
    a = s["vid001_frame12"]["json"]
    # The placeholder becomes an image part where it stood: first here, last in the next record.
    assert a["messages"][0]["content"] == [{"type": "image"},
                                           {"type": "text", "text": "Describe the histopathology image concisely."}]
    assert texts(a, "assistant") == "Sheets of atypical lymphocytes with scattered tingible body macrophages."
    assert a["target"] == {"caption": "Sheets of atypical lymphocytes with scattered tingible body macrophages."}
    b = s["vid002_frame03"]["json"]
    assert b["messages"][0]["content"][-1] == {"type": "image"}
    assert {x["json"]["split"] for x in s.values()} == {"train"}
    assert a["access"] == "registered" and a["license"] == "CC-BY-NC-ND-3.0"
    assert all(len(x["json"]["images"]) == 1 for x in s.values())
