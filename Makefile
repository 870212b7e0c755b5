# The README's commands. Each sets up .venv itself (torch from the local wheel cache on this machine;
# on a GPU machine install your own CUDA/ROCm torch first, then `pip install -e .[train]`).
PY := .venv/bin/python
PIP := .venv/bin/pip
TORCH ?= torch==2.14.1 torchvision==0.29.1

.PHONY: venv test demo bench stress lint dup docs clean gpu-check

.venv/.installed: pyproject.toml
	python3 -m venv .venv
	$(PIP) install -q --upgrade pip "setuptools>=77"
	$(PIP) install -q $(TORCH)
	$(PIP) install -q -e ".[train,ray,mix,dev]"
	touch $@

venv: .venv/.installed

# Nothing lands in the repository root: no .pytest_cache, hypothesis' example database in the temp dir.
TEST_ENV := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 HYPOTHESIS_STORAGE_DIRECTORY=$${TMPDIR:-/tmp}/medmo-hypothesis

test: venv
	$(TEST_ENV) $(PY) -m pytest -p no:cacheprovider -m "not stress" tests

demo: venv
	$(PY) scripts/demo.py

bench: venv
	$(PY) -m bench

# One CUDA/ROCm GPU, no download: random-init Qwen3-VL 2B, stage 2 + stage 4 (8 generations) from the demo
# shards (run `make demo` first), prints samples/s, tokens/s, peak memory, mean rewards (docs/training.md).
gpu-check: venv
	$(PY) scripts/gpu_check.py

stress: venv
	$(TEST_ENV) $(PY) -m pytest -p no:cacheprovider -m stress tests

lint: venv
	.venv/bin/ruff check .

# Repeated blocks of 8+ lines across the package, recipes and trainer (pylint's duplicate-code check).
dup: venv
	.venv/bin/pylint --disable=all --enable=duplicate-code --min-similarity-lines=8 medmo_data recipes trainer

# docs/sources.md is generated from each recipe's INFO, docstring and code (tests/test_cli.py checks it).
docs: venv
	$(PY) -m medmo_data.publish.source_info > docs/sources.md

clean:
	rm -rf demo data bench/results .pytest_cache
