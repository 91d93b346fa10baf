"""Sphinx extension (HTML): a result table's caption above its scrolling box, not inside it (issue 21).

``poprisk.tables.show`` writes ``<div class="poprisk-table"><table><caption>…</caption>…</table></div>`` into the
stored notebook outputs. A caption inside the table scrolls with it, so a table wider than the column had its
caption cut at the right edge too. At build time every such output becomes
``<div class="poprisk-table"><p class="poprisk-caption" id=…>…</p><div class="poprisk-scroll" tabindex="0"
role="region" aria-labelledby=…><table aria-labelledby=…>…</table></div></div>``: the caption stays named as the
table's label (for screen readers), and the scroll box has a tab stop (keyboards reach it) and its scroll cue
(book/_static/poprisk.css). Notebooks and the library are untouched; the PDF uses ``_repr_latex_``.

Every body cell also gets its column's header as ``data-label`` (and the table explicit ARIA table roles): on a
phone, a table wider than the screen is shown as one card per row, each value beside its column's name
(book/_static/poprisk-tables.js decides which tables, book/_static/poprisk.css draws the cards; the roles keep
the table a table for screen readers once the cards' CSS makes its parts blocks).
"""

from __future__ import annotations

import html as _html
import re

TABLE = re.compile(r'<div class="poprisk-table"><table class="table">(?:<caption>(.*?)</caption>)?(.*?)</table></div>',
                   re.S)


HEADER = re.compile(r"<th\b[^>]*>(.*?)</th>", re.S)
ROW = re.compile(r"<tr>(.*?)</tr>", re.S)
CELL = re.compile(r"<(td|th)\b")


def labelled(body: str) -> str:
    """A table's ``<thead>…<tbody>…`` with ARIA roles, and each body cell labelled by its column's header."""
    head, sep, rows = body.partition("</thead>")
    labels = [_html.escape(_html.unescape(re.sub(r"<[^>]+>", "", h)).strip(), quote=True)
              for h in HEADER.findall(head)]
    head = CELL.sub(lambda m: f'<{m.group(1)} role="columnheader"', head).replace("<tr>", '<tr role="row">')

    def row(m: re.Match) -> str:
        cells = iter(labels)
        return '<tr role="row">' + CELL.sub(
            lambda c: f'<{c.group(1)} role="cell" data-label="{next(cells, "")}"', m.group(1)) + "</tr>"

    rows = ROW.sub(row, rows)
    return (head.replace("<thead>", '<thead role="rowgroup">') + sep
            + rows.replace("<tbody>", '<tbody role="rowgroup">'))


def rewrite(html: str, prefix: str) -> str:
    """``html`` with each poprisk table's caption moved before a labelled scroll box (ids ``prefix-N``)."""
    count = 0

    def one(m: re.Match) -> str:
        nonlocal count
        count += 1
        caption, body = m.group(1), labelled(m.group(2))
        if caption is None:
            return (f'<div class="poprisk-table"><div class="poprisk-scroll" tabindex="0" role="region" '
                    f'aria-label="table"><table class="table" role="table">{body}</table></div></div>')
        ident = f"{prefix}-{count}"
        return (f'<div class="poprisk-table"><p class="poprisk-caption" id="{ident}">{caption}</p>'
                f'<div class="poprisk-scroll" tabindex="0" role="region" aria-labelledby="{ident}">'
                f'<table class="table" role="table" aria-labelledby="{ident}">{body}</table></div></div>')

    return TABLE.sub(one, html)


def move_captions(app, doctree, docname) -> None:
    from docutils import nodes

    if app.builder.format != "html":
        return
    prefix = "poprisk-table-" + re.sub(r"[^A-Za-z0-9]+", "-", docname)
    for i, raw in enumerate(doctree.findall(nodes.raw)):
        if "html" in raw.get("format", "").split() and 'class="poprisk-table"' in raw.astext():
            new = rewrite(raw.astext(), f"{prefix}-{i}")
            raw.replace(raw.children[0], nodes.Text(new))


def setup(app):
    app.connect("doctree-resolved", move_captions)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
