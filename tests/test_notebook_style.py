"""Static checks of every chapter notebook against the book's page conventions (CONTRIBUTING.md, issue 12).

Each test guards one fault class a reader saw on the site or in the PDF: code running off the right edge,
long visible cells of plotting boilerplate, figures without number, caption or alt text (or blurry, or wider than a page), SymPy printed as ASCII,
TeX left raw by a lone ``$`` or by a Markdown list item opened inside a formula, log-like output (timings,
warnings, text walls), checked cells marked by a visible comment, ``.numpy()`` on a possibly-device tensor,
and prose that says "the figure below" or doubles "exercise Exercise N".
"""

from __future__ import annotations

import base64
import pathlib
import re
import struct

import nbformat
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "book").glob("ch*.ipynb"))
MAX_COLUMNS = 88
MAX_STREAM_LINES = 12  # more than this is a text wall: use poprisk.tables.show or a figure
MIN_DPI, MAX_WIDTH_IN = 150, 7.0
HIDDEN = {"remove-cell", "remove-input"}  # code the page never shows


def load(path):
    return nbformat.read(path, as_version=4)


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]


def visible_code_cells(nb):
    return [c for c in code_cells(nb) if not HIDDEN & set(c.metadata.get("tags", []))]


def markdown(nb):
    return [c.source for c in nb.cells if c.cell_type == "markdown"]


def ids(path):
    return path.name


# ---------------------------------------------------------------- Markdown source: math that renders


_FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})(.*)$")


def prose_lines(source: str):
    """The Markdown lines that are prose, with code fences removed (MyST directive fences such as
    ```{prf:theorem} hold prose and math, so they stay; ```python or ```bash blocks go)."""
    out, fence, directives = [], None, 0
    for line in source.splitlines():
        m = _FENCE.match(line)
        if fence is not None:
            if m and m.group(2).startswith(fence[0]) and len(m.group(2)) >= len(fence) and not m.group(3).strip():
                fence = None
            continue
        if m:
            info = m.group(3).strip()
            if info.startswith("{") and not info.startswith("{code"):
                directives += 1  # a directive opening: its body is prose
            elif not info and directives:
                directives -= 1  # a directive closing
            else:
                fence = m.group(2)  # a code block
            continue
        if re.match(r"^:[\w-]+:", line.strip()):
            continue  # a directive option line (:label:, :class:)
        out.append(line)
    return out


def strip_code_spans(line: str) -> str:
    return re.sub(r"(`+)(.+?)\1", "", line)


def paragraphs(source: str):
    """Blocks of consecutive non-blank prose lines, display math ($$ ... $$ on their own lines) removed."""
    block, in_display = [], False
    for line in prose_lines(source):
        text = strip_code_spans(line).replace(r"\$", "")
        if text.strip() == "$$" or (text.strip().startswith("$$") and text.count("$$") == 1):
            in_display = not in_display
            if block:
                yield block
            block = []
            continue
        if in_display:
            continue
        if not text.strip():
            if block:
                yield block
            block = []
            continue
        block.append(text.replace("$$", ""))  # one-line $$ ... $$ displays
    if block:
        yield block


LIST_ITEM = re.compile(r"^\s*([-+*]|\d+[.)])\s")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_no_lone_dollar(path):
    bad = []
    for source in markdown(load(path)):
        for block in paragraphs(source):
            if sum(line.count("$") for line in block) % 2:
                bad.append(" / ".join(block)[:120])
    assert not bad, f"{path.name}: a paragraph with an odd number of `$` (raw TeX on the page): {bad[:3]}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_no_list_marker_inside_math(path):
    """A source line that starts with `+ `, `- ` or `* ` while a `$...$` formula is open is read by
    Markdown as a list item, and the formula is shown as raw TeX (chapters 6 and 8 had one each)."""
    bad = []
    for source in markdown(load(path)):
        for block in paragraphs(source):
            open_math = False
            for i, line in enumerate(block):
                if open_math and i > 0 and LIST_ITEM.match(line):
                    bad.append(line.strip()[:80])
                open_math ^= line.count("$") % 2 == 1
    assert not bad, f"{path.name}: a line inside inline math starts like a list item (re-wrap it): {bad[:3]}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_prose_refers_to_figures_by_number(path):
    nb = load(path)
    text = "\n".join(markdown(nb))
    vague = re.findall(r"(?:the|this) (?:figure|plot|picture) (?:below|above)", text, re.I)
    assert not vague, f"{path.name}: prose says {vague[:3]}; use {{numref}}`fig-...`"
    doubled = re.findall(r"\b[Ee]xercises? \{ref\}`[^`]+`", text)
    assert not doubled, f"{path.name}: {doubled[:3]} renders as 'exercise Exercise N': drop the word"


