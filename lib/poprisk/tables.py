"""Result tables for the page: a pandas DataFrame shown as an HTML table on the site and a LaTeX ``longtable``
in the PDF (every chapter that reports numbers).

The book's tables are tidy :class:`pandas.DataFrame` objects; :func:`show` is the one way a chapter puts one
on the page. It gives every column its reader's name (:func:`poprisk.column_names.reader_name`: ``test CE
(nats)``, not ``test_ce``) and one number format (:func:`format_column`: the same decimals in every row, so
a column reads the same on a phone, a desktop and in print), hides the integer index, and returns an object
with both an HTML and a LaTeX representation: Jupyter, Colab and the site pick the HTML one, the PDF build the LaTeX one (no
monospace text walls split mid-number).
"""

from __future__ import annotations

import html
import math
import numbers
import re

import numpy as np
import pandas as pd

from poprisk import checks
from poprisk.column_names import reader_name

__all__ = ["format_column", "format_number", "latex_table", "show", "Shown"]


def format_number(value, digits: int = 4) -> str:
    """``value`` with ``digits`` significant digits (fixed notation between 1e-4 and 1e6, else scientific);
    integers, complex numbers and non-numbers as themselves, every missing value (``None``, NaN of any width,
    ``pd.NA``, ``NaT``, ``Decimal('NaN')``) as an en dash."""
    digits = checks.integer(digits, "digits", low=1, high=12)
    if pd.api.types.is_scalar(value) and pd.isna(value):
        return "–"
    if isinstance(value, (bool, complex, np.complexfloating)) or not isinstance(value, numbers.Number):
        return str(value)
    if isinstance(value, numbers.Integral):
        return f"{int(value):d}"
    x = float(value)
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    if x == 0:
        return "0"
    if 1e-4 <= abs(x) < 1e6:
        decimals = max(digits - 1 - math.floor(math.log10(abs(x))), 0)
        return f"{x:.{decimals}f}".replace("-", "−")
    return f"{x:.{digits - 1}e}".replace("-", "−")


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _missing(value) -> bool:
    return value is None or (_is_number(value) and math.isnan(float(value)))


def format_column(values, digits: int = 4) -> list[str]:
    """The cells of one table column, all numbers in one format.

    * integers (or floats that are all whole numbers): as integers;
    * floats whose largest magnitude lies in [1e-4, 1e6): fixed point, with the decimals that give the largest
      value ``digits`` significant digits, plus up to two more so that the smallest non-zero value keeps two
      (``0.4771`` and ``0.0005`` in one column read ``0.47710`` and ``0.00050`` at ``digits=4``, never
      ``0.4771`` beside ``0.0005000``);
    * other floats: scientific with ``digits`` significant digits;
    * ``None``/NaN as an en dash, infinities as ``∞``.

    A column that also holds text (a settings column whose rows are different quantities) keeps the
    per-value form of :func:`format_number`.
    """
    digits = checks.integer(digits, "digits", low=1, high=12)
    if values is None or isinstance(values, (str, bytes, numbers.Number)) or not hasattr(values, "__iter__"):
        raise checks.ArgumentTypeError(f"values must be a sequence of a column's cells, got "
                                       f"{type(values).__name__}")
    values = list(values)
    present = [v for v in values if not _missing(v)]
    if not all(_is_number(v) for v in present):
        return [format_number(v, digits) for v in values]
    finite = [float(v) for v in present if math.isfinite(float(v))]
    if all(isinstance(v, numbers.Integral) or float(v).is_integer() for v in finite) and \
            max(map(abs, finite), default=0.0) < 1e15:
        def fmt(x: float) -> str:
            return f"{int(x):d}".replace("-", "−")
    else:
        largest = max(abs(x) for x in finite)
        if 1e-4 <= largest < 1e6:
            decimals = max(digits - 1 - math.floor(math.log10(largest)), 0)
            smallest = min(abs(x) for x in finite if x != 0)
            decimals = max(decimals, min(1 - math.floor(math.log10(smallest)), decimals + 2))

            def fmt(x: float) -> str:
                return f"{x:.{decimals}f}".replace("-", "−")
        else:
            def fmt(x: float) -> str:
                return f"{x:.{digits - 1}e}".replace("-", "−")

    def cell(v) -> str:
        if _missing(v):
            return "–"
        if math.isinf(float(v)):
            return "∞" if v > 0 else "−∞"
        return fmt(float(v))

    return [cell(v) for v in values]


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def _latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def _latex_cell(text: str) -> str:
    """A table cell: escaped, with a break allowed after ``_``, ``-`` and ``/`` in a long identifier."""
    return re.sub(r"(\\_|-|/)(?=\w)", r"\1\\allowbreak{}", _latex_escape(text))


