"""The generated Colab notebooks (``make colab``): no MyST directive, role or solution survives, every formula of
the chapter is kept, numbers are the site's, links are absolute, and the launch buttons open these notebooks."""

from __future__ import annotations

import pathlib
import re
import sys

import nbformat
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tools import colab_notebooks as cn  # noqa: E402
from tools import notebook_text  # noqa: E402
from tools.student_copy import strip_notebook  # noqa: E402

NOTEBOOKS = sorted((ROOT / "book").glob("ch*.ipynb"))
DIRECTIVE = re.compile(r"^\s*>?\s*(`{3,}|:{3,})\{", re.M)
MATH = re.compile(r"\$\$(.+?)\$\$|(?<![\\$])\$([^$\n]+?)\$", re.S)


@pytest.fixture(scope="module")
def colab(built_site, tmp_path_factory):
    html, _ = built_site
    out = tmp_path_factory.mktemp("colab")
    cn.build(html, out / "book-variant")
    cn.build(html, out / "student-variant", student=True)
    return html, out


def markdown(nb) -> str:
    return "\n\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


def unquote(text: str) -> str:
    return "\n".join(re.sub(r"^(>\s?)+", "", line) for line in text.splitlines())


def squash(s: str) -> str:
    return re.sub(r"\s+", "", s)


@pytest.mark.parametrize("variant", ["book-variant", "student-variant"])
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_myst_left_and_every_formula_kept(colab, path, variant):
    _, out = colab
    nb = nbformat.read(out / variant / "book" / path.name, as_version=4)
    text = markdown(nb)
    assert not DIRECTIVE.search(text), f"{path.name}: a MyST directive fence survived"
    assert not cn.ROLE.search(text), f"{path.name}: a MyST role survived: {cn.ROLE.search(text).group(0)}"
    assert "{solution" not in text
    assert not [c for c in nb.cells if "solution" in c.metadata.get("tags", [])]
    # every formula of the chapter (solutions aside) is still there, character for character
    source, _ = strip_notebook(nbformat.read(path, as_version=4), answer_cells=False)
    plain = squash(unquote(text))
    for m in MATH.finditer(markdown(source)):
        formula = m.group(1) or m.group(2)
        assert squash(formula) in plain, f"{path.name}: formula lost: {formula[:80]!r}"
    links = re.findall(r"\]\(([^)]+)\)", text)
    assert all(re.match(r"https?://", url) for url in links), f"{path.name}: relative link in {links}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_solutions_are_gone_and_exercises_kept(colab, path):
    _, out = colab
    text = markdown(nbformat.read(out / "book-variant" / "book" / path.name, as_version=4))
    src = nbformat.read(path, as_version=4)
    body = "\n".join(c.source for c in src.cells if c.cell_type == "markdown")
    secrets = [line.strip() for block in re.findall(r"```\{solution\}[^\n]*\n(.*?)\n```", body, re.S)
               for line in block.splitlines() if len(line.strip()) > 50 and not line.startswith(":")]
    code = "\n".join(c.source for c in nbformat.read(out / "book-variant" / "book" / path.name, 4).cells)
    for cell in src.cells:
        if "solution" in cell.metadata.get("tags", []) and len(cell.source) > 30:
            assert cell.source not in code, f"{path.name}: a solution code cell survived"
    for line in secrets:
        assert line not in text, f"{path.name}: solution text survived: {line[:60]!r}"
    assert text.count("**Exercise ") == body.count("{exercise}") >= 3


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_numbers_match_the_site(colab, path):
    html, out = colab
    page = (html / "book" / path.with_suffix(".html").name).read_text()
    site = [n.strip() for n in re.findall(r'class="proof [^"]*admonition"[^>]*>\s*<p class="admonition-title">'
                                          r'<span class="caption-number">([^<]+)</span>', page)]
    site += [n.strip() for n in re.findall(r'class="exercise admonition"[^>]*>\s*<p class="admonition-title">'
                                           r'<span class="caption-number">([^<]+)</span>', page)]
    text = markdown(nbformat.read(out / "book-variant" / "book" / path.name, as_version=4))
    ours = re.findall(r"^> \*\*((?:[A-Z][a-z]+) \d+)", text, re.M)
    assert sorted(ours) == sorted(site) and site, f"{path.name}: {ours} vs the site's {site}"


