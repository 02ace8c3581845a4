# Two set-up commands: `make demo` and `make test`. Each creates .venv when it is missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# PIP_ARGS: more for pip, e.g. PyTorch's CPU-only wheels where PyPI's Linux torch is a CUDA build
PIP_ARGS ?=
PIP    := $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt \
	$(PIP_ARGS)

.PHONY: demo test lint bench test-torchvision test-oldest clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) -e .
	@touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP) -e '.[dev]'
	@touch $@

demo: $(VENV)/.installed
	$(BIN)/cnnlab classify train --model lenet5 --data digits --out runs/classify/demo

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

test: lint
	$(BIN)/python -m pytest -q

bench: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/bench_digits.py

# torchvision does not pair with the CPU torch above: compare against it in a side venv (~5.5 GB).
TVENV := .venv-torchvision
test-torchvision:
	test -x $(TVENV)/bin/python || $(PYTHON) -m venv $(TVENV)
	$(TVENV)/bin/python -m pip install --quiet torch==2.14.1 torchvision==0.29.1 pytest hypothesis
	$(TVENV)/bin/python -m pip install --quiet -c constraints.txt numpy pillow scikit-learn \
		scikit-image matplotlib rich
	$(TVENV)/bin/python -m pip install --quiet --no-deps -e .
	$(TVENV)/bin/python -m pytest -q tests/test_torchvision_weights.py tests/test_weights_loading.py

# The oldest release of each dependency pyproject.toml admits (torch: the CPU build above; its
# floor, 2.5, exists here only as a CUDA build of several GB): the suite must pass on them too.
OVENV := .venv-oldest
OLDEST := numpy==1.24.4 pillow==10.0.0 scikit-learn==1.3.0 scikit-image==0.22.0 \
	matplotlib==3.7.0 rich==13.0.0 kornia==0.7.2 pycocotools==2.0.7 pyyaml==6.0 onnx==1.15.0 \
	onnxruntime==1.17.0 pytest==8.0.0 hypothesis==6.100.0 av==12.0.0
test-oldest:
	test -x $(OVENV)/bin/python || $(PYTHON) -m venv $(OVENV)
	$(OVENV)/bin/python -m pip install --quiet torch==2.13.0 $(OLDEST)
	$(OVENV)/bin/python -m pip install --quiet --no-deps -e .
	$(OVENV)/bin/python -m pytest -q

# the virtualenvs and caches; runs/ holds trained models and stays
clean:
	rm -rf $(VENV) $(TVENV) $(OVENV) .pytest_cache .ruff_cache .hypothesis