# The PDF's text block (US letter, 1-in margins: Sphinx's default) and the sizes a table may be set in;
# column widths are estimated from FreeSerif-like glyph widths (em per character), on the safe side.
LATEX_LINE_PT = 469.0
_LATEX_SIZES = ((r"\small", 9.0), (r"\footnotesize", 8.0), (r"\scriptsize", 7.0))
_LATEX_PAD_PT = 4.0  # \tabcolsep
_NARROW = set("fijlrt.,:;'!|()[]/ ")
_NUMBER = re.compile(r"^[−+-]?(\d[\d,]*\.?\d*|\.\d+)(e[−+-]?\d+)?%?$|^[–−]?∞$|^–$")
_NUMBER_CI = re.compile(r"^(\S+ )?\[\S+, \S+\]$|^\S+ ± \S+$")


def _em(text: str) -> float:
    """Estimated width of ``text`` in em (upper case and wide symbols 0.75, narrow letters 0.33)."""
    return sum(0.33 if ch in _NARROW else 0.75 if ch.isupper() or ch in "mwMW≥≤±−–—×" else 0.55
               for ch in text)


def _all_numbers(cells) -> bool:
    """Whether every cell of a column reads as a number (or a number with its interval): right-aligned."""
    cells = [c for c in cells if c != "–"]
    return bool(cells) and all(_NUMBER.match(c) or _NUMBER_CI.match(c) for c in cells)


def _words(text: str, split: bool) -> list[str]:
    return re.split(r"(?<=[_/-])|\s+", text) if split else text.split()


def _column_widths(header: list[str], body: list[list[str]]) -> tuple[str, float, list[float]]:
    """A font size, \\tabcolsep (pt) and column widths (pt) that fit :data:`LATEX_LINE_PT`: the largest size
    at which the columns fit with headers on one line, else with headers wrapped at spaces, else with every
    cell wrapped, identifiers also after ``_``, ``-`` and ``/`` (the spare width shared out in proportion to
    what each column would still need), with narrower gaps as a last resort."""
    cols = list(zip(header, *body)) if body else [(h,) for h in header]
    cell = [max([_em(c) for c in col[1:]] + [0.0]) for col in cols]
    word = [max(_em(w) for c in col for w in (_words(c, False) or [""])) for col in cols]
    tight = [max(c, w) for c, w in zip(cell, word)]
    natural = [max(c, _em(h)) for c, h in zip(cell, header)]
    pad = 2 * _LATEX_PAD_PT * len(cols)
    for size, pt in _LATEX_SIZES:
        for widths in (natural, tight):
            if sum(widths) * pt + pad <= LATEX_LINE_PT:
                return size, _LATEX_PAD_PT, [w * pt for w in widths]
    size, pt = _LATEX_SIZES[-1]
    piece = [max(_em(w) for c in col for w in (_words(c, True) or [""])) for col in cols]
    sep = _LATEX_PAD_PT if sum(piece) * pt + pad <= LATEX_LINE_PT else _LATEX_PAD_PT / 2
    spare = max(LATEX_LINE_PT - 2 * sep * len(cols) - sum(piece) * pt, 0.0)
    need = [t - w for t, w in zip(tight, piece)]
    return size, sep, [(w + spare / pt * n / (sum(need) or 1.0)) * pt for w, n in zip(piece, need)]


def _check_latex_args(header, body, numeric, caption) -> None:
    """Refuse what :func:`latex_table` cannot set: cells that are not strings, rows or alignment flags of
    another length than the header, a caption that is not a string."""
    if not isinstance(header, (list, tuple)) or not header or not all(isinstance(h, str) for h in header):
        raise checks.ArgumentTypeError(f"header must be a non-empty list of strings, got {header!r:.60}")
    if not isinstance(body, (list, tuple)) or not all(isinstance(r, (list, tuple)) and len(r) == len(header)
                                                       and all(isinstance(c, str) for c in r) for r in body):
        raise checks.ArgumentTypeError(f"body must be a list of rows, each {len(header)} strings (one per "
                                       f"header column), got {body!r:.60}")
    if not isinstance(numeric, (list, tuple)) or len(numeric) != len(header) \
            or not all(isinstance(n, (bool, np.bool_)) for n in numeric):
        raise checks.ArgumentTypeError(f"numeric must be a list of {len(header)} booleans (one per column), "
                                       f"got {numeric!r:.60}")
    if caption is not None:
        checks.text(caption, "caption")


