"""Every recipe, from its fixture: builds, verifies, and every shard series loads unmodified through HF
`datasets.load_dataset("webdataset")` (which infers columns and JSON types from the first samples) and
through `webdataset`."""

from collections import defaultdict

import pytest

from medmo_data.build.verify import verify
from medmo_data.recipe import all_recipes
from tests.fixtures import available
from tests.helpers import build_fixture

NAMES = sorted(set(available()) & set(all_recipes()))


def test_every_source_has_a_fixture():
    missing = sorted(set(all_recipes()) - set(available()))
    assert not missing, f"recipes without a fixture: {missing}"
    assert len([n for n in all_recipes() if n != "folder"]) == 45


@pytest.mark.parametrize("name", NAMES)
def test_builds_verifies_and_loads_in_hf_and_webdataset(name, tmp_path):
    import webdataset as wds
    from datasets import load_dataset

    res = build_fixture(name, tmp_path)
    m = res.manifest
    c = m["counts"]
    assert c["read"] == c["written"] + c["rejected"] and c["written"] > 0
    folder = tmp_path / "out" / name
    rep = verify(folder)
    assert rep.ok, rep.problems[:5]
    series = defaultdict(list)
    for sh in m["shards"]:
        series[sh["group"]].append(str(folder / sh["path"]))
    for group, tars in sorted(series.items()):
        n = sum(sh["samples"] for sh in m["shards"] if sh["group"] == group)
        if n == 0:  # every sample of the series rejected (folder: the bad-box JPEG line): nothing to load
            continue
        hf = load_dataset("webdataset", data_files={"x": tars}, split="x", cache_dir=str(tmp_path / "hf"))
        assert len(hf) == n, group
        assert hf[0]["json"]["source"] == name
        assert sum(1 for _ in wds.WebDataset(tars, shardshuffle=False)) == n
