"""poprisk.tables: number formatting and the two renderings of a result table."""

import math

import pandas as pd
import pytest
from hypothesis import given, strategies as st

from poprisk import tables


@pytest.mark.parametrize("value, text", [(0.123456, "0.1235"), (12.3456, "12.35"), (1234567.0, "1.235e+06"),
                                         (-0.5, "−0.5000"), (3, "3"), (None, "–"), (math.nan, "–"),
                                         (1e-7, "1.000e−07"), ("hw", "hw"), (0.0, "0")])
def test_format_number(value, text):
    assert tables.format_number(value) == text


@given(st.floats(min_value=1e-4, max_value=1e5, allow_nan=False))
def test_format_number_keeps_the_significant_digits(x):
    assert float(tables.format_number(x, 6).replace("−", "-")) == pytest.approx(x, rel=1e-5)


def test_html_and_latex_hold_every_cell():
    df = pd.DataFrame({"method": ["k_means", "hw & co"], "test CE": [0.25184, 0.40901], "n": [5, 5]})
    shown = tables.show(df, caption="Two methods")
    html = shown._repr_html_()
    assert html.count("<tr>") == 3 and "0.2518" in html and "hw &amp; co" in html and "<caption>" in html
    latex = shown._repr_latex_()
    assert r"\begin{longtable}" in latex and r"k\_\allowbreak{}means" in latex and r"hw \& co" in latex
    assert "0.4090" in latex
    assert "index" not in html  # a RangeIndex is not shown


def test_named_index_is_shown():
    df = pd.DataFrame({"x": [1.0]}, index=pd.Index(["a"], name="row"))
    assert "<th style=\"text-align:left\">row</th>" in tables.show(df)._repr_html_()


@pytest.mark.parametrize("kwargs, exc", [(dict(digits=0), ValueError), (dict(digits=True), ValueError),
                                         (dict(index="yes"), TypeError), (dict(caption=3), TypeError)])
def test_bad_arguments_are_named(kwargs, exc):
    with pytest.raises(exc, match=next(iter(kwargs))):
        tables.show(pd.DataFrame({"x": [1]}), **kwargs)
