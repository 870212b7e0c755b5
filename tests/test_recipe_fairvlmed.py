import numpy as np

from medmo_data.recipe import get_recipe
from tests.fixtures import make
from tests.fixtures.fairvlmed import NOTES, SUMMARIES
from tests.helpers import build_fixture, by_id, read_samples, texts


def test_fairvlmed_summaries(tmp_path):
    res = build_fixture("fairvlmed", tmp_path)
    m = res.manifest
    assert m["counts"] == {"read": 6, "written": 4, "rejected": 2}
    assert m["rejects_by_reason"] == {"missing_field": 1, "unreadable_npz": 1}
    s = by_id(read_samples(tmp_path / "out" / "fairvlmed"))
    assert {i: x["json"]["split"] for i, x in s.items()} == {
        "data_00001": "train", "data_00002": "train", "data_07001": "val", "data_08001": "test"}
    r = s["data_00001"]["json"]
    assert texts(r, "user") == "Summarize the clinical note for this patient's SLO fundus image."
    assert texts(r, "assistant") == SUMMARIES["data_00001.npz"]
    assert r["target"] == {"text": SUMMARIES["data_00001.npz"], "glaucoma": "yes"}
    assert r["meta"] == {"file": "data_00001.npz", "text_source": "summary", "race": 2, "gender": 0,
                         "ethnicity": 0, "language": 0}
    assert s["data_08001"]["json"]["meta"]["language"] == -1
    im = r["images"][0]
    assert (im["width"], im["height"]) == (51, 66) and im["member"] == "0.png"
    # The float image is rescaled min-max: the bright disc is 255, the background well below.
    from io import BytesIO

    from PIL import Image
    px = np.asarray(Image.open(BytesIO(s["data_00001"]["0.png"])))
    assert px[30, 25] == 255 and px[5, 5] < 128


def test_fairvlmed_full_notes(tmp_path):
    raw = make("fairvlmed", tmp_path / "raw")
    out = {o.id: o for o in get_recipe("fairvlmed").records(raw, {"text": "note"})}
    assert out["data_00002"].messages[-1]["content"][0]["text"] == NOTES["Training/data_00002.npz"]
    assert out["data_00002"].target["glaucoma"] == "no"
    assert out["data_00003"].reason == "missing_field"
