"""The generated Colab notebooks (``make colab``) rendered the way a notebook front end renders Markdown: marked
(GitHub-flavoured Markdown) with marked-katex-extension and KaTeX, in Chromium. Colab cannot be run offline;
this is the strictest common renderer (inline math may not span a line, as in Colab's and marked's math
extensions). Every formula of every notebook must typeset: no KaTeX error, no ``$`` left in the text, and
as many typeset formulas as the Markdown has. The scripts are vendored in ``tests/vendor`` (MIT).
"""

from __future__ import annotations

import json
import pathlib
import re
import shutil
import sys

import nbformat
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tools import colab_notebooks as cn  # noqa: E402

VENDOR = ROOT / "tests" / "vendor"
SCRIPTS = [VENDOR / "katex" / "katex.min.js", VENDOR / "marked" / "marked.umd.js",
           VENDOR / "marked-katex-extension" / "index.umd.js"]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NOTEBOOKS = sorted((ROOT / "book").glob("ch*.ipynb"))
# what the renderer should typeset: $$…$$ and $…$ (not \$), outside code spans and fences
MATH = re.compile(r"\$\$.+?\$\$|(?<![\\$])\$(?!\$)[^$\n]+?(?<!\\)\$", re.S)
CODE = re.compile(r"^\s*(?:>\s*)*(`{3,}|~{3,}).*?^\s*(?:>\s*)*\1\s*$|`[^`\n]+`", re.S | re.M)

RENDER_JS = """(cells) => {
  marked.use(markedKatex({throwOnError: false, nonStandard: true}));
  return cells.map((source) => {
    const div = document.createElement('div');
    div.innerHTML = marked.parse(source);
    document.body.appendChild(div);
    const errors = [...div.querySelectorAll('.katex-error')].map((e) => e.textContent.slice(0, 80));
    const left = [];
    const walk = document.createTreeWalker(div, NodeFilter.SHOW_TEXT);
    for (let n = walk.nextNode(); n; n = walk.nextNode()) {
      if (n.textContent.includes('$') && !n.parentElement.closest('code, pre, .katex')) {
        left.push(n.textContent.slice(0, 80));
      }
    }
    return {errors, left, formulas: div.querySelectorAll('.katex').length};
  });
}"""


@pytest.fixture(scope="module")
def colab(built_site, tmp_path_factory):
    html, _ = built_site
    out = tmp_path_factory.mktemp("colab-render")
    cn.build(html, out)
    return out


@pytest.fixture(scope="module")
def page():
    if CHROMIUM is None:
        pytest.fail("Chromium is not installed: `make test` installs Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield browser.new_page()
        browser.close()


def render(page, cells: list[str]) -> list[dict]:
    page.set_content(f"<style>{(VENDOR / 'katex' / 'katex.min.css').read_text()}</style>")
    for script in SCRIPTS:
        page.add_script_tag(content=script.read_text())
    return page.evaluate(RENDER_JS, cells)


def expected_formulas(source: str) -> int:
    return len(MATH.findall(CODE.sub("", source)))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_formula_typesets(colab, page, path):
    cells = [c.source for c in nbformat.read(colab / "book" / path.name, as_version=4).cells
             if c.cell_type == "markdown"]
    results = render(page, cells)
    failures = [(i, r["errors"], r["left"]) for i, r in enumerate(results) if r["errors"] or r["left"]]
    assert not failures, f"{path.name}: untypeset formulas (cell, KaTeX errors, text with $):\n" + \
        "\n".join(json.dumps(f, ensure_ascii=False) for f in failures[:5])
    shown = [r["formulas"] for r in results]
    wanted = [expected_formulas(c) for c in cells]
    missing = [(i, w, s) for i, (w, s) in enumerate(zip(wanted, shown)) if s < w]
    assert not missing, f"{path.name}: cells with fewer typeset formulas than written (cell, written, typeset):" \
                        f" {missing[:5]}"
    assert sum(shown) > 0


def test_the_check_sees_a_broken_formula(page):
    """The failure the converter used to produce: an inline formula wrapped inside a blockquote."""
    good, broken = "> Let $a = b$ hold.", "> Let $a =\n> b$ hold, and $c_1$ and $d_2$ too."
    ok, bad = render(page, [good, broken])
    assert not ok["errors"] and not ok["left"] and ok["formulas"] == expected_formulas(good) == 1
    assert bad["left"] or bad["errors"] or bad["formulas"] < expected_formulas(broken)
