# Every target sets up .venv itself (from requirements.txt + the poprisk package), so each works on a fresh clone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NB     ?=
TEX_PACKAGES := texlive-latex-recommended texlive-latex-extra texlive-fonts-recommended texlive-plain-generic \
                texlive-xetex xindy fonts-freefont-otf latexmk lmodern tex-gyre poppler-utils
# VERSION and NB reach the recipes through the environment and are used as "$$VERSION" / "$$NB": the shell
# expands a quoted variable as one word and never parses its value as commands (no `;`, `$(...)`, quotes).
# `$(value ...)` with `:=` keeps make itself from expanding the text (VERSION='$(shell ...)' stays text).
override VERSION := $(value VERSION)
override NB := $(value NB)
export VERSION NB MUTATE_ARGS
NBVAL  := --nbval-lax --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg

.PHONY: setup book test execute bench student pdf pdf-check chromium clean colab student-site answer-key release stamp \
        colab-env device-path gpu-check gpu-check-dry gpu-wheels timings-fast test-mutations fashion-mnist test-quick test-portable

# One shell, so that the venv's install time can be printed (README "Timings"); `set -x` shows each command.
$(STAMP): requirements.txt pyproject.toml
	@t0=$$(date +%s); set -ex; \
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV); \
	$(BIN)/python -m pip install -q -r requirements.txt; \
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .; \
	touch $(STAMP); { set +x; } 2>/dev/null; echo "phase time: venv $$(( $$(date +%s) - t0 )) s"

setup: $(STAMP)

## book: build the HTML site from the stored notebook outputs (no code is executed)
book: $(STAMP) fashion-mnist
	$(BIN)/jupyter-book build . -W -n --keep-going
	@echo "The book is at $(CURDIR)/_build/html/index.html"

## test: unit tests, book checks, site build, real-browser check, and every notebook under nbval in FAST mode;
## at the end, the time of each phase (tests/conftest.py) and the ten slowest tests
test: $(STAMP) chromium fashion-mnist
	POPRISK_FAST=1 POPRISK_PROGRESS=0 $(BIN)/python -m pytest $(NBVAL) --phase-times --durations=10 tests book

## test-quick: the edit-test loop: library tests on two processes, then every notebook in FAST mode (no site
## build, browser, PDF or Colab render)
QUICK_SKIP := --ignore=tests/test_browser.py --ignore=tests/test_site.py --ignore=tests/test_pdf.py \
              --ignore=tests/test_colab_render.py --ignore=tests/test_colab_notebooks.py \
              --ignore=tests/test_student_site.py --ignore=tests/test_colab_env.py
test-quick: $(STAMP) fashion-mnist
	POPRISK_FAST=1 POPRISK_PROGRESS=0 $(BIN)/python -m pytest -q -n 2 --dist loadfile $(QUICK_SKIP) tests
	POPRISK_FAST=1 POPRISK_PROGRESS=0 $(BIN)/python -m pytest -q $(NBVAL) --phase-times book

## test-portable: every chapter in FAST mode under nbval in two numerically different set-ups (generic ATen
## kernels on one thread; the native kernels on two threads); a checked output that differs fails either run
PORTABLE_A := ATEN_CPU_CAPABILITY=default OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 POPRISK_THREADS=1
PORTABLE_B := OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 MKL_NUM_THREADS=2 POPRISK_THREADS=2
test-portable: $(STAMP) fashion-mnist
	$(PORTABLE_A) POPRISK_FAST=1 POPRISK_PROGRESS=0 $(BIN)/python -m pytest -q $(NBVAL) book
	$(PORTABLE_B) POPRISK_FAST=1 POPRISK_PROGRESS=0 $(BIN)/python -m pytest -q $(NBVAL) book

## test-mutations: every break listed in tools/mutations/*.toml must fail a unit test or a FAST check cell
## (not part of `make test`; MUTATE_ARGS="--only ID" or "--jobs 2" pass options to tools/mutate.py)
test-mutations: $(STAMP)
	$(BIN)/python tools/mutate.py $${MUTATE_ARGS:-}

## execute: re-run notebooks top-to-bottom in full mode and store their outputs (NB=book/x.ipynb for one)
execute: $(STAMP) fashion-mnist
	$(BIN)/python tools/execute_notebooks.py $${NB:+"$$NB"}

