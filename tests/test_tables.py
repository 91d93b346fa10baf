"""poprisk.tables: number formatting and the two renderings of a result table."""

import json
import math
import re
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, strategies as st

from poprisk import column_names, protocol, tables

BOOK = Path(__file__).resolve().parents[1] / "book"


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


# --- reader names and one number format per column (issue 21) -------------------------------------------

NUMBER = re.compile(r"^[−+-]?\d+(?:\.(\d+))?(e[−+-]?\d+)?$")


def number_format(cell: str):
    """``("fixed", 4)`` for "0.0500", ``("sci", 3)`` for "1.000e−07", ``("fixed", 0)`` for "12"; None for text."""
    m = NUMBER.match(cell)
    return None if m is None else ("sci" if m.group(2) else "fixed", len(m.group(1) or ""))


def mixed_format_columns(header: list[str], body: list[list[str]]) -> list[str]:
    """Columns of numbers (en dashes and infinities aside) printed in more than one format. A column that also
    holds text is a settings column whose rows are different quantities, and is not one quantity's column."""
    out = []
    for j, name in enumerate(header):
        cells = [row[j] for row in body if row[j] not in ("–", "∞", "−∞", "")]
        formats = {number_format(c) for c in cells}
        if None not in formats and len(formats) > 1:
            out.append(f"{name!r}: {cells[:4]}")
    return out


class _Tables(HTMLParser):
    """Headers and cell texts of every ``<table>`` in an HTML fragment."""

    def __init__(self):
        super().__init__()
        self.tables, self._cell, self._row = [], None, None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append(([], []))
        elif tag == "tr":
            self._row = []
        elif tag in ("th", "td"):
            self._cell = ""

    def handle_endtag(self, tag):
        if tag in ("th", "td") and self._cell is not None:
            self._row.append((tag, self._cell.strip()))
            self._cell = None
        elif tag == "tr" and self._row:
            header, body = self.tables[-1]
            if all(t == "th" for t, _ in self._row) and not header:
                header.extend(c for _, c in self._row)
            else:
                body.append([c for _, c in self._row])
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def html_tables(fragment: str) -> list[tuple[list[str], list[list[str]]]]:
    parser = _Tables()
    parser.feed(fragment)
    return parser.tables


def test_code_identifiers_get_reader_names_with_units():
    assert column_names.reader_name("train_ce") == "train CE (nats)"
    assert column_names.reader_name("test_ce_cal_mean") == "calibrated test CE (nats)"
    assert column_names.reader_name("test_ce_lo") == "test CE, 95% low (nats)"
    assert column_names.reader_name("H_bound_nats") == "H(Ŵ) bound (nats)"
    assert column_names.reader_name("gap_change") == "gap change (nats)"
    assert column_names.reader_name("some_new_name") == "some new name"  # never an identifier on the page
    for notation in ("D_q", "L_S (0–1)", "σ_w²", "gap", "test CE (nats)", "R_q (nats)"):
        assert column_names.reader_name(notation) == notation
    with pytest.raises(TypeError, match="name"):
        column_names.reader_name(3)


def test_every_library_table_term_has_a_reader_name():
    terms = [t for t in protocol.DECOMPOSITION_TERMS if column_names.is_code_identifier(t)]
    assert len(terms) >= 4 and all(t in column_names.READER_NAMES for t in terms)


@pytest.mark.parametrize("values, digits, cells", [
    ([0.4771, 0.0005, None], 4, ["0.47710", "0.00050", "–"]),
    ([0, 0.05, -0.01667, 1.2], 4, ["0.000", "0.050", "−0.017", "1.200"]),  # the ch01 toy column
    ([285713.0, 1.07e6], 3, ["285713", "1070000"]),  # whole numbers, never "1.07e+06" beside "285713"
    ([2.5e-7, 1e-6], 3, ["2.50e−07", "1.00e−06"]),
    ([0.5, float("inf")], 3, ["0.500", "∞"]),
    (["uniform", 0.25, 3], 3, ["uniform", "0.250", "3"]),  # a settings column: each value as itself
])
def test_format_column_uses_one_format(values, digits, cells):
    assert tables.format_column(values, digits) == cells


@given(st.lists(st.floats(min_value=-1e5, max_value=1e5, allow_nan=False), min_size=1, max_size=8),
       st.integers(1, 6))
def test_fresh_tables_have_one_format_per_column_and_no_identifier(values, digits):
    df = pd.DataFrame({"train_ce_mean": values, "method": ["hw"] * len(values)})
    ((header, body),) = html_tables(tables.show(df, digits=digits)._repr_html_())
    assert header == ["train CE (nats)", "method"]
    assert not mixed_format_columns(header, body)
    assert not any(column_names.is_code_identifier(h) for h in header)


def test_the_index_name_gets_a_reader_name_too():
    df = pd.DataFrame({"test_ce": [0.4, 0.35]}, index=pd.Index([0.1, 0.5], name="prune_ratio"))
    ((header, body),) = html_tables(tables.show(df)._repr_html_())
    assert header == ["pruned share", "test CE (nats)"] and body[0] == ["0.1000", "0.4000"]
    assert "pruned share" in repr(tables.show(df)) and "pruned share" in tables.show(df)._repr_latex_()


def stored_tables():
    for path in sorted(BOOK.glob("*.ipynb")):
        for n, cell in enumerate(json.loads(path.read_text())["cells"]):
            for output in cell.get("outputs", []):
                fragment = "".join(output.get("data", {}).get("text/html", ""))
                for header, body in html_tables(fragment):
                    yield f"{path.name} cell {n}", header, body


def test_stored_tables_have_reader_headers_and_one_format_per_column():
    """Every table in the stored outputs (what the site shows): no snake_case identifier as a header and
    one number format per column. Stored outputs follow :func:`poprisk.tables.show` once re-executed."""
    found = list(stored_tables())
    assert len(found) > 50  # the parser sees the book's tables
    identifiers = [f"{where}: {h!r}" for where, header, _ in found for h in header
                   if column_names.is_code_identifier(h)]
    assert not identifiers, f"{len(identifiers)} code identifiers as headers: {identifiers[:8]}"
    mixed = [f"{where}: {c}" for where, header, body in found for c in mixed_format_columns(header, body)]
    assert not mixed, f"{len(mixed)} columns with more than one number format: {mixed[:6]}"
