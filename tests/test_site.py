"""The site builds with zero warnings (-W -n) and every page links where it should."""

from __future__ import annotations

import re


def test_site_builds_without_warnings(built_site):
    html, log = built_site
    assert (html / "index.html").exists()
    warnings = [line for line in log.splitlines() if "WARNING" in line or "ERROR" in line]
    assert not warnings, "build warnings:\n" + "\n".join(warnings[:20])


def test_notebook_pages_have_colab_links(built_site, config, root):
    html, _ = built_site
    url = config["repository"]["url"].rstrip("/").removeprefix("https://github.com/")
    for nb in sorted((root / "book").glob("*.ipynb")):
        page = (html / "book" / f"{nb.stem}.html").read_text()
        target = f"https://colab.research.google.com/github/{url}/blob/main/book/{nb.name}"
        assert target in page, f"{nb.name}: Colab launch link to {target} missing"


def test_citations_and_references_resolve(built_site):
    html, _ = built_site
    references = (html / "book" / "references.html").read_text()
    assert "Population Risk Improvement with Model Compression" in references
    intro = (html / "book" / "intro.html").read_text()
    assert "references.html#id" in intro, "citations of the introduction do not link to the bibliography"