# ---------------------------------------------------------------- code cells


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_code_fits_the_column(path):
    long = [(i, len(line)) for i, c in enumerate(visible_code_cells(load(path)))
            for line in c.source.splitlines() if len(line) > MAX_COLUMNS]
    assert not long, f"{path.name}: code lines over {MAX_COLUMNS} columns (cell, length): {long[:5]}"


MAX_CELL_LINES = 25  # a screen: what a cell does beyond set up, call, show belongs in poprisk (issue 23)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_code_cells_fit_a_screen(path):
    # every code cell, hidden set-up cells too: hiding code does not make it the page's business
    long = [(i, n) for i, c in enumerate(load(path).cells) if c.cell_type == "code"
            and (n := len(c.source.rstrip().splitlines())) > MAX_CELL_LINES]
    assert not long, (
        f"{path.name}: code cells over {MAX_CELL_LINES} lines (cell index, lines): {long}; "
        "move the logic into a poprisk function (docstring naming the chapter, a unit test)")


PLOT_CALL = re.compile(r"\b(?:ax|axes|fig|plt)\b[.\[]")
MAX_VISIBLE_PLOT_LINES = 5


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_plotting_boilerplate_is_hidden(path):
    """A cell that is mostly matplotlib calls is not the lesson: tag it `hide-input` (the code stays one click
    away) or move the figure into a `poprisk.plotting` helper. Solutions are exempt."""
    bad = []
    for i, c in enumerate(visible_code_cells(load(path))):
        if {"hide-input", "solution"} & set(c.metadata.get("tags", [])):
            continue
        calls = sum(bool(PLOT_CALL.search(line)) for line in c.source.splitlines())
        if calls > MAX_VISIBLE_PLOT_LINES:
            bad.append((i, calls))
    assert not bad, f"{path.name}: visible cells of plotting boilerplate (cell, plotting lines): {bad[:5]}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_numpy_only_after_cpu(path):
    """`.numpy()` fails on a CUDA tensor: every call goes through `.cpu()` first (same expression)."""
    bad = []
    for c in code_cells(load(path)):
        for line in c.source.splitlines():
            for m in re.finditer(r"\.numpy\(\)", line):
                if ".cpu()" not in line[: m.start()]:
                    bad.append(line.strip()[:80])
    assert not bad, f"{path.name}: `.numpy()` without `.cpu()`: {bad[:3]}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_checked_cells_use_the_tag(path):
    nb = load(path)
    marked = [c.source.splitlines()[0] for c in code_cells(nb) if "NBVAL_CHECK_OUTPUT" in c.source]
    assert not marked, f"{path.name}: use the 'nbval-check-output' cell tag, not a visible comment"
    checked = [c for c in code_cells(nb) if "nbval-check-output" in c.metadata.get("tags", [])]
    assert checked, f"{path.name}: no cell tagged 'nbval-check-output'"


# ---------------------------------------------------------------- outputs


def streams(nb):
    for i, c in enumerate(code_cells(nb)):
        if HIDDEN & set(c.metadata.get("tags", [])) or "remove-output" in c.metadata.get("tags", []):
            continue
        for o in c.outputs:
            if o.output_type == "stream":
                yield i, c, o