def test_launch_buttons_open_the_generated_notebooks(colab, config):
    html, out = colab
    owner, name = cn.repository_parts(config)
    branch = config["repository"]["branch"]
    assert branch != "main", "the launch buttons must open the generated notebooks, not the MyST sources"
    for path in NOTEBOOKS:
        page = (html / "book" / path.with_suffix(".html").name).read_text()
        link = f"https://colab.research.google.com/github/{owner}/{name}/blob/{branch}/book/{path.name}"
        assert link in page, f"{path.name}: no launch button to {link}"
        assert (out / "book-variant" / "book" / path.name).exists()


def test_runtime_banner_under_the_title(colab):
    _, out = colab
    for path in NOTEBOOKS:
        first = next(c for c in nbformat.read(out / "book-variant" / "book" / path.name, 4).cells
                     if c.cell_type == "markdown").source.splitlines()
        assert first[0].startswith("# ") and first[2] == cn.BANNER_MARK and "Runtime:" in first[3]


def converter():
    index = {"ch-thm": cn.Target("book/ch02.html", "ch-thm", "Theorem 3"),
             "ch-ex": cn.Target("book/ch02.html", "ch-ex", "Exercise 5"),
             "doc:book/notation": cn.Target("book/notation.html", "", "Notation")}
    bib = {"xu2017": ("Xu & Raginsky", "2017"), "bu2021": ("Bu et al.", "2021")}
    return cn.Converter(index, bib, "https://o.github.io/r/", "https://raw/o/r/v1/", "book/ch02.html")


def test_converter_on_synthetic_myst():
    src = "\n".join([
        "(sec-a)=", "% a comment", "See {prf:ref}`ch-thm`, {ref}`the exercise <ch-ex>`, {doc}`notation`.",
        "As shown {cite}`xu2017,bu2021`; {cite:t}`xu2017` proved it. Also [notes](notation.md#sym).",
        "````{prf:theorem} Main result", ":label: ch-thm", "", "If $a \\le b$ then", "", "$$", "x^2", "$$",
        "```python", "x = 1", "```", "````",
        "```{prf:proof}", "Obvious: $b - a \\ge 0$.", "```",
        "```{exercise}", ":label: ch-ex", "Do $1+1$.", "```",
        "```{solution} ch-ex", ":class: dropdown", "It is 2.", "```",
    ])
    out = converter().convert(src)
    assert "(sec-a)=" not in out and "a comment" not in out
    assert "[Theorem 3](https://o.github.io/r/book/ch02.html#ch-thm)" in out
    assert "[the exercise](https://o.github.io/r/book/ch02.html#ch-ex)" in out
    assert "[Notation](https://o.github.io/r/book/notation.html)" in out
    assert "(Xu & Raginsky, 2017; Bu et al., 2021)" in out and "Xu & Raginsky (2017) proved" in out
    assert "[notes](https://o.github.io/r/book/notation.html#sym)" in out
    assert "> **Theorem 3 (Main result).**" in out and "> If $a \\le b$ then" in out and "> $$ x^2 $$" in out
    assert "> ```python" in out, "code blocks inside a directive stay code blocks"
    assert "> **Proof.**" in out and "> ∎" in out and "> Obvious: $b - a \\ge 0$." in out
    assert "> **Exercise 5.**" in out and "It is 2." not in out


def test_formulas_never_break_across_lines():
    src = "\n".join(["Gaps $g(\\cdot) =", "L(\\cdot)$ and $c$.", "```{prf:proof}", "So $x_1 +", "y_2$ and",
                     "$$", "a \\\\", "b", "$$", "```"])
    out = converter().convert(src)
    assert "Gaps $g(\\cdot) = L(\\cdot)$ and $c$." in out
    assert "> So $x_1 + y_2$ and" in out and "> $$ a \\\\ b $$" in out
    with pytest.raises(ValueError, match="TeX comment"):
        converter().convert("```{prf:proof}\n$$\na % note\n$$\n```")


