"""Write the student copy of the book (``make student``): every notebook without its solutions.

* ``{solution}`` blocks in Markdown cells are removed;
* everything between ``{solution-start} LABEL`` and ``{solution-end}`` (prose and code) is removed, and the
  first code cell of that span becomes a stub ``raise NotImplementedError("Exercise 5: ...")``;
* after every exercise comes a "Your answer" Markdown cell (written answers; the computational ones also get
  the code stub where the solution was);
* outputs and execution counts are cleared (students run the notebooks themselves).

Exercises are named as the site numbers them ("Exercise 5"), read from the built site (``make book``), never by
their source labels. The result goes to ``student/`` (git-ignored), mirroring ``book/``.
``tests/test_student_copy.py`` checks that no solution survives and that every stub and answer cell names an
exercise of the instructor notebook by its site number. ``tools/colab_notebooks.py`` uses the same stripping for
the Colab notebooks (there with ``keep_outputs=True`` for readers); what both need from the built site lives in
``tools/notebook_text.py``.
"""

from __future__ import annotations

import argparse
import pathlib
import re
import sys

import nbformat

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from tools.notebook_text import exercise_names, read_notebook, site_index  # noqa: E402
FENCE = re.compile(r"^(?P<fence>`{3,}|:{3,})\{(?P<kind>solution|solution-start|solution-end|exercise)\}\s*(?P<label>\S*)")
LABEL = re.compile(r"^:label:\s*(\S+)")
STUB = 'raise NotImplementedError("{name}: write your solution here")'
ANSWER = "**Your answer ({name}).** *Write your answer here (Markdown and `$…$` math work).*"


def strip_notebook(nb, names: dict[str, str] | None = None, *, keep_outputs: bool = False,
                   answer_cells: bool = True) -> tuple[nbformat.NotebookNode, list[str]]:
    """Return (student notebook, labels of the exercises whose code was replaced by a stub).

    ``names`` maps exercise labels to the site's names ("Exercise 5"); a label missing from it is an error
    (a stale site build), except that ``names=None`` keeps the labels (for tests of the stripping alone).
    """
    def name(label):
        if names is None:
            return f"Exercise {label}"
        if label not in names:
            raise KeyError(f"exercise {label!r} is not on the built site: rebuild it (make book)")
        return names[label]

    cells, stubs = [], []
    gated = None  # label of the gated solution we are inside, if any
    stubbed = False

    def past(lines, start, m, index):
        """The index just past the closing fence of the block opened by ``m`` on line ``start``, or an
        error: an unclosed fence would otherwise swallow the rest of the cell silently."""
        for i in range(start + 1, len(lines)):
            if lines[i].strip() == m["fence"]:
                return i + 1
        raise ValueError(f"cell {index}: the {{{m['kind']}}} {m['label'] or ''} fence {m['fence']} opened "
                         f"on line {start + 1} is never closed")

    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "raw":
            if gated is None:
                cells.append(nbformat.from_dict(dict(cell)))
            continue
        if cell.cell_type == "code":
            if gated is not None or "solution" in cell.metadata.get("tags", []):
                if gated is not None and not stubbed:
                    cells.append(nbformat.v4.new_code_cell(STUB.format(name=name(gated))))
                    stubs.append(gated)
                    stubbed = True
                continue
            new = nbformat.v4.new_code_cell(cell.source)
            new.metadata = cell.metadata
            if keep_outputs:
                new.outputs, new.execution_count = cell.outputs, cell.execution_count
            cells.append(new)
            continue
        kept, lines, i = [], cell.source.splitlines(), 0
        pieces = []  # Markdown pieces of this cell, split after each exercise for its answer cell

        def flush():
            text = "\n".join(kept).strip()
            if text:
                piece = nbformat.v4.new_markdown_cell(text, metadata=cell.metadata)
                if cell.get("attachments") and "attachment:" in text:  # images pasted into the cell
                    piece.attachments = cell.attachments
                pieces.append(piece)
            kept.clear()

        while i < len(lines):
            m = FENCE.match(lines[i])
            if not m:
                if gated is None:
                    kept.append(lines[i])
                i += 1
                continue
            start, i = i, past(lines, i, m, index)  # every fenced block is read whole
            if m["kind"] == "exercise" and gated is None:
                kept.extend(lines[start:i])
                label = next((hit[1] for hit in map(LABEL.match, lines[start + 1:i - 1]) if hit), None)
                if answer_cells and label:
                    flush()
                    pieces.append(nbformat.v4.new_markdown_cell(ANSWER.format(name=name(label))))
            elif m["kind"] == "solution-start":
                gated, stubbed = m["label"], False
            elif m["kind"] == "solution-end":
                gated = None
            # a {solution} block is dropped whole
        flush()
        cells.extend(pieces)
    if gated is not None:
        raise ValueError(f"the {{solution-start}} {gated} is never ended by a {{solution-end}}: everything "
                         "after it would be dropped")
    out = nbformat.v4.new_notebook(cells=cells, metadata=nb.metadata)
    return out, stubs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "student")
    parser.add_argument("--site", type=pathlib.Path, default=ROOT / "_build" / "html",
                        help="the built site whose exercise numbers the stubs use (make book)")
    parser.add_argument("--keep-outputs", action="store_true", help="keep stored outputs (student site)")
    args = parser.parse_args(argv)
    names = exercise_names(site_index(args.site))
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        try:
            student, stubs = strip_notebook(read_notebook(path), names, keep_outputs=args.keep_outputs)
        except (ValueError, KeyError) as exc:
            raise SystemExit(f"{path}: {exc}") from exc
        target = args.out / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(student, target)
        print(f"{target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}: "
              f"{len(stubs)} code stub(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
