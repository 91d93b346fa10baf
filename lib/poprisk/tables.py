"""Result tables for the page: a pandas DataFrame shown as an HTML table on the site and a LaTeX ``tabular``
in the PDF (every chapter that reports numbers).

The book's tables are tidy :class:`pandas.DataFrame` objects; :func:`show` is the one way a chapter puts one
on the page. It formats every float to a fixed number of significant digits (so a column reads the same on
a phone, a desktop and in print), hides the integer index, and returns an object with both an HTML and a
LaTeX representation: Jupyter, Colab and the site pick the HTML one, the PDF build the LaTeX one (no
monospace text walls split mid-number).
"""

from __future__ import annotations

import html
import math
import numbers

import pandas as pd

__all__ = ["format_number", "show", "Shown"]


def format_number(value, digits: int = 4) -> str:
    """``value`` with ``digits`` significant digits (fixed notation between 1e-4 and 1e6, else scientific);
    integers and non-numbers as themselves, ``None``/NaN as an en dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool) or not isinstance(value, numbers.Number):
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


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def _latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


class Shown:
    """A formatted table: ``_repr_html_`` for the site and notebooks, ``_repr_latex_`` for the PDF."""

    def __init__(self, frame: pd.DataFrame, digits: int, caption: str | None, index: bool):
        self.frame = frame
        self.digits = digits
        self.caption = caption
        self.index = index

    def _cells(self) -> tuple[list[str], list[list[str]]]:
        frame = self.frame.reset_index() if self.index else self.frame
        header = [str(c) for c in frame.columns]
        body = [[format_number(v, self.digits) for v in row] for row in frame.itertuples(index=False)]
        return header, body

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
        spec = "l" * len(header)
        lines = [r"\begin{center}", r"\small", rf"\begin{{tabular}}{{{spec}}}", r"\hline",
                 " & ".join(_latex_escape(h) for h in header) + r" \\", r"\hline"]
        lines += [" & ".join(_latex_escape(v) for v in row) + r" \\" for row in body]
        lines += [r"\hline", r"\end{tabular}", r"\end{center}"]
        return "\n".join(lines)

    def __repr__(self) -> str:
        header, body = self._cells()
        widths = [max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(header)]
        rows = [header, *body]
        return "\n".join("  ".join(v.rjust(w) for v, w in zip(r, widths)) for r in rows)


def show(frame, *, digits: int = 4, caption: str | None = None, index: bool | None = None) -> Shown:
    """Put ``frame`` (a DataFrame, or anything ``pandas.DataFrame`` accepts) on the page.

    ``digits``: significant digits of every float. ``index``: show the index as leading columns (default:
    only when it is not the default ``RangeIndex``). ``caption``: a line above the table.
    """
    if isinstance(digits, bool) or not isinstance(digits, numbers.Integral) or not 1 <= digits <= 12:
        raise ValueError(f"digits must be an integer in [1, 12], got {digits!r}")
    if not isinstance(frame, pd.DataFrame):
        frame = pd.DataFrame(frame)
    if index is None:
        index = not isinstance(frame.index, pd.RangeIndex)
    elif not isinstance(index, bool):
        raise TypeError(f"index must be a bool or None, got {index!r}")
    if caption is not None and not isinstance(caption, str):
        raise TypeError(f"caption must be a string or None, got {type(caption).__name__}")
    return Shown(frame, int(digits), caption, index)
