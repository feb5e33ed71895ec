# Two commands: `make lab` opens the course, `make test` executes and checks all of it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The stamp's name carries a hash of the install inputs: change them and the next call reinstalls.
HASH   := $(shell cat requirements.txt pyproject.toml | sha256sum | cut -c1-12)
STAMP  := $(VENV)/.installed-$(HASH)

.PHONY: lab test test-fast test-load lint bench labs site site-check clean

# Your answers live in workspace/ (ignored by git): copied from labs/ once, never overwritten. The copy is in
# Python, not `cp -n`, whose exit status differs between coreutils versions (9.2-9.4 exit 1 when a file exists).
lab: $(STAMP)
	$(BIN)/python -m utils.labs setup
	$(BIN)/python -m utils.labs serve

test: $(STAMP)
	$(BIN)/python -m utils.labs check
	$(BIN)/python -m utils.questions check
	$(BIN)/python -m utils.course check
	$(BIN)/python -m utils.colab check
	$(BIN)/python -m pytest -n 2 --dist worksteal

# The inner loop: unit tests, doctests and every lab check's tests, without executing notebooks. About three
# CPU-minutes (2 min 54 s user+sys, measured 2026-12-07): a few minutes on two free cores, far longer when other
# work shares them (25 min of wall time at a load average of 19 on two cores).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -n 2 --ignore=tests/test_notebooks.py

# The notebooks whose cells assert timing claims through utils.bench (tests/test_under_load.py finds them), executed RUNS times each with
# their test parameters while another process keeps a core busy; every run must pass. Not part of `make test`.
RUNS ?= 3
test-load: $(STAMP)
	BML_UNDER_LOAD=$(RUNS) $(BIN)/python -m pytest -n 1 -p no:cacheprovider tests/test_under_load.py

# ruff over utils/, tests/, notebooks/ and solutions/ (config in pyproject.toml); the tests run the same check.
lint: $(STAMP)
	$(BIN)/ruff check .

# Executes every notebook with its default parameters and prints the timing table.
bench: $(STAMP)
	BML_DEFAULT_PARAMETERS=1 $(BIN)/python -m pytest -n 1 tests/test_notebooks.py

# The course as a static site under build/site/ (open build/site/index.html; no network needed): executes each
# notebook that has no executed copy newer than itself (default parameters, two at a time; about ten minutes from
# a fresh clone on two cores), renders every page, then checks every page, link, anchor and figure.
site: $(STAMP)
	$(BIN)/python -m utils.site build

# Opens the built site's index and lesson 04 in headless Chromium when it is installed (apt-get install chromium),
# saves screenshots under build/site-screenshots/ and checks that MathJax typeset the formulas.
site-check: $(STAMP)
	$(BIN)/python -m utils.site screenshot

# Regenerates labs/ from solutions/.
labs: $(STAMP)
	$(BIN)/python -m utils.labs build

# PyTorch's own wheel index for a CPU-only (or a specific CUDA) build, installed before the rest; empty: PyPI's default.
TORCH_INDEX_URL ?=
TORCH_VERSION := $(shell grep -E '^torch==' requirements.txt | cut -d= -f3)

# pip would byte-compile every module of every package at install: about half of a fresh install's time here
# (83 s against about 170 s). --no-compile skips that, and Python compiles and caches the modules the lessons
# actually import, the first time they are imported. That cache needs PYTHONDONTWRITEBYTECODE unset: this
# project's machines set it, and with it every notebook kernel recompiled its imports (the suite ran 60% slower).
unexport PYTHONDONTWRITEBYTECODE
# After the install, one process imports what the notebooks import, so the compiled modules are cached once
# rather than compiled by several notebook kernels at the same time.
define WARM_IMPORTS
import torch, torch.onnx, sklearn.linear_model, sklearn.ensemble, scipy.stats, pandas, matplotlib.pyplot, shap
import onnx, onnxruntime, fastapi, uvicorn, httpx, pydantic, opacus, fairlearn.metrics, cleanlab.filter, imblearn
import papermill, ipykernel.kernelapp, nbformat, cryptography, torchao, optuna, peft, art.attacks.evasion
import mlflow, mlflow.sklearn, skops.io, statsmodels.stats.proportion, statsmodels.stats.power
import utils.data, utils.lm, utils.train, utils.serving, utils.compression, utils.checks
endef
export WARM_IMPORTS
PIP := $(BIN)/python -m pip install --disable-pip-version-check -q --no-compile

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	rm -f $(VENV)/.installed-*
	$(if $(TORCH_INDEX_URL),$(PIP) "torch==$(TORCH_VERSION)" --index-url $(TORCH_INDEX_URL))
	$(PIP) -r requirements.txt
	$(PIP) --no-deps -e .
	$(BIN)/python -W ignore -c "$$WARM_IMPORTS" > /dev/null 2>&1 || true
	touch $@

clean:
	rm -rf build .pytest_cache
