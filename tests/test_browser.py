"""Real-browser check of the built site: headless Chromium (Debian's) driven by Playwright over loopback.

For every page of the TOC: MathJax typeset all math (no raw TeX left in the rendered text), every image loaded
with a non-zero size, theorem/proof and exercise blocks rendered where the source has them, the Colab launch
link on notebook pages points at that notebook in the configured repository, and no local link is a 404.
Screenshots of two pages are saved under ``_build/screenshots/``.
"""

from __future__ import annotations

import functools
import http.server
import pathlib
import re
import shutil
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from tools.execute_notebooks import toc_files  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
               "--disable-background-networking", "--disable-component-update"]

# Text MathJax would have replaced: display/inline delimiters and environments, outside code blocks.
RAW_TEX = re.compile(r"\$\$|\\\(|\\\)|\\\[|\\\]|\\begin\{")
VISIBLE_TEXT_JS = """() => {
  const clone = document.querySelector('main, article, body').cloneNode(true);
  clone.querySelectorAll('pre, code, script, style, mjx-container, .cell_output, .highlight').forEach(e => e.remove());
  return clone.innerText;
}"""


@pytest.fixture(scope="module")
def server(built_site):
    html, _ = built_site
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(html))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.fail("Chromium is not installed: `make test` installs Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield b
        b.close()


def link_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=10) as r:
            return r.status == 200
    except urllib.error.HTTPError:
        return False


@pytest.mark.parametrize("doc", toc_files())
def test_page_renders(doc, server, browser, root, config, built_site):
    html, _ = built_site
    source = next(root / f"{doc}{ext}" for ext in (".ipynb", ".md") if (root / f"{doc}{ext}").exists())
    text = source.read_text()
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    url = f"{server}/{doc}.html"
    response = page.goto(url)
    assert response is not None and response.ok, f"{url}: HTTP {response and response.status}"

    # MathJax: every math element typeset, no raw TeX left in the visible text
    n_math = page.locator(".math").count()
    if n_math:
        page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=20000)
        page.evaluate("() => MathJax.startup.promise")
        typeset = page.evaluate("() => document.querySelectorAll('.math mjx-container, mjx-container').length")
        assert typeset >= n_math, f"{doc}: {n_math} math elements but {typeset} typeset"
    leftover = RAW_TEX.findall(page.evaluate(VISIBLE_TEXT_JS))
    assert not leftover, f"{doc}: raw TeX left in the rendered text: {leftover[:5]}"

    # images: loaded, non-zero size
    page.wait_for_load_state("load")
    images = page.evaluate("() => [...document.images].map(i => [i.getAttribute('src'), i.complete, i.naturalWidth])")
    broken = [src for src, done, width in images if not done or width == 0]
    assert not broken, f"{doc}: images not loaded: {broken}"
    if source.suffix == ".ipynb" and "plt.show()" in text:
        assert any("/_images/" in (src or "") or src.endswith(".png") for src, _, _ in images), \
            f"{doc}: a figure cell but no figure on the page"

    # theorem-like and exercise blocks rendered as such
    if "{prf:theorem}" in text:
        assert page.locator("div.proof.theorem, div.theorem").count() > 0, f"{doc}: theorems not rendered"
    if "{exercise}" in text:
        assert page.locator("div.exercise").count() > 0, f"{doc}: exercises not rendered"
        assert page.locator("div.solution, details.solution, .dropdown").count() > 0, f"{doc}: no solution dropdowns"

    # Colab link on notebook pages
    if source.suffix == ".ipynb":
        repo = config["repository"]["url"].rstrip("/").removeprefix("https://github.com/")
        target = f"https://colab.research.google.com/github/{repo}/blob/{config['repository']['branch']}/{doc}.ipynb"
        hrefs = page.evaluate("() => [...document.querySelectorAll('a[href*=\"colab.research.google.com\"]')].map(a => a.href)")
        assert target in hrefs, f"{doc}: Colab link {target} not found (got {hrefs})"

    # local links: no 404
    hrefs = page.evaluate("() => [...document.querySelectorAll('a[href]')].map(a => a.href)")
    local = {h.split("#")[0] for h in hrefs if h.startswith(server)}
    dead = sorted(h for h in local if not link_ok(h))
    assert not dead, f"{doc}: dead local links: {dead}"

    if doc in ("book/ch01_phenomenon", "book/intro"):
        shots = html.parent / "screenshots"
        shots.mkdir(exist_ok=True)
        page.screenshot(path=str(shots / f"{doc.split('/')[-1]}.png"), full_page=False)
    assert not [e for e in errors if "THEBE" not in e.upper()], f"{doc}: JavaScript errors: {errors}"
    page.close()
