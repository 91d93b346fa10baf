"""Real-browser check of the built site: headless Chromium (Debian's) driven by Playwright, offline, with the
pages served on loopback.

Every page of the TOC is opened twice — desktop (1280 px, then switched to dark mode) and phone (390 px) —
and each fault class a reader met (issue 12) has its own test, so a regression names itself:

* math: MathJax typeset every formula; no raw TeX in the visible text (no `$$`, `\\(`, lone `$`, `\\command`),
  no "exercise Exercise N" or "??" left by a broken reference;
* phone: tapping the navigation and the contents buttons opens them; no page-level horizontal overflow; no
  inline formula clipped (it must sit inside a box that scrolls);
* layout (desktop, dark, phone): figures at their PNG's aspect ratio; nothing wider than its box is cut off:
  displays, outputs, printed lines and tables scroll with a cue, and boxes that fit show none; at 390 px most
  result tables fit the screen (a wide one becomes one card per row): 90 % of the book's, 75 % of each page's;
* accessibility: axe-core (vendored, tests/vendor/axe-core) finds no serious or critical violation, light and
  dark; every content image has alt text that describes it (not a file path);
* dark mode: every figure is readable (opaque light pixels, or a light card behind it);
* structure: theorem/exercise blocks rendered, the Colab link, no dead local link, no JavaScript error.

Screenshots for a person to look at: ``_build/screenshots/{desktop,phone,dark}/<page>.png`` (desktop and
phone: the top of the page, ``phone/<page>-nav.png`` with the navigation open and ``phone/<page>-table.png`` at
the first table in its phone form; dark: the first figure of the page, or its top).
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
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tools import timeouts  # noqa: E402
from tools.execute_notebooks import toc_files  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
               "--disable-background-networking", "--disable-component-update"]
AXE = ROOT / "tests" / "vendor" / "axe-core" / "axe.min.js"
DOCS = toc_files()
DESKTOP, PHONE = {"width": 1280, "height": 900}, {"width": 390, "height": 844}

# Text MathJax would have replaced, outside code and outputs: delimiters, environments, a lone `$`, a TeX
# command; and the marks of broken references.
RAW_TEX = re.compile(r"\$|\\\(|\\\)|\\\[|\\\]|\\begin\{|\\[A-Za-z]{2,}")
BROKEN_REF = re.compile(r"\b(exercise|theorem|lemma|definition|figure)\s+\1\b|\?\?", re.I)
VISIBLE_TEXT_JS = """() => {
  const clone = document.querySelector('article') ? document.querySelector('article').cloneNode(true)
      : document.body.cloneNode(true);
  clone.querySelectorAll('pre, code, script, style, mjx-container, mjx-assistive-mml, .cell_output, .highlight')
      .forEach(e => e.remove());
  return clone.innerText;
}"""

# For every inline formula: is it wider than the box that shows it, and can that box scroll?
CLIPPED_MATH_JS = """() => {
  const out = [];
  for (const m of document.querySelectorAll('article mjx-container:not([display="true"])')) {
    const r = m.getBoundingClientRect();
    if (r.width === 0) continue;
    let box = m.parentElement, scrolls = false;
    while (box && box !== document.body) {
      const ox = getComputedStyle(box).overflowX;
      if (ox !== 'visible') { scrolls = (ox === 'auto' || ox === 'scroll'); break; }
      box = box.parentElement;
    }
    const limit = box && box !== document.body ? box.getBoundingClientRect() : {left: 0, right: innerWidth};
    const outside = r.right > limit.right + 1 || r.left < limit.left - 1;
    if (outside && !scrolls) out.push(m.textContent.slice(0, 60));
  }
  return out;
}"""

# Nothing cut without a cue (book/_static/poprisk.css): (1) no element clips content wider than itself
# (overflow hidden/clip, MathJax internals aside); (2) every box that can hold something wide -- display, output,
# printed line, table -- and is wider than its content scrolls and carries the scroll-shadow cue; (3) no false
# cue: each such box paints an opaque background and opaque covers, which hide the shadows at an edge with
# nothing more (transparent covers showed a glow on every boxed display in dark mode).
SCROLLERS = ("article div.math, article .cell_output .output, article .cell_output pre, "
             "article .poprisk-scroll, article .pst-scrollable-table-container")
CUT_JS = """(sel) => {
  const name = e => e.tagName.toLowerCase() + '.' + [...e.classList].join('.') + ': ' +
                    e.textContent.replace(/\\s+/g, ' ').slice(0, 50);
  const wide = e => e.clientWidth > 1 && e.scrollWidth > e.clientWidth + 1;
  const rgba = c => { const v = (c.match(/[\\d.]+/g) || []).map(Number); return v.length < 3 ? [0, 0, 0, 0]
                      : [v[0], v[1], v[2], v.length > 3 ? v[3] : 1]; };
  const clipped = [], nocue = [], falsecue = [];
  for (const e of document.querySelectorAll('article *')) {
    if (e.tagName.startsWith('MJX-') || e.closest('mjx-container')) continue;
    const ox = getComputedStyle(e).overflowX;
    if (wide(e) && (ox === 'hidden' || ox === 'clip')) clipped.push(name(e));
  }
  for (const e of document.querySelectorAll(sel)) {
    const cs = getComputedStyle(e);
    const cue = ['auto', 'scroll'].includes(cs.overflowX) && cs.backgroundImage.includes('gradient');
    if (wide(e) && !cue) nocue.push(name(e));
    const covers = [...cs.backgroundImage.matchAll(/linear-gradient\\(to (?:right|left), (rgba?\\([^)]*\\))/g)];
    if (covers.length && (rgba(cs.backgroundColor)[3] < 1 || covers.some(c => rgba(c[1])[3] < 1)))
      falsecue.push(name(e));
  }
  return {clipped, nocue, falsecue};
}"""

# Figures at their own aspect ratio: the drawn box against the PNG (myst-nb's inline height squashed them).
ASPECT_JS = """() => [...document.querySelectorAll('article img')].filter(i => i.naturalWidth > 0)
  .map(i => { const r = i.getBoundingClientRect(), cs = getComputedStyle(i);
    const pad = parseFloat(cs.paddingLeft) + parseFloat(cs.paddingRight) + parseFloat(cs.borderLeftWidth) +
                parseFloat(cs.borderRightWidth);
    const padv = parseFloat(cs.paddingTop) + parseFloat(cs.paddingBottom) + parseFloat(cs.borderTopWidth) +
                 parseFloat(cs.borderBottomWidth);
    return {src: (i.getAttribute('src') || '').slice(-30),
            ratio: ((r.width - pad) / (r.height - padv)) / (i.naturalWidth / i.naturalHeight)}; })
  .filter(x => !(Math.abs(x.ratio - 1) < 0.02))"""

# Result tables at 390 px (issue 21): a table wider than the column is shown as one card per row
# (book/_static/poprisk-tables.js, poprisk.css), so few still need sideways scrolling: each table, and whether its
# content is wider than the box it sits in (its scroll box, or the article).
TABLES_FIT_JS = """() => [...document.querySelectorAll('article .poprisk-table')].map(t => {
  const table = t.querySelector('table'), box = t.querySelector('.poprisk-scroll') || t;
  return {name: (t.querySelector('.poprisk-caption') || table.querySelector('th') || t).textContent.slice(0, 50),
          stacked: t.classList.contains('poprisk-stacked'),
          wide: table.scrollWidth > box.clientWidth + 1 || t.getBoundingClientRect().right > innerWidth + 1}; })"""
# At least this share of the book's result tables fits a 390 px phone without sideways scrolling, and on every
# page with a table at least PAGE_SHARE of them (the rest scroll, with their cue: test_nothing_is_cut_...).
BOOK_SHARE, PAGE_SHARE = 0.9, 0.75

# Code formatted at 88 columns (tests/test_notebook_style.py) fits the desktop column without scrolling.
CODE_OVERFLOW_JS = """() => [...document.querySelectorAll('article div.highlight pre')]
  .filter(p => p.scrollWidth > p.clientWidth + 1)
  .filter(p => Math.max(...p.textContent.split('\\n').map(l => l.length)) <= 88)
  .map(p => p.textContent.slice(0, 50))"""

IMAGES_JS = """() => [...document.querySelectorAll('article img')].map(i => ({
  src: i.getAttribute('src') || '', alt: i.getAttribute('alt') || '', done: i.complete, width: i.naturalWidth}))"""

# Dark mode: the figure's own corner pixels, or the card behind it, must be light.
DARK_FIGURES_JS = """() => {
  const light = (r, g, b) => 0.2126 * r + 0.7152 * g + 0.0722 * b > 200;
  const out = [];
  for (const img of document.querySelectorAll('article img')) {
    if (!img.naturalWidth) continue;
    const c = document.createElement('canvas');
    c.width = img.naturalWidth; c.height = img.naturalHeight;
    const ctx = c.getContext('2d'); ctx.drawImage(img, 0, 0);
    const w = c.width - 1, h = c.height - 1;
    const corners = [[0, 0], [w, 0], [0, h], [w, h]].map(([x, y]) => ctx.getImageData(x, y, 1, 1).data);
    const opaqueLight = corners.every(p => p[3] > 250 && light(p[0], p[1], p[2]));
    const bg = getComputedStyle(img).backgroundColor.match(/[\\d.]+/g).map(Number);
    const card = (bg.length < 4 || bg[3] > 0.9) && light(bg[0], bg[1], bg[2]);
    if (!opaqueLight && !card) out.push(img.getAttribute('src'));
  }
  return out;
}"""

# MathJax output (thousands of elements, the text colour of its paragraph) is left out: it dominated the run
# time. In dark mode only the contrast inside boxes and tables (tinted backgrounds) is checked again: the rest
# does not depend on the colour scheme, and contrast is the slow rule.
AXE_JS = """async (dark) => {
  const options = {resultTypes: ['violations']};
  let context = {exclude: [['mjx-container']]};
  if (dark) {
    options.runOnly = {type: 'rule', values: ['color-contrast']};
    const boxes = [...document.querySelectorAll('article .admonition, article table, article details')];
    if (!boxes.length) return [];
    context = {include: boxes, exclude: [['mjx-container']]};
  }
  const r = await axe.run(context, options);
  return r.violations.filter(v => ['serious', 'critical'].includes(v.impact))
    .map(v => v.id + ' (' + v.impact + ', ' + v.nodes.length + '): ' + v.nodes.slice(0, 2).map(n => n.target.join(' ')).join(' | '));
}"""


# Boxes that scroll sideways must be reachable by keyboard (WCAG 2.1.1; the axe-core rule
# scrollable-region-focusable skips MathJax output): each one has a tab stop or holds a focusable element.
UNREACHABLE_SCROLLERS_JS = """() => [...document.querySelectorAll('article *')]
  .filter(e => e.scrollWidth > e.clientWidth + 1 && ['auto', 'scroll'].includes(getComputedStyle(e).overflowX))
  .filter(e => e.tabIndex < 0 && !e.querySelector('a[href], button, input, select, textarea, [tabindex="0"]'))
  .map(e => e.tagName.toLowerCase() + '.' + [...e.classList].join('.') + ': ' + e.textContent.slice(0, 40))"""


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server(built_site):
    html, _ = built_site
    handler = functools.partial(QuietHandler, directory=str(html))
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


@functools.cache
def link_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeouts.http()) as r:
            return r.status == 200
    except urllib.error.HTTPError:
        return False


def open_page(browser, url, viewport, scheme="light"):
    phone = viewport["width"] < 500
    page = browser.new_page(viewport=viewport, color_scheme=scheme, has_touch=phone, is_mobile=phone)
    page.set_default_timeout(timeouts.browser_ms())
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    response = page.goto(url)
    assert response is not None and response.ok, f"{url}: HTTP {response and response.status}"
    page.wait_for_load_state("load")
    if page.locator(".math").count():
        page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise",
                               timeout=timeouts.browser_ms())
        page.evaluate("() => MathJax.startup.promise")
        page.wait_for_timeout(100)  # book/_static/poprisk-scroll-focus.js runs after typesetting
    return page, errors


def opens(page, toggle: str, panel: str) -> bool:
    """Tap the visible `toggle` button; True when `panel` is then on screen."""
    button = page.locator(f"{toggle}:visible")
    if button.count() == 0:
        return False
    button.first.tap()
    page.wait_for_timeout(400)
    shown = page.evaluate(f"""() => {{ const p = document.querySelector('{panel}'); if (!p) return false;
        const r = p.getBoundingClientRect(), cs = getComputedStyle(p);
        return cs.visibility === 'visible' && r.width > 100 && r.left >= -1 && r.right <= innerWidth + 1; }}""")
    return bool(shown)


def close_drawers(page):
    page.keyboard.press("Escape")
    overlay = page.locator(".overlay:visible")
    for i in range(overlay.count()):
        overlay.nth(i).click(force=True)
    page.wait_for_timeout(300)


@pytest.fixture(scope="module")
def measured(server, browser, built_site, root, config):
    """Open every page (desktop, dark, phone) once and record what each test checks."""
    html, _ = built_site
    shots = html.parent / "screenshots"
    for view in ("desktop", "phone", "dark"):
        (shots / view).mkdir(parents=True, exist_ok=True)
    axe = AXE.read_text()
    cache: dict[str, dict] = {}

    def measure(doc: str) -> dict:
        if doc in cache:
            return cache[doc]
        name = doc.split("/")[-1]
        url = f"{server}/{doc}.html"
        source = next(root / f"{doc}{ext}" for ext in (".ipynb", ".md") if (root / f"{doc}{ext}").exists())
        m: dict = {"source": source, "text": source.read_text()}

        page, errors = open_page(browser, url, DESKTOP)
        m["n_math"] = page.locator(".math").count()
        m["n_typeset"] = page.evaluate("() => document.querySelectorAll('mjx-container').length")
        m["visible_text"] = page.evaluate(VISIBLE_TEXT_JS)
        m["images"] = page.evaluate(IMAGES_JS)
        m["code_overflow"] = page.evaluate(CODE_OVERFLOW_JS)
        m["squashed"] = {"desktop": page.evaluate(ASPECT_JS)}
        m["cut"] = {"desktop": page.evaluate(CUT_JS, SCROLLERS)}
        m["theorems"] = page.locator("div.proof.theorem, div.theorem").count()
        m["exercises"] = page.locator("div.exercise").count()
        m["solutions"] = page.locator("div.solution, details.solution, .dropdown").count()
        m["colab"] = page.evaluate(
            "() => [...document.querySelectorAll('a[href*=\"colab.research.google.com\"]')].map(a => a.href)")
        hrefs = page.evaluate("() => [...document.querySelectorAll('a[href]')].map(a => a.href)")
        m["dead"] = sorted(h for h in {x.split("#")[0] for x in hrefs if x.startswith(server)} if not link_ok(h))
        page.add_script_tag(content=axe)
        m["axe_light"] = page.evaluate(AXE_JS, False)
        m["unreachable"] = page.evaluate(UNREACHABLE_SCROLLERS_JS)
        page.screenshot(path=str(shots / "desktop" / f"{name}.png"))

        # dark mode on the same page, as the theme's switch sets it (and the colour-scheme preference)
        page.emulate_media(color_scheme="dark")
        page.evaluate("() => { document.documentElement.dataset.mode = 'dark';"
                      " document.documentElement.dataset.theme = 'dark'; }")
        page.wait_for_timeout(200)
        m["dark"] = page.evaluate("() => document.documentElement.dataset.theme")
        m["dark_unreadable"] = page.evaluate(DARK_FIGURES_JS)
        m["squashed"]["dark"] = page.evaluate(ASPECT_JS)
        m["cut"]["dark"] = page.evaluate(CUT_JS, SCROLLERS)
        m["axe_dark"] = page.evaluate(AXE_JS, True)
        # the first figure of the page in view (or the top of the page), where dark mode matters most
        top = page.evaluate("() => { const f = document.querySelector('article .cell_output img, article figure img');"
                            " return f ? Math.max(f.getBoundingClientRect().top + scrollY - 150, 0) : 0; }")
        page.screenshot(path=str(shots / "dark" / f"{name}.png"), full_page=True,
                        clip={"x": 0, "y": top, "width": DESKTOP["width"], "height": DESKTOP["height"]})
        m["errors"] = errors
        page.close()

        page, errors = open_page(browser, url, PHONE)
        page.screenshot(path=str(shots / "phone" / f"{name}.png"))
        m["overflow"] = page.evaluate("() => document.documentElement.scrollWidth - innerWidth")
        m["clipped_math"] = page.evaluate(CLIPPED_MATH_JS)
        m["squashed"]["phone"] = page.evaluate(ASPECT_JS)
        m["cut"]["phone"] = page.evaluate(CUT_JS, SCROLLERS)
        m["phone_tables"] = page.evaluate(TABLES_FIT_JS)
        first_card = page.locator("article .poprisk-stacked")
        if first_card.count():  # a wide table in its phone form, for a person to look at
            first_card.first.scroll_into_view_if_needed()
            page.screenshot(path=str(shots / "phone" / f"{name}-table.png"))
        m["unreachable"] += page.evaluate(UNREACHABLE_SCROLLERS_JS)
        m["nav_opens"] = opens(page, ".primary-toggle", ".bd-sidebar-primary")
        page.screenshot(path=str(shots / "phone" / f"{name}-nav.png"))
        close_drawers(page)
        m["has_contents"] = page.locator(".secondary-toggle:visible").count() > 0
        m["contents_opens"] = opens(page, ".secondary-toggle", ".bd-sidebar-secondary")
        close_drawers(page)
        m["errors"] += errors
        page.close()

        cache[doc] = m
        return m

    return measure


@pytest.mark.parametrize("doc", DOCS)
def test_math_is_typeset(doc, measured):
    m = measured(doc)
    assert m["n_typeset"] >= m["n_math"], f"{doc}: {m['n_math']} math elements but {m['n_typeset']} typeset"
    leftover = RAW_TEX.findall(m["visible_text"])
    assert not leftover, f"{doc}: raw TeX in the visible text (a lone $ or a list item inside a formula?): " \
                         f"{leftover[:5]}"


@pytest.mark.parametrize("doc", DOCS)
def test_references_resolve_in_the_text(doc, measured):
    bad = [mm.group(0) for mm in BROKEN_REF.finditer(measured(doc)["visible_text"])]
    assert not bad, f"{doc}: broken or doubled references in the text: {bad[:5]}"


@pytest.mark.parametrize("doc", DOCS)
def test_phone_navigation_opens(doc, measured):
    m = measured(doc)
    assert m["nav_opens"], f"{doc}: at 390 px, tapping the navigation button does not open the navigation"
    if m["has_contents"]:
        assert m["contents_opens"], f"{doc}: at 390 px, tapping the contents button does not open the contents"


@pytest.mark.parametrize("doc", DOCS)
def test_phone_has_no_horizontal_overflow_or_clipped_math(doc, measured):
    m = measured(doc)
    assert m["overflow"] <= 1, f"{doc}: the page is {m['overflow']} px wider than a 390 px phone"
    assert not m["clipped_math"], f"{doc}: inline math clipped at 390 px (no scrolling box): {m['clipped_math'][:3]}"


@pytest.mark.parametrize("doc", DOCS)
def test_nothing_is_cut_without_a_cue(doc, measured):
    for view, cut in measured(doc)["cut"].items():
        assert not cut["clipped"], f"{doc} ({view}): {len(cut['clipped'])} boxes cut wider content off " \
                                   f"with no way to scroll: {cut['clipped'][:3]}"
        assert not cut["nocue"], f"{doc} ({view}): {len(cut['nocue'])} wide boxes with no scroll cue: " \
                                 f"{cut['nocue'][:3]}"
        assert not cut["falsecue"], f"{doc} ({view}): boxes whose scroll cue is not opaque (a false glow) " \
                                    f"where nothing scrolls: {cut['falsecue'][:3]}"


@pytest.mark.parametrize("doc", DOCS)
def test_phone_tables_fit_the_screen(doc, measured):
    tables = measured(doc)["phone_tables"]
    wide = [t["name"] for t in tables if t["wide"]]
    assert len(wide) <= (1 - PAGE_SHARE) * len(tables), \
        f"{doc}: {len(wide)} of {len(tables)} result tables wider than a 390 px phone: {wide[:3]}"


def test_most_phone_tables_of_the_book_fit_the_screen(measured):
    tables = [t for doc in DOCS for t in measured(doc)["phone_tables"]]
    wide = [t for t in tables if t["wide"]]
    assert len(tables) > 50, "the book's result tables were not found on the pages"
    assert any(t["stacked"] for t in tables), "no wide table got its phone form (poprisk-tables.js)"
    assert len(wide) <= (1 - BOOK_SHARE) * len(tables), \
        f"{len(wide)} of {len(tables)} result tables wider than a 390 px phone: {[t['name'] for t in wide][:5]}"


@pytest.mark.parametrize("doc", DOCS)
def test_figures_keep_their_aspect_ratio(doc, measured):
    for view, bad in measured(doc)["squashed"].items():
        assert not bad, f"{doc} ({view}): figures drawn off their PNG's aspect ratio (> 2 %): {bad[:3]}"


@pytest.mark.parametrize("doc", DOCS)
def test_code_fits_the_desktop_column(doc, measured):
    bad = measured(doc)["code_overflow"]
    assert not bad, f"{doc}: code of at most 88 columns scrolls sideways at 1280 px: {bad[:3]}"


@pytest.mark.parametrize("doc", DOCS)
def test_accessibility_axe_core(doc, measured):
    m = measured(doc)
    assert not m["axe_light"], f"{doc}: axe-core serious/critical violations (light): {m['axe_light']}"
    assert not m["axe_dark"], f"{doc}: axe-core serious/critical violations (dark): {m['axe_dark']}"
    assert not m["unreachable"], f"{doc}: boxes that scroll but cannot be reached by keyboard: {m['unreachable'][:3]}"


@pytest.mark.parametrize("doc", DOCS)
def test_images_load_and_have_alt_text(doc, measured):
    m = measured(doc)
    broken = [i["src"] for i in m["images"] if not i["done"] or i["width"] == 0]
    assert not broken, f"{doc}: images not loaded: {broken}"
    bad = [(i["src"][-20:], i["alt"]) for i in m["images"]
           if len(i["alt"]) < 15 or re.search(r"\.(png|svg|jpe?g)\b|/", i["alt"])]
    assert not bad, f"{doc}: images whose alt text is missing or a file path: {bad[:3]}"
    if m["source"].suffix == ".ipynb" and "plt.show()" in m["text"]:
        assert m["images"], f"{doc}: a figure cell but no figure on the page"


@pytest.mark.parametrize("doc", DOCS)
def test_dark_mode_figures_are_readable(doc, measured):
    m = measured(doc)
    assert m["dark"] == "dark", f"{doc}: the page did not switch to dark mode (data-theme={m['dark']!r})"
    assert not m["dark_unreadable"], f"{doc}: figures that are dark-on-dark in dark mode: {m['dark_unreadable']}"


@pytest.mark.parametrize("doc", DOCS)
def test_page_structure_and_links(doc, measured, config):
    m = measured(doc)
    text = m["text"]
    if "{prf:theorem}" in text:
        assert m["theorems"] > 0, f"{doc}: theorems not rendered"
    if "{exercise}" in text:
        assert m["exercises"] > 0, f"{doc}: exercises not rendered"
        assert m["solutions"] > 0, f"{doc}: no solution dropdowns"
    if m["source"].suffix == ".ipynb":
        repo = config["repository"]["url"].rstrip("/").removeprefix("https://github.com/")
        target = f"https://colab.research.google.com/github/{repo}/blob/{config['repository']['branch']}/{doc}.ipynb"
        assert target in m["colab"], f"{doc}: Colab link {target} not found (got {m['colab']})"
    assert not m["dead"], f"{doc}: dead local links: {m['dead']}"
    assert not m["errors"], f"{doc}: JavaScript errors: {m['errors']}"
