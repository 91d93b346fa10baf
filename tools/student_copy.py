"""Write the student copy of the book (``make student``): every notebook without its solutions.

* ``{solution}`` blocks in Markdown cells are removed;
* everything between ``{solution-start} LABEL`` and ``{solution-end}`` (prose and code) is removed, and the
  first code cell of that span becomes a stub ``raise NotImplementedError("Exercise LABEL: ...")``;
* outputs and execution counts are cleared (students run the notebooks themselves).

The result goes to ``student/`` (git-ignored), mirroring ``book/``. ``tests/test_student_copy.py`` checks that no
solution survives and that every stub has a matching solution in the instructor notebook.
"""

from __future__ import annotations

import argparse
import pathlib
import re
import sys

import nbformat

ROOT = pathlib.Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^(?P<fence>`{3,}|:{3,})\{(?P<kind>solution|solution-start|solution-end)\}\s*(?P<label>\S*)")
STUB = 'raise NotImplementedError("Exercise {label}: write your solution here")'


def strip_notebook(nb) -> tuple[nbformat.NotebookNode, list[str]]:
    """Return (student notebook, labels of the exercises whose code was replaced by a stub)."""
    cells, stubs = [], []
    gated = None  # label of the gated solution we are inside, if any
    stubbed = False
    for cell in nb.cells:
        if cell.cell_type == "code":
            if gated is not None or "solution" in cell.metadata.get("tags", []):
                if gated is not None and not stubbed:
                    cells.append(nbformat.v4.new_code_cell(STUB.format(label=gated)))
                    stubs.append(gated)
                    stubbed = True
                continue
            new = nbformat.v4.new_code_cell(cell.source)
            new.metadata = cell.metadata
            cells.append(new)
            continue
        kept, lines, i = [], cell.source.splitlines(), 0
        while i < len(lines):
            m = FENCE.match(lines[i])
            if m and m["kind"] == "solution":  # a whole block: skip to its closing fence
                i += 1
                while i < len(lines) and lines[i].strip() != m["fence"]:
                    i += 1
                i += 1
            elif m and m["kind"] == "solution-start":
                gated, stubbed = m["label"], False
                i += 1
                while i < len(lines) and lines[i].strip() != m["fence"]:
                    i += 1
                i += 1
            elif m and m["kind"] == "solution-end":
                gated = None
                i += 1
                while i < len(lines) and lines[i].strip() != m["fence"]:
                    i += 1
                i += 1
            else:
                if gated is None:
                    kept.append(lines[i])
                i += 1
        text = "\n".join(kept).strip()
        if text:
            cells.append(nbformat.v4.new_markdown_cell(text, metadata=cell.metadata))
    out = nbformat.v4.new_notebook(cells=cells, metadata=nb.metadata)
    return out, stubs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "student")
    args = parser.parse_args(argv)
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        student, stubs = strip_notebook(nbformat.read(path, as_version=4))
        target = args.out / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(student, target)
        print(f"{target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}: "
              f"{len(stubs)} code stub(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
