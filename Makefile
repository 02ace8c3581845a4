# Two set-up commands: `make demo` and `make test`. Each creates .venv when it is missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt

.PHONY: demo test lint bench test-torchvision clean

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

clean:
	rm -rf $(VENV) $(TVENV) runs .pytest_cache .ruff_cache .hypothesis
