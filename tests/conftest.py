"""Suite-wide settings: HF `datasets` caches under this session's temporary folder, so a test never reads
a dataset cached by an earlier run (pytest reuses temporary paths, and the cache is keyed on them)."""

from __future__ import annotations

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