def latex_table(header: list[str], body: list[list[str]], numeric: list[bool], caption: str | None) -> str:
    """The PDF form of a table: a ``longtable`` (it breaks across pages and repeats its header) whose
    columns fit the text block (:func:`_column_widths`), numbers right-aligned, the caption above it."""
    _check_latex_args(header, body, numeric, caption)
    size, sep, widths = _column_widths(header, body)
    spec = "".join(rf">{{\{'raggedleft' if n else 'raggedright'}\arraybackslash}}p{{{w:.1f}pt}}"
                   for n, w in zip(numeric, widths))
    head = " & ".join(_latex_cell(h) for h in header) + r" \\"
    lines = [r"\begingroup", size, rf"\setlength{{\tabcolsep}}{{{sep:g}pt}}",
             r"\setlength{\LTcapwidth}{\linewidth}\hyphenpenalty=10000",
             rf"\begin{{longtable}}{{{spec}}}"]
    if caption:
        lines.append(rf"\caption*{{\itshape {_latex_escape(caption)}}} \\")
    lines += [r"\hline", head, r"\hline", r"\endfirsthead", r"\hline", head, r"\hline", r"\endhead",
              r"\hline", r"\endfoot", r"\hline", r"\endlastfoot"]
    lines += [" & ".join(_latex_cell(v) for v in row) + r" \\" for row in body]
    lines += [r"\end{longtable}", r"\endgroup"]
    return "\n".join(lines)


class Shown:
    """A formatted table: ``_repr_html_`` for the site and notebooks, ``_repr_latex_`` for the PDF."""

    def __init__(self, frame: pd.DataFrame, digits: int, caption: str | None, index: bool):
        self.frame = frame
        self.digits = digits
        self.caption = caption
        self.index = index

    def _cells(self) -> tuple[list[str], list[list[str]]]:
        frame = self.frame.reset_index() if self.index else self.frame
        header = [reader_name(str(c)) for c in frame.columns]
        columns = [format_column(frame.iloc[:, j].tolist(), self.digits) for j in range(frame.shape[1])]
        return header, [list(row) for row in zip(*columns)] if columns else []

    def _repr_html_(self) -> str:
        header, body = self._cells()
        numeric = [pd.api.types.is_numeric_dtype(t) for t in
                   (self.frame.reset_index() if self.index else self.frame).dtypes]
        align = ["right" if n else "left" for n in numeric]
        out = ['<div class="poprisk-table"><table class="table">']
        if self.caption:
            out.append(f"<caption>{html.escape(self.caption)}</caption>")
        out.append("<thead><tr>" + "".join(f'<th style="text-align:{a}">{html.escape(h)}</th>'
                                           for h, a in zip(header, align)) + "</tr></thead><tbody>")
        for row in body:
            out.append("<tr>" + "".join(f'<td style="text-align:{a}">{html.escape(v)}</td>'
                                        for v, a in zip(row, align)) + "</tr>")
        out.append("</tbody></table></div>")
        return "".join(out)

    def _repr_latex_(self) -> str:
        header, body = self._cells()
        # alignment from the printed cells, not the dtypes: a column of numbers-as-text ("2,500") or of
        # means with their intervals is right-aligned too
        numeric = [_all_numbers(col) for col in zip(*body)] if body else [False] * len(header)
        return latex_table(header, body, numeric, self.caption)

    def __repr__(self) -> str:
        header, body = self._cells()
        widths = [max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(header)]
        rows = [header, *body]
        return "\n".join("  ".join(v.rjust(w) for v, w in zip(r, widths)) for r in rows)


def show(frame, *, digits: int = 4, caption: str | None = None, index: bool | None = None) -> Shown:
    """Put ``frame`` (a DataFrame, or anything ``pandas.DataFrame`` accepts) on the page.

    ``digits``: significant digits of the largest float in each column (:func:`format_column`). ``index``: show the index as leading columns (default:
    only when it is not the default ``RangeIndex``). ``caption``: a line above the table.
    """
    digits = checks.integer(digits, "digits", low=1, high=12)
    if frame is None or isinstance(frame, (str, bytes, numbers.Number)):
        raise checks.ArgumentTypeError(f"frame must be a DataFrame (or a dict or list of rows), got "
                                       f"{type(frame).__name__}")
    if not isinstance(frame, pd.DataFrame):
        try:
            frame = pd.DataFrame(frame)
        except (TypeError, ValueError) as exc:
            raise checks.ArgumentTypeError(f"frame must be a DataFrame or what pandas.DataFrame accepts "
                                           f"({exc})") from None
    if index is None:
        index = not isinstance(frame.index, pd.RangeIndex)
    elif not isinstance(index, bool):
        raise TypeError(f"index must be a bool or None, got {index!r}")
    if caption is not None and not isinstance(caption, str):
        raise TypeError(f"caption must be a string or None, got {type(caption).__name__}")
    return Shown(frame, int(digits), caption, index)
