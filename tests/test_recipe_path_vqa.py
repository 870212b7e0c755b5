import os
import pickle

import pytest

from medmo_data.build.distributor import BuildOptions, build
from medmo_data.formats.safe_pickle import UnsafePickle
from medmo_data.recipe import SourceError, get_recipe
from tests.fixtures import make
from tests.fixtures.path_vqa import make_hub
from tests.helpers import build_fixture, by_id, read_samples, texts


def test_path_vqa_original_pickles(tmp_path):
    res = build_fixture("path_vqa", tmp_path)
    m = res.manifest
    assert m["counts"] == {"read": 7, "written": 5, "rejected": 2}
    assert m["rejects_by_reason"] == {"duplicate_qa": 1, "missing_image": 1}
    s = by_id(read_samples(tmp_path / "out" / "path_vqa"))
    assert {i: x["json"]["split"] for i, x in s.items()} == {
        "train_qa-000000": "train", "train_qa-000001": "train", "train_qa-000003": "train",
        "val_qa-000000": "val", "test_qa-000000": "test"}
    r = s["train_qa-000001"]["json"]
    assert texts(r, "user") == "is there inflammation?"
    assert texts(r, "assistant") == "yes"
    assert r["target"] == {"answer": "yes", "answer_type": "yes/no"}
    assert s["val_qa-000000"]["json"]["target"]["answer_type"] == "other"
    assert s["val_qa-000000"]["json"]["meta"] == {"image_id": "val_0261"}


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/medmo_pathvqa_pwned",))


def test_malicious_pickle_stops_the_build_without_running(tmp_path):
    raw = make("path_vqa", tmp_path / "raw")
    (raw / "pvqa/qas/val/val_qa.pkl").write_bytes(pickle.dumps([{"image": _Evil()}]))
    with pytest.raises(UnsafePickle, match="val_qa.pkl: opcode STACK_GLOBAL"):
        build(get_recipe("path_vqa"), raw, BuildOptions(output=tmp_path / "out"))
    assert not os.path.exists("/tmp/medmo_pathvqa_pwned")


def test_explicit_json_conversion_is_preferred(tmp_path):
    raw = make("path_vqa", tmp_path / "raw")
    from medmo_data.formats.safe_pickle import main

    qas = raw / "pvqa/qas/test"
    assert main([str(qas / "test_qa.pkl"), str(qas / "test_qa.json")]) == 0
    (qas / "test_qa.pkl").write_bytes(b"not a pickle")  # would fail if it were still read
    out = [o for o in get_recipe("path_vqa").records(raw, {}) if getattr(o, "split", "") == "test"]
    assert [o.target["answer"] for o in out] == ["no"]


def test_path_vqa_hub_parquet(tmp_path):
    make_hub(tmp_path / "hub")
    res = build(get_recipe("path_vqa"), tmp_path / "hub", BuildOptions(output=tmp_path / "out"))
    assert res.manifest["counts"] == {"read": 4, "written": 4, "rejected": 0}
    s = by_id(read_samples(tmp_path / "out" / "path_vqa"))
    assert {i: x["json"]["split"] for i, x in s.items()} == {
        "train-000000": "train", "train-000001": "train", "val-000000": "val", "test-000000": "test"}
    assert texts(s["val-000000"]["json"], "assistant") == "hyperchromatic"
    assert s["train-000001"]["json"]["meta"] == {"image_id": "img_1.jpg"}


def test_nothing_there(tmp_path):
    with pytest.raises(SourceError, match="pvqa/qas"):
        list(get_recipe("path_vqa").records(tmp_path, {}))
