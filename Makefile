# The README's commands. Each sets up .venv itself (torch from the local wheel cache on this machine;
# on a GPU machine install your own CUDA/ROCm torch first, then `pip install -e .[train]`).
PY := .venv/bin/python
PIP := .venv/bin/pip
TORCH ?= torch==2.14.1 torchvision==0.29.1

.PHONY: venv test demo bench stress lint clean gpu-check

.venv/.installed: pyproject.toml
	python3 -m venv .venv
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(TORCH)
	$(PIP) install -q -e ".[train,ray,mix,dev]"
	touch $@

venv: .venv/.installed

test: venv
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(PY) -m pytest -m "not stress" tests

demo: venv
	$(PY) scripts/demo.py

bench: venv
	$(PY) -m bench

# One CUDA/ROCm GPU, no download: random-init Qwen3-VL 2B, stage 2 + stage 4 (8 generations) from the demo
# shards (run `make demo` first), prints samples/s, tokens/s, peak memory, mean rewards (docs/training.md).
gpu-check: venv
	$(PY) scripts/gpu_check.py

stress: venv
	HF_HUB_OFFLINE=1 $(PY) -m pytest -m stress tests

lint: venv
	.venv/bin/ruff check .

clean:
	rm -rf demo data bench/results .pytest_cache
