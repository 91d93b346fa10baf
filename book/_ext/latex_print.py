"""The PDF's own forms of two notebook elements (LaTeX builder only; the site is untouched).

* The source of a cell tagged ``hide-input`` (the plotting cells) is not printed: on the site it sits behind
  "Show code cell source", and a reader of paper cannot open it. Its output (the figure) stays.
* A table from ``poprisk.tables.show`` is set as the ``longtable`` its ``text/latex`` output holds. myst-nb
  sets every ``text/latex`` output as display math, and a table inside math can neither break across pages
  nor be set to the text width, so the output is passed to LaTeX as it is. A table stored by an older
  ``poprisk`` (a ``tabular`` in a ``center``, no caption) is re-set the same way, its caption taken from the
  same output's HTML form: the PDF does not depend on when a chapter was last executed.
"""

from __future__ import annotations

import html
import re

from docutils import nodes
from sphinx.transforms.post_transforms import SphinxPostTransform

from poprisk import tables

_OLD_TABLE = re.compile(r"^\\begin\{center\}\s*\\small\s*\\begin\{tabular\}\{l+\}\s*\\hline\s*(?P<head>.*?)"
                        r"\\\\\s*\\hline\s*(?P<body>.*?)\\hline\s*\\end\{tabular\}\s*\\end\{center\}$", re.S)
_UNESCAPE = {latex: char for char, latex in tables._LATEX_SPECIAL.items()}


def _cells(row: str) -> list[str]:
    pattern = "|".join(re.escape(k) for k in sorted(_UNESCAPE, key=len, reverse=True))
    return [re.sub(pattern, lambda m: _UNESCAPE[m.group(0)], c).strip() for c in re.split(r"(?<!\\)&", row)]


def _caption(bundle: nodes.Element) -> str | None:
    for raw in bundle.findall(nodes.raw):
        found = re.search(r"<caption>(.*?)</caption>", raw.astext(), re.S)
        if found:
            return html.unescape(found.group(1))
    return None


def table_latex(text: str, bundle: nodes.Element | None) -> str | None:
    """The LaTeX to pass on for a ``text/latex`` output, or None when it is not a poprisk table."""
    text = text.strip()
    if text.startswith(r"\begingroup") and r"\begin{longtable}" in text:
        return text
    old = _OLD_TABLE.match(text)
    if not old:
        return None
    header = _cells(old.group("head"))
    body = [_cells(row) for row in old.group("body").split("\\\\\n") if row.strip().rstrip("\\").strip()]
    numeric = [tables._all_numbers(col) for col in zip(*body)] if body else [False] * len(header)
    return tables.latex_table(header, body, numeric, _caption(bundle) if bundle is not None else None)


class PrintForms(SphinxPostTransform):
    default_priority = 3  # before myst-nb picks one output format (4): the HTML sibling is still there
    builders = ("latex",)

    def run(self, **kwargs) -> None:
        for cell in list(self.document.findall(nodes.container)):
            if cell.get("nb_element") == "cell_code" and cell.get("hide_mode") in ("input", "input+output"):
                cell.children = [c for c in cell.children if c.get("nb_element") != "cell_code_source"]
        for math in list(self.document.findall(nodes.math_block)):
            if "text_latex" not in math["classes"]:
                continue
            bundle = math.parent.parent if math.parent.get("mime_type") else None
            latex = table_latex(math.astext(), bundle)
            if latex is not None:
                math.replace_self(nodes.raw("", latex, format="latex"))


def setup(app):
    app.add_post_transform(PrintForms)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
