"""`make student-site`: the site without solutions or quiz answers, with answer cells and launch buttons to
the student Colab notebooks."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tools import student_site  # noqa: E402


@pytest.fixture(scope="module")
def student_html(built_site, tmp_path_factory):
    out = tmp_path_factory.mktemp("student-site")
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "student_site.py"), "--site", str(built_site[0]),
                           "--out", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return out / "_build" / "html"


def test_no_solution_or_quiz_answer_anywhere(student_html):
    pages = sorted(student_html.glob("book/*.html"))
    sources = sorted((student_html / "_sources").rglob("*.ipynb")) + sorted((student_html / "_sources").rglob("*.md"))
    assert len(pages) >= 10 and sources
    for path in pages + sources:
        text = path.read_text(encoding="utf-8")
        assert 'class="solution' not in text and "{solution" not in text, f"{path.name}: a solution survived"
        assert "{admonition} Answer" not in text and ">Answer</p>" not in text, f"{path.name}: a quiz answer"
    course = (student_html / "book" / "course.html").read_text(encoding="utf-8")
    quiz = course.split('<section id="self-check-quiz">')[1]
    assert "Markov chain" in quiz and "data-processing inequality" not in quiz, "quiz answers on the page"


def test_exercises_answer_cells_and_student_launch_buttons(student_html):
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    url = cfg["repository"]["url"].removeprefix("https://github.com/")
    for nb in sorted((ROOT / "book").glob("ch*.ipynb")):
        page = (student_html / "book" / nb.with_suffix(".html").name).read_text(encoding="utf-8")
        assert 'class="exercise admonition"' in page and "Your answer (Exercise " in page, nb.name
        link = f"https://colab.research.google.com/github/{url}/blob/{student_site.STUDENT_BRANCH}/book/{nb.name}"
        assert link in page, f"{nb.name}: no launch button to the student notebook"


def test_strip_answers():
    text = "Q1?\n\n```{admonition} Answer\n:class: dropdown\nSecret.\n```\n\nQ2?\n"
    assert student_site.strip_answers(text) == "Q1?\n\n\nQ2?\n"


def test_source_tree_checks_its_inputs_before_deleting_anything(tmp_path):
    from tools import student_site

    src = tmp_path / "out" / "src"
    src.mkdir(parents=True)
    (src / "precious.txt").write_text("mine")
    with pytest.raises(SystemExit, match="--site"):
        student_site.source_tree(tmp_path / "no-such-site", src)
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<html></html>")
    with pytest.raises(SystemExit, match="not made by"):  # a folder this tool did not write is kept
        student_site.source_tree(site, src)
    assert (src / "precious.txt").read_text() == "mine"
    link = tmp_path / "out" / "link"
    link.symlink_to(src, target_is_directory=True)
    (src / student_site.MARKER).write_text("")
    with pytest.raises(SystemExit, match="not made by"):  # never through a symlink
        student_site.source_tree(site, link)
    assert (src / "precious.txt").exists()
