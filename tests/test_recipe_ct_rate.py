import io

import numpy as np
import pytest
from medmo_data.recipes.ct_rate import prompt
from PIL import Image

from tests.boxcheck import assert_show_grid
from tests.helpers import build_fixture, by_id, read_samples, texts


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ct_rate")
    res = build_fixture("ct_rate", tmp)
    return res, by_id(read_samples(tmp / "out" / "ct_rate")), tmp


def pixels(sample, k):
    return np.asarray(Image.open(io.BytesIO(sample[f"{k}.png"])))


def test_counts_rejects_splits(built):
    res, s, _ = built
    assert res.manifest["counts"] == {"read": 6, "written": 2, "rejected": 4}
    assert res.manifest["rejects_by_reason"] == {"duplicate_reconstruction": 1, "empty_report": 1,
                                                 "missing_image": 1, "missing_metadata": 1}
    assert {k: v["json"]["split"] for k, v in s.items()} == {"train_1_a_1": "train", "valid_1_a_1": "val"}


def test_report_text(built):
    _, s, _ = built
    rec = s["train_1_a_1"]["json"]
    assert texts(rec, "assistant") == ('Findings: Trachea and both main bronchi are open. A 4 mm nodule, "stable", '
                                       "in the right upper lobe.\n\nImpression: No acute finding.")
    assert texts(rec, "user") == prompt(3)
    assert texts(s["valid_1_a_1"]["json"], "assistant") == "Findings: Cardiomegaly."
    assert rec["task"] == "report" and rec["access"] == "registered" and rec["license"] == "CC-BY-NC-SA-4.0"


def test_slices_windows_and_hu(built):
    _, s, _ = built
    for sid, rescale in (("train_1_a_1", {"slope": 1.0, "intercept": -1024.0}), ("valid_1_a_1", None)):
        rec = s[sid]["json"]
        assert [im["derivation"]["slice_index"] for im in rec["images"]] == [2, 2, 5, 5, 7, 7]
        assert [im["derivation"]["window"]["source"] for im in rec["images"]] == ["lung", "mediastinum"] * 3
        assert rec["images"][0]["derivation"].get("rescale") == rescale
        assert rec["meta"]["spacing"] == [0.75, 0.75, 1.5]
        lung, med = pixels(s[sid], 0), pixels(s[sid], 1)
        # core 40 HU, ring -600 HU, air -1000 HU: only right if raw values were turned into HU
        assert (lung[15, 15], lung[10, 10], lung[0, 0]) == (236, 128, 60)
        assert (med[15, 15], med[10, 10], med[0, 0]) == (120, 0, 0)


def test_raw_mode_needs_metadata(tmp_path):
    res = build_fixture("ct_rate", tmp_path, recipe_options={"volumes": "raw"})
    # the validation volume exists only as a fixed copy
    assert res.manifest["rejects_by_reason"]["missing_image"] == 2


def test_show_grid(built):
    _, _, tmp = built
    assert_show_grid(tmp / "out" / "ct_rate", tmp / "grid.png")