def test_citation_after_the_authors_names_gives_the_year():
    out = converter().convert("Bu et al. {cite}`bu2021` and Xu and Raginsky\n{cite}`xu2017`; see {cite}`bu2021`.")
    assert out == "Bu et al. (2021) and Xu and Raginsky\n(2017); see (Bu et al., 2021)."


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_formula_spans_a_line_and_captions_and_bootstrap_in_place(colab, path):
    _, out = colab
    nb = nbformat.read(out / "book-variant" / "book" / path.name, as_version=4)
    text = markdown(nb)
    for line in text.splitlines():
        assert not cn._open_inline_math(line), f"{path.name}: a formula wraps: {line[:80]!r}"
        assert not re.match(r"^>\s*\$\$\s*$", line), f"{path.name}: a quoted display over several lines"
    figures = [i for i, c in enumerate(nb.cells) if c.metadata.get("mystnb", {}).get("figure", {}).get("caption")]
    source = nbformat.read(path, as_version=4)
    drawn = sum("image/png" in o.get("data", {}) for c in source.cells if c.cell_type == "code"
                for o in c.get("outputs", []))
    assert len(figures) >= min(drawn, 1), f"{path.name}: {drawn} figures, none captioned in the Colab notebook"
    for i in figures:
        caption = nb.cells[i + 1]
        assert caption.cell_type == "markdown" and re.match(r"\*\*Fig\. \d+\.\*\* \S", caption.source), \
            f"{path.name}: no numbered caption under the figure of cell {i}"
    for cell in nb.cells:
        if "hide-input" in cell.metadata.get("tags", []):
            assert cell.metadata["cellView"] == "form" and cell.metadata["jupyter"]["source_hidden"]
    kinds = [c.cell_type for c in nb.cells[:3]]
    assert kinds == ["markdown", "markdown", "code"] and "google.colab" in nb.cells[2].source, \
        f"{path.name}: the bootstrap is not right after the title and its note"
    assert nb.cells[1].source == cn.BOOTSTRAP_NOTE
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    stub = next((i for i, c in enumerate(code) if "NotImplementedError" in c), len(code))
    assert all("NotImplementedError" in c for c in code[stub:]), \
        f"{path.name}: chapter code after an exercise stub: the note says Run all has run the chapter by then"


@pytest.mark.parametrize("bad, error", [
    ("```{mystery}\nx\n```", ValueError), ("{unknownrole}`x`", ValueError), ("{prf:ref}`nowhere`", KeyError),
    ("{cite}`nokey`", KeyError), ("```{prf:lemma}\n:label: missing\nx\n```", KeyError),
    ("```{prf:lemma}\nunclosed", ValueError),
])
def test_converter_refuses_what_it_cannot_render(bad, error):
    with pytest.raises(error):
        converter().convert(bad)


def test_site_shows_the_runtime_banner_under_each_chapter_title(built_site):
    html, _ = built_site
    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    import json

    from runtime_banner import banner_text

    status = json.loads((ROOT / "book" / "execution_status.json").read_text())["notebooks"]
    for path in NOTEBOOKS:
        page = (html / "book" / path.with_suffix(".html").name).read_text(encoding="utf-8")
        m = re.search(r'</h1>\s*<p class="runtime-banner"><em>(.*?)</em></p>', page, re.S)
        assert m, f"{path.name}: no runtime banner right under the title"
        gpu = nbformat.read(path, as_version=4).metadata.get("accelerator") == "GPU"
        expected = banner_text(status.get(f"book/{path.name}"), gpu)
        assert notebook_text.plain(m.group(1)) == expected


def test_banner_text():
    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    from runtime_banner import banner_text

    entry = {"seconds": 189.7, "fast_seconds": 41.2, "device": "CPU (x86_64, 2 cores)"}
    text = banner_text(entry, gpu=True)
    assert text == "Runtime: CPU is fine (no GPU needed). CPU, full run: 3 min 10 s; FAST mode: 41 s."
    assert "GPU" not in text.replace("no GPU needed", "")  # no GPU claim before a GPU time exists
    text = banner_text({**entry, "gpu": {"seconds": 20.0, "fast_seconds": 9.6, "device": "NVIDIA H200"}}, gpu=True)
    assert text.startswith("Runtime: CPU or GPU.") and "GPU (NVIDIA H200), full run: 20 s; FAST mode: 10 s." in text
    assert banner_text(None, gpu=False) == "Runtime: CPU is fine (no GPU needed). Run time: not measured yet."
