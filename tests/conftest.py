"""Suite-wide settings: HF `datasets` caches under this session's temporary folder, so a test never reads
a dataset cached by an earlier run (pytest reuses temporary paths, and the cache is keyed on them)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_hf_datasets_cache(tmp_path_factory):
    import datasets.config

    cache = tmp_path_factory.mktemp("hf-datasets-cache")
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_DATASETS_CACHE", str(cache))
    mp.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
    yield
    mp.undo()


@pytest.fixture(scope="module")
def vqa_rad(tmp_path_factory) -> Path:
    """A VQA-RAD fixture built once per test module: OUT holding `vqa_rad/` (mix, stats, decontam tests)."""
    from tests.helpers import build_fixture

    tmp = tmp_path_factory.mktemp("vqa")
    build_fixture("vqa_rad", tmp)
    return tmp / "out"
