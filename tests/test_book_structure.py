"""Checks of the book itself: TOC ↔ files, notebooks stored executed in order, Colab bootstrap cells, config."""

from __future__ import annotations

import pathlib
import re
import sys

import nbformat
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tools.execute_notebooks import toc_files  # noqa: E402  (the one TOC reader, shared with make execute)

BOOK = ROOT / "book"
NOTEBOOKS = sorted(BOOK.rglob("*.ipynb"))
CHECK_TAG = "nbval-check-output"  # nbval compares the outputs of cells with this tag


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]


def test_there_are_notebooks():
    assert NOTEBOOKS, "no chapter notebooks under book/"


def test_every_toc_entry_exists():
    missing = [f for f in toc_files() if not any((ROOT / f"{f}{ext}").exists() for ext in (".md", ".ipynb"))]
    assert not missing, f"_toc.yml names files that do not exist: {missing}"


def test_every_notebook_is_in_the_toc():
    listed = set(toc_files())
    orphans = [str(p.relative_to(ROOT)) for p in NOTEBOOKS if str(p.relative_to(ROOT).with_suffix("")) not in listed]
    assert not orphans, f"notebooks missing from _toc.yml: {orphans}"


def test_toc_has_no_duplicates():
    files = toc_files()
    assert len(files) == len(set(files)), f"duplicate TOC entries: {sorted({f for f in files if files.count(f) > 1})}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_stored_executed_in_order(path):
    nb = nbformat.read(path, as_version=4)
    counts = [c.execution_count for c in code_cells(nb)]
    assert None not in counts, f"{path.name}: {counts.count(None)} code cell(s) never ran"
    assert counts == list(range(1, len(counts) + 1)), \
        f"{path.name}: cells not run top-to-bottom in one session: {counts}"
    errors = [o for c in code_cells(nb) for o in c.outputs if o.output_type == "error"]
    assert not errors, f"{path.name}: stored outputs contain errors: {[e.ename for e in errors]}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_colab_bootstrap_cell(path, config):
    nb = nbformat.read(path, as_version=4)
    first = code_cells(nb)[0]
    url = config["repository"]["url"].rstrip("/")
    assert "google.colab" in first.source, f"{path.name}: first code cell is not the Colab bootstrap"
    # the pinned ref itself is checked by tests/test_colab_bootstrap.py
    assert f"git+{url}@" in first.source, f"{path.name}: bootstrap cell does not install from {url}"
    assert "remove-cell" in first.metadata.get("tags", []), f"{path.name}: bootstrap cell is not hidden"
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_chapter_has_objectives_summary_exercises(path):
    nb = nbformat.read(path, as_version=4)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert re.search(r"^## Learning objectives", text, re.M), f"{path.name}: no objectives section"
    assert re.search(r"^## Summary", text, re.M), f"{path.name}: no summary"
    exercises = re.findall(r"```\{exercise\}", text)
    assert len(exercises) >= 3, f"{path.name}: {len(exercises)} exercises, at least 3 expected"
    labels = re.findall(r"```\{exercise\}\s*\n:label: (\S+)", text)
    for label in labels:
        assert re.search(rf"```\{{solution(-start)?\}} {re.escape(label)}\b", text), \
            f"{path.name}: exercise {label} has no solution"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_chapter_has_checked_cells(path):
    nb = nbformat.read(path, as_version=4)
    checked = [c for c in code_cells(nb) if CHECK_TAG in c.metadata.get("tags", [])]
    assert checked, f"{path.name}: no nbval-checked cell"
    assert all(c.outputs for c in checked), f"{path.name}: a checked cell has no stored output to compare"
    marked = [c for c in code_cells(nb) if "NBVAL_CHECK_OUTPUT" in c.source]
    assert not marked, f"{path.name}: use the {CHECK_TAG!r} cell tag, not a visible comment marker"


def test_config_is_complete(config):
    assert config["execute"]["execute_notebooks"] == "off"
    assert isinstance(config["repository"]["branch"], str) and config["repository"]["branch"]
    assert config["repository"]["url"].startswith("https://github.com/")
    assert "path_to_book" in config["repository"]
    assert config["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert config.get("copyright")
    for ext in ("sphinx_proof", "sphinx_exercise", "sphinx_togglebutton"):
        assert ext in config["sphinx"]["extra_extensions"]
    assert {"dollarmath", "amsmath"} <= set(config["parse"]["myst_enable_extensions"])


def test_status_page_lists_every_notebook():
    page = (BOOK / "status.md").read_text()
    missing = [p.stem for p in NOTEBOOKS if f"({p.stem}.ipynb)" not in page]
    assert not missing, f"book/status.md has no stored-run timing for {missing}: run `make execute`"