# ASCII SymPy: `**` powers, `sqrt(`/`exp(`/`log(` calls, `oo`, or a lone `E` (Euler's number printed)
SYMPY_ASCII = re.compile(r"\w\*\*\w|\b(?:sqrt|exp|log|Piecewise|Rational|Integral)\(|\boo\b|^E$", re.M)
LOG_LIKE = re.compile(
    r"\bwarn(?:ing)?s?\b|Traceback|No module named|not runnable|\bwall\b|elapsed|"
    r"\b\d+(?:\.\d+)?\s?(?:s|sec|seconds|ms|min)\b(?!\w)|it/s\b",
    re.I,
)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_no_sympy_ascii(path):
    bad = [(i, m.group(0)) for i, _, o in streams(load(path)) for m in [SYMPY_ASCII.search(o.text)] if m]
    assert not bad, f"{path.name}: SymPy printed as ASCII (cell, match): {bad[:3]}; typeset it " \
                    "(IPython.display.Math(sympy.latex(e)) or the expression as last value)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_no_log_like_output(path):
    nb = load(path)
    stderr = [i for i, _, o in streams(nb) if o.name == "stderr"]
    assert not stderr, f"{path.name}: stderr output (warnings, progress bars) stored in cells {stderr[:5]}"
    log = [(i, m.group(0)) for i, _, o in streams(nb) for m in [LOG_LIKE.search(o.text)] if m]
    assert not log, f"{path.name}: output that reads like a log (timings, warnings) (cell, match): {log[:4]}"
    walls = [(i, o.text.count("\n")) for i, c, o in streams(nb)
             if o.text.count("\n") > MAX_STREAM_LINES and "hide-output" not in c.metadata.get("tags", [])]
    assert not walls, f"{path.name}: text walls (cell, lines): {walls[:4]}; show a table (poprisk.tables.show)"


def png_size_and_dpi(b64: str) -> tuple[int, int, float | None]:
    raw = base64.b64decode(b64)
    width, height = struct.unpack(">II", raw[16:24])
    dpi = None
    pos = raw.find(b"pHYs")
    if pos > 0:
        ppux, _, unit = struct.unpack(">IIB", raw[pos + 4 : pos + 13])
        if unit == 1:
            dpi = ppux * 0.0254
    return width, height, dpi


def figure_cells(nb):
    for i, c in enumerate(code_cells(nb)):
        pngs = [o for o in c.outputs if o.output_type in ("display_data", "execute_result")
                and "image/png" in o.get("data", {})]
        if pngs:
            yield i, c, pngs


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_figures_have_number_caption_and_alt(path):
    nb = load(path)
    prose = "\n".join(markdown(nb))
    bad, unreferenced = [], []
    for i, c, pngs in figure_cells(nb):
        meta = c.metadata.get("mystnb", {})
        fig, img = meta.get("figure", {}), meta.get("image", {})
        alt = img.get("alt", "")
        if len(pngs) > 1:
            bad.append((i, "one figure per cell"))
        if not fig.get("caption") or not fig.get("name"):
            bad.append((i, "no mystnb.figure caption/name"))
        if len(alt) < 15 or re.search(r"\.(png|svg|jpe?g)\b|/", alt):
            bad.append((i, f"alt text {alt!r} does not say what the figure shows"))
        name = fig.get("name")
        if name and f"{{numref}}`{name}`" not in prose and not re.search(
                rf"\{{numref\}}`[^`<]*<{re.escape(name)}>`", prose):
            unreferenced.append(name)
    assert not bad, f"{path.name}: figure cells without number, caption or alt text: {bad[:4]}"
    assert not unreferenced, f"{path.name}: figures never referenced by {{numref}} in the prose: {unreferenced}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_figures_are_sharp_and_fit_a_page(path):
    bad = []
    for i, _, pngs in figure_cells(load(path)):
        for o in pngs:
            width, _, dpi = png_size_and_dpi(o["data"]["image/png"])
            if dpi is None or dpi < MIN_DPI - 1:
                bad.append((i, f"{dpi and round(dpi)} dpi"))
            elif width / dpi > MAX_WIDTH_IN + 0.05:
                bad.append((i, f"{width / dpi:.1f} in wide"))
    assert not bad, f"{path.name}: figures below {MIN_DPI} dpi or over {MAX_WIDTH_IN} in (cell, what): " \
                    f"{bad[:5]}; call plotting.use_book_style() and keep figsize within (7, ...)"
