"""What the notebook tools share (``tools/colab_notebooks.py``, ``tools/student_copy.py``,
``tools/student_site.py``): reading a chapter notebook strictly, and the index of the built site that numbers
theorems, figures and exercises as the site does. Both sides import this module, never each other.
"""

from __future__ import annotations

import html
import json
import pathlib
import re
from dataclasses import dataclass

import nbformat


@dataclass(frozen=True)
class Target:
    page: str  # site path of the page, e.g. "book/ch02_generalization_mi.html"
    anchor: str
    text: str  # what the site shows for a reference to it: "Theorem 2", "Exercise 5", a section title


def read_notebook(path) -> nbformat.NotebookNode:
    """The notebook at ``path`` (format 4), or ``ValueError`` naming the file — and the cell, where the
    damage is in one — for a file that is not JSON, not a notebook, or not valid against nbformat's schema
    (a tool must refuse it rather than convert part of it and drop the rest)."""
    path = pathlib.Path(path)
    try:
        nb = nbformat.read(path, as_version=4)
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a readable Jupyter notebook ({type(exc).__name__}: {exc})") from None
    try:
        nbformat.validate(nb)
    except nbformat.ValidationError as exc:
        where = list(exc.absolute_path)
        cell = f"cell {where[1]}" if len(where) > 1 and where[0] == "cells" else "notebook metadata"
        raise ValueError(f"{path}: {cell} is malformed: {exc.message}") from None
    return nb


def plain(fragment: str) -> str:
    """An HTML fragment as plain text (tags removed, entities decoded)."""
    return html.unescape(re.sub(r"<[^>]+>", "", fragment)).strip()


def site_index(html_dir: pathlib.Path) -> dict[str, Target]:
    """Every anchor of the built site with the text a reference to it shows (numbers for numbered things)."""
    html_dir = pathlib.Path(html_dir)
    pages = sorted(html_dir.glob("book/*.html"))
    if not pages:
        raise FileNotFoundError(f"no built site under {html_dir} (run `make book` first)")
    index: dict[str, Target] = {}
    for page in pages:
        text = page.read_text(encoding="utf-8")
        rel = page.relative_to(html_dir).as_posix()
        title = re.search(r"<h1>(.*?)<a class=\"headerlink\"", text, re.S)
        index[f"doc:{rel[:-5]}"] = Target(rel, "", plain(title.group(1)) if title else rel)
        ids = list(re.finditer(r'\bid="([^"]+)"', text))
        for i, m in enumerate(ids):
            stop = ids[i + 1].start() if i + 1 < len(ids) else len(text)
            after = text[m.end(): min(stop, m.end() + 3000)]
            number = re.search(r'<span class="caption-number">([^<]*?)\s*</span>', after)
            heading = re.match(r'[^<]*>\s*(?:</span>\s*)?(?:<span[^>]*></span>\s*)*<h[1-6]>(.*?)<a class="headerlink"',
                               after, re.S)
            eqno = re.search(r'<span class="eqno">\((\d+)\)', after)
            if number:
                shown = number.group(1).strip()
            elif m.group(1).startswith("equation-") and eqno:
                shown = f"({eqno.group(1)})"
            elif heading:
                shown = plain(heading.group(1))
            else:
                continue
            index.setdefault(m.group(1), Target(rel, m.group(1), shown))
    return index


def exercise_names(index) -> dict[str, str]:
    """``{exercise label: "Exercise 5"}`` from a site index (:func:`site_index`)."""
    return {label: t.text for label, t in index.items() if t.text.startswith("Exercise ")}
