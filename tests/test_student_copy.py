"""`make student` strips every solution and leaves a stub for every removed computational solution."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import nbformat
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tools.student_copy import strip_notebook  # noqa: E402

NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))


@pytest.fixture(scope="module")
def student_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    subprocess.run([sys.executable, str(ROOT / "tools" / "student_copy.py"), "--out", str(out)], check=True,
                   capture_output=True)
    return out


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_solution_survives(path, student_dir):
    nb = nbformat.read(student_dir / path.name, as_version=4)
    text = "\n".join(c.source for c in nb.cells)
    assert "{solution" not in text, f"{path.name}: a solution block survived"
    assert not [c for c in nb.cells if "solution" in c.metadata.get("tags", [])]
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
    # the exercises themselves are all still there
    instructor = nbformat.read(path, as_version=4)
    n_ex = lambda book: len(re.findall(r"\{exercise\}", "\n".join(c.source for c in book.cells)))
    assert n_ex(nb) == n_ex(instructor) >= 3


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_stub_has_a_solution(path, student_dir):
    instructor = nbformat.read(path, as_version=4)
    student = nbformat.read(student_dir / path.name, as_version=4)
    stubs = re.findall(r'NotImplementedError\("Exercise (\S+):', "\n".join(c.source for c in student.cells))
    text = "\n".join(c.source for c in instructor.cells)
    for label in stubs:
        start = re.search(rf"\{{solution-start\}} {re.escape(label)}\b", text)
        assert start, f"{path.name}: stub for {label} without a gated solution"
    gated_with_code = _gated_labels_with_code(instructor)
    assert sorted(stubs) == sorted(gated_with_code), f"{path.name}: stubs {stubs} vs solutions {gated_with_code}"


def _gated_labels_with_code(nb) -> list[str]:
    """Labels of the gated solutions that contain code cells (markers may share a Markdown cell)."""
    labels, current, has_code = [], None, False
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            has_code = has_code or current is not None
            continue
        for line in cell.source.splitlines():
            if "{solution-end}" in line and current is not None:
                if has_code:
                    labels.append(current)
                current = None
            m = re.search(r"\{solution-start\} (\S+)", line)
            if m:
                current, has_code = m.group(1), False
    return labels


def test_strip_on_a_synthetic_notebook():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("```{exercise}\n:label: e1\nDo it.\n```\n```{solution} e1\n:class: dropdown\nSecret A\n```"),
        nbformat.v4.new_markdown_cell("```{exercise}\n:label: e2\nCompute.\n```\n```{solution-start} e2\n:class: dropdown\n```\nSecret B"),
        nbformat.v4.new_code_cell("secret_c = 1", metadata={"tags": ["solution"]}),
        nbformat.v4.new_code_cell("secret_d = 2"),
        nbformat.v4.new_markdown_cell("Secret E\n```{solution-end}\n```\nKept after."),
        nbformat.v4.new_code_cell("kept = 3"),
    ])
    out, stubs = strip_notebook(nb)
    text = "\n".join(c.source for c in out.cells)
    assert stubs == ["e2"]
    for secret in ("Secret", "secret_"):
        assert secret not in text
    assert "Do it." in text and "Compute." in text and "Kept after." in text and "kept = 3" in text
    assert text.count("NotImplementedError") == 1
