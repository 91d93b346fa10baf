"""The site builds with zero warnings (-W -n), every page links where it should, citations read the same in
the text and in the bibliography, and figures are numbered."""

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
        target = f"https://colab.research.google.com/github/{url}/blob/{config['repository']['branch']}/book/{nb.name}"
        assert target in page, f"{nb.name}: Colab launch link to {target} missing"


def test_citations_and_references_resolve(built_site):
    html, _ = built_site
    references = (html / "book" / "references.html").read_text()
    assert "Population Risk Improvement with Model Compression" in references
    intro = (html / "book" / "intro.html").read_text()
    assert "references.html#id" in intro, "citations of the introduction do not link to the bibliography"


def test_citations_read_like_the_bibliography(built_site):
    """The text shows the bibliography's own labels ([BGZV21] both places), and every citation resolves."""
    html, _ = built_site
    refs = (html / "book" / "references.html").read_text()
    labels = dict(re.findall(r'<div class="citation" id="(id\d+)"[^>]*>\s*<span class="label">'
                             r'<span class="fn-bracket">\[</span>([^<]+)<', refs))
    assert labels, "no bibliography entries with labels on the references page"
    mismatched, cited = [], 0
    for page in sorted((html / "book").glob("*.html")):
        for target, text in re.findall(r'href="references\.html#(id\d+)"[^>]*>([^<]+)</a>', page.read_text()):
            cited += 1
            if labels.get(target) != text:
                mismatched.append((page.name, text, labels.get(target)))
    assert cited > 10, f"only {cited} citations found on the site"
    assert not mismatched, f"citation text differs from the bibliography label (page, text, label): {mismatched[:5]}"


def test_figures_are_numbered(built_site):
    html, _ = built_site
    pages = {p.name: p.read_text() for p in sorted((html / "book").glob("ch*.html"))}
    figures = {name: len(re.findall(r"<figure", text)) for name, text in pages.items()}
    numbered = {name: len(re.findall(r'<span class="caption-number">Fig\. \d+', text)) for name, text in pages.items()}
    assert sum(figures.values()) > 0, "no <figure> on any chapter page (myst-nb figure metadata missing?)"
    unnumbered = {n: (figures[n], numbered[n]) for n in pages if numbered[n] < figures[n]}
    assert not unnumbered, f"figures without a number (page: figures, numbered): {unnumbered}"