## bench: every benchmark in bench/
bench: $(STAMP)
	$(BIN)/python -m pip install -q -r bench/requirements.txt
	# BackPACK without its declared torchvision requirement, which would replace the CPU torch build.
	$(BIN)/python -m pip install -q --no-deps backpack-for-pytorch==1.7.1
	for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

## student: the student copy (no solutions) of every notebook, in student/
student: book
	$(BIN)/python tools/student_copy.py --out student --site _build/html

## colab: Colab notebooks generated from the chapters (_build/colab/book/*.ipynb, students' in _build/colab-student)
colab: book
	$(BIN)/python tools/colab_notebooks.py --site _build/html --out _build/colab
	$(BIN)/python tools/colab_notebooks.py --site _build/html --out _build/colab-student --student

## student-site: the site without solutions or quiz answers, launch buttons to the student notebooks
student-site: book
	$(BIN)/python tools/student_site.py --site _build/html --out _build/student-site

## answer-key: the instructor's PDF (the whole book with every solution and quiz answer)
answer-key: pdf
	mkdir -p _build/answer-key && cp _build/latex/poprisk-book.pdf _build/answer-key/poprisk-answer-key.pdf
	@echo "The answer key is at $(CURDIR)/_build/answer-key/poprisk-answer-key.pdf"

## release: VERSION=x.y.z sets the version, stamps the notebooks, CHANGELOG and CITATION.cff, commits and tags
release: $(STAMP)
	@test -n "$$VERSION" || { echo "usage: make release VERSION=x.y.z"; exit 2; }
	$(BIN)/python tools/release.py release "$$VERSION"

## stamp: pin every bootstrap cell to v<version> and set Colab GPU metadata (no commit, no tag)
stamp: $(STAMP)
	$(BIN)/python tools/release.py stamp

## colab-env: Python 3.12 venv with pyproject's loose ranges, poprisk via git+file://...@tag, ch01 + ch09 in FAST
PY312  ?= $(firstword $(wildcard /root/.pyenv/versions/3.12*/bin/python) python3.12)
colab-env: $(STAMP)
	POPRISK_COLAB_ENV=1 POPRISK_PY312=$(PY312) $(BIN)/python -m pytest -q tests/test_colab_env.py

## device-path: every notebook in FAST mode on the pretend accelerator (tests/device_guard.py)
device-path: $(STAMP)
	if [ -n "$$NB" ]; then $(BIN)/python tests/device_guard.py "$$NB"; else $(BIN)/python tests/device_guard.py book/ch*.ipynb; fi

## gpu-check: tools/gpu_check.sh on a CUDA machine with its own python3 (no .venv; see the script's header for
## the device machine: `make gpu-wheels` here first); gpu-check-dry: its CPU dry run
gpu-check:
	tools/gpu_check.sh
gpu-wheels: $(STAMP)
	$(BIN)/python tools/gpu_wheels.py
gpu-check-dry: $(STAMP)
	POPRISK_GPU_CHECK=1 $(BIN)/python -m pytest -q tests/test_gpu_check.py

## timings-fast: time every chapter in FAST mode (recorded for the runtime banners; outputs untouched)
timings-fast: $(STAMP)
	POPRISK_FAST=1 $(BIN)/python tools/execute_notebooks.py $${NB:+"$$NB"}

## pdf: the whole book as a PDF through LaTeX (installs Debian's TeX Live packages if missing)
pdf: $(STAMP)
	@command -v latexmk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	  --no-install-recommends $(TEX_PACKAGES); }
	$(BIN)/jupyter-book build . --builder pdflatex
	@echo "The PDF is at $(CURDIR)/_build/latex/poprisk-book.pdf"

## pdf-check: `make pdf`, then check its LaTeX log (undefined references, control sequences) and structure
pdf-check: pdf
	POPRISK_PDF_BUILT=1 $(BIN)/python -m pytest -q tests/test_pdf.py

# The browser check drives Debian's Chromium (Playwright's own browser download would need the network).
chromium:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# Chapter 9b reads Fashion-MNIST offline from Debian's package (poprisk.data.load_dataset("fashion_mnist")).
fashion-mnist:
	@test -f /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist; }

clean:
	rm -rf _build student
