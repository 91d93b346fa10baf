# Every target sets up .venv itself (from requirements.txt + the poprisk package), so each works on a fresh clone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NB     ?=
NBVAL  := --nbval-lax --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg

.PHONY: setup book test execute bench clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

setup: $(STAMP)

## book: build the HTML site from the stored notebook outputs (no code is executed)
book: $(STAMP)
	$(BIN)/jupyter-book build . -W -n --keep-going
	@echo "The book is at $(CURDIR)/_build/html/index.html"

## test: unit tests, book checks, site build, and every notebook under nbval in FAST mode
test: $(STAMP)
	POPRISK_FAST=1 POPRISK_PROGRESS=0 $(BIN)/python -m pytest $(NBVAL) tests book

## execute: re-run notebooks top-to-bottom in full mode and store their outputs (NB=book/x.ipynb for one)
execute: $(STAMP)
	$(BIN)/python tools/execute_notebooks.py $(NB)

## bench: every benchmark in bench/
bench: $(STAMP)
	for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf _build student
