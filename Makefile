# Every target sets up .venv itself (from requirements.txt + the poprisk package), so each works on a fresh clone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NB     ?=
TEX_PACKAGES := texlive-latex-recommended texlive-latex-extra texlive-fonts-recommended texlive-plain-generic \
                texlive-xetex xindy fonts-freefont-otf latexmk lmodern tex-gyre
NBVAL  := --nbval-lax --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg

.PHONY: setup book test execute bench student pdf chromium clean

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

## test: unit tests, book checks, site build, real-browser check, and every notebook under nbval in FAST mode
test: $(STAMP) chromium
	POPRISK_FAST=1 POPRISK_PROGRESS=0 $(BIN)/python -m pytest $(NBVAL) tests book

## execute: re-run notebooks top-to-bottom in full mode and store their outputs (NB=book/x.ipynb for one)
execute: $(STAMP)
	$(BIN)/python tools/execute_notebooks.py $(NB)

## bench: every benchmark in bench/
bench: $(STAMP)
	for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

## student: the student copy (no solutions) of every notebook, in student/
student: $(STAMP)
	$(BIN)/python tools/student_copy.py --out student

## pdf: the whole book as a PDF through LaTeX (installs Debian's TeX Live packages if missing)
pdf: $(STAMP)
	@command -v latexmk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	  --no-install-recommends $(TEX_PACKAGES); }
	$(BIN)/jupyter-book build . --builder pdflatex
	@echo "The PDF is at $(CURDIR)/_build/latex/poprisk-book.pdf"

# The browser check drives Debian's Chromium (Playwright's own browser download would need the network).
chromium:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

clean:
	rm -rf _build student
