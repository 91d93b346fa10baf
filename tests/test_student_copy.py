"""`make student` strips every solution, leaves a stub for every removed computational solution and a "Your
answer" cell after every exercise, all named by the site's exercise numbers ("Exercise 5")."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import nbformat
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tools.colab_notebooks import site_index  # noqa: E402
from tools.student_copy import exercise_names, strip_notebook  # noqa: E402

NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))


@pytest.fixture(scope="module")
def names(built_site):
    return exercise_names(site_index(built_site[0]))


@pytest.fixture(scope="module")
def student_dir(tmp_path_factory, built_site):
    out = tmp_path_factory.mktemp("student")
    subprocess.run([sys.executable, str(ROOT / "tools" / "student_copy.py"), "--out", str(out),
                    "--site", str(built_site[0])], check=True, capture_output=True)
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
def test_every_stub_has_a_solution(path, student_dir, names):
    instructor = nbformat.read(path, as_version=4)
    student = nbformat.read(student_dir / path.name, as_version=4)
    label_of = {name: label for label, name in names.items()}
    shown = re.findall(r'NotImplementedError\("(Exercise \d+):', "\n".join(c.source for c in student.cells))
    every = "".join(c.source for c in student.cells).count("NotImplementedError")
    assert every == len(shown), f"{path.name}: a stub not named by the site's exercise number"
    stubs = [label_of[n] for n in shown]
    text = "\n".join(c.source for c in instructor.cells)
    for label in stubs:
        start = re.search(rf"\{{solution-start\}} {re.escape(label)}\b", text)
        assert start, f"{path.name}: stub for {label} without a gated solution"
    gated_with_code = _gated_labels_with_code(instructor)
    assert sorted(stubs) == sorted(gated_with_code), f"{path.name}: stubs {stubs} vs solutions {gated_with_code}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_a_your_answer_cell_after_every_exercise(path, student_dir, names):
    student = nbformat.read(student_dir / path.name, as_version=4)
    labels = re.findall(r"^:label: (\S+)", "\n".join(c.source for c in student.cells if "{exercise}" in c.source),
                        re.M)
    cells = student.cells
    for i, cell in enumerate(cells):
        if cell.cell_type == "markdown" and "{exercise}" in cell.source:
            label = re.findall(r"^:label: (\S+)", cell.source, re.M)[-1]
            assert cell.source.rstrip().endswith("```"), f"{path.name}: the exercise cell goes on after {label}"
            assert cells[i + 1].source.startswith(f"**Your answer ({names[label]}).**"), \
                f"{path.name}: no answer cell after {label} ({names[label]})"
    assert len(labels) >= 3 and all(re.fullmatch(r"Exercise \d+", names[x]) for x in labels)


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
    out, stubs = strip_notebook(nb, {"e1": "Exercise 7", "e2": "Exercise 8"})
    text = "\n".join(c.source for c in out.cells)
    assert stubs == ["e2"]
    assert 'NotImplementedError("Exercise 8:' in text
    assert [c.source.split(".**")[0] for c in out.cells if c.source.startswith("**Your answer")] == \
        ["**Your answer (Exercise 7)", "**Your answer (Exercise 8)"]
    for secret in ("Secret", "secret_"):
        assert secret not in text
    assert "Do it." in text and "Compute." in text and "Kept after." in text and "kept = 3" in text
    assert text.count("NotImplementedError") == 1


@pytest.mark.parametrize("opening", ["```{exercise}\n:label: ex-a\nText", "```{solution} ex-a\nAnswer",
                                     "```{solution-start} ex-a\n:class: dropdown", "```{solution-end}",
                                     "::::{solution} ex-a\nAnswer\n:::"])
def test_an_unclosed_fence_is_an_error_naming_the_cell(opening):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Title"),
                                         nbformat.v4.new_markdown_cell(f"Before.\n\n{opening}\n\nAfter.")])
    with pytest.raises(ValueError, match="cell 1.*never closed"):
        strip_notebook(nb, None)


def test_an_unended_gated_solution_is_an_error_and_raw_cells_and_attachments_survive():
    start = "```{solution-start} ex-a\n```"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(start), nbformat.v4.new_code_cell("x = 1")])
    with pytest.raises(ValueError, match="never ended"):
        strip_notebook(nb, None)
    md = nbformat.v4.new_markdown_cell("![fig](attachment:a.png)")
    md.attachments = {"a.png": {"image/png": "iVBORw0KGgo="}}
    raw = nbformat.v4.new_raw_cell("\\newpage")
    out, _ = strip_notebook(nbformat.v4.new_notebook(cells=[md, raw]), None)
    assert [c.cell_type for c in out.cells] == ["markdown", "raw"]
    assert out.cells[0].attachments == md.attachments and out.cells[1].source == "\\newpage"
