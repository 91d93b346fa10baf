"""The notebook tools as a class (issue 22, cause "tools drop content"): one strict reader that names the file
and the cell, no import circle between the converters, and the Colab converter's edge cases (a figure path with
spaces, a notebook without prose)."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import nbformat
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tools import timeouts  # noqa: E402
from tools.colab_notebooks import Converter, convert_notebook  # noqa: E402
from tools.notebook_text import read_notebook  # noqa: E402


def _converter():
    return Converter({}, {}, "https://example.org/book/", "https://example.org/raw/", "book/chXX.html")


@pytest.mark.parametrize("text", ["", "{not json", "[1, 2]", '{"cells": 3}', "\udcff".encode("utf-8",
                                                                                         "surrogatepass")])
def test_a_file_that_is_not_a_notebook_is_refused_naming_it(tmp_path, text):
    path = tmp_path / "broken name.ipynb"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ValueError, match="broken name.ipynb"):
        read_notebook(path)


def test_a_malformed_cell_is_refused_naming_the_cell(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# t"), nbformat.v4.new_code_cell("1")])
    raw = json.loads(nbformat.writes(nb))
    raw["cells"][1]["outputs"] = [{"output_type": "no-such-output"}]
    path = tmp_path / "c.ipynb"
    path.write_text(json.dumps(raw))
    with pytest.raises(ValueError, match=r"c\.ipynb: cell 1"):
        read_notebook(path)


def test_a_valid_notebook_is_read_unchanged(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# t"), nbformat.v4.new_code_cell("x = 1")])
    path = tmp_path / "ok.ipynb"
    nbformat.write(nb, path)
    assert [c.source for c in read_notebook(path).cells] == ["# t", "x = 1"]


@pytest.mark.parametrize("module, other", [("tools.student_copy", "tools.colab_notebooks"),
                                           ("tools.colab_notebooks", "tools.student_copy")])
def test_the_converters_do_not_import_each_other(module, other):
    code = f"import sys, {module}; print({other!r} in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=timeouts.child_process())
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "False"


def test_a_figure_path_with_spaces_stays_one_link():
    md = _converter().convert("```{figure} my figures/a plot.png\n:alt: a plot\n\nCaption.\n```")
    assert "my%20figures/a%20plot.png" in md and "my figures/a plot" not in md


def test_a_notebook_without_prose_gets_a_title_and_keeps_its_code():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("y = 2")])
    out = convert_notebook(nb, _converter(), banner="BANNER")
    assert out.cells[0].cell_type == "markdown" and out.cells[0].source.startswith("# chXX")
    assert "BANNER" in out.cells[0].source
    assert [c.source for c in out.cells if c.cell_type == "code"] == ["x = 1", "y = 2"]


def test_an_unknown_directive_is_an_error_naming_the_page():
    with pytest.raises(ValueError, match=r"book/chXX\.html.*no-such"):
        _converter().convert("```{no-such} x\nbody\n```")
