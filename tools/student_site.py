"""The student site (``make student-site``): the book without any solution or quiz answer.

Built from a generated source tree, not with sphinx-exercise's ``hide_solutions`` (which fails on gated
solutions and would still ship the solutions in every page's downloadable ``.ipynb`` source): the chapters are
the student copies (``tools/student_copy.py``: solutions removed, a "Your answer" cell after each exercise,
the stored outputs of the remaining cells kept), the course page loses its quiz answers, and the launch buttons
open the student Colab notebooks (branch ``colab-student``, filled by the release workflow from
``make colab``). Everything else (configuration, bibliography, extensions, static files) is the book's own.

    python tools/student_site.py [--site _build/html] [--out _build/student-site]
"""

from __future__ import annotations

import argparse
import pathlib
import re
import shutil
import subprocess
import sys

import nbformat
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from tools.notebook_text import exercise_names, read_notebook, site_index  # noqa: E402
from tools.student_copy import strip_notebook  # noqa: E402

STUDENT_BRANCH = "colab-student"
ANSWER_BLOCK = re.compile(r"^(`{3,}|:{3,})\{admonition\} Answer\n.*?^\1[ \t]*$\n?", re.M | re.S)


#: the file that marks a source folder as written (and so deletable) by this tool
MARKER = ".poprisk-student-site"


def strip_answers(text: str) -> str:
    """Remove the folded ``{admonition} Answer`` blocks (the self-check quiz of the course page)."""
    return ANSWER_BLOCK.sub("", text)


def source_tree(site: pathlib.Path, src: pathlib.Path) -> pathlib.Path:
    """Write the student edition's sources to ``src`` and return it.

    The inputs are checked first, and an existing ``src`` is deleted only when it holds :data:`MARKER` (it
    was written by this tool): a mistyped ``--out`` never removes someone's folder.
    """
    if not (site / "index.html").is_file() and not any(site.glob("**/*.html")):
        raise SystemExit(f"--site {site}: no built instructor site there (run `make book` first)")
    if src.exists() or src.is_symlink():
        if src.is_symlink() or not (src / MARKER).is_file():
            raise SystemExit(f"{src} exists and was not made by tools/student_site.py (no {MARKER}); "
                             "remove it yourself or choose another --out")
        shutil.rmtree(src)
    src.mkdir(parents=True)
    (src / MARKER).write_text("made by tools/student_site.py; deleted and rewritten by each run\n")
    for name in ("_toc.yml", "references.bib"):
        shutil.copy(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("*.ipynb", "__pycache__", ".ipynb_checkpoints")
    shutil.copytree(ROOT / "book", src / "book", ignore=ignore)
    shutil.copytree(ROOT / "lib" / "poprisk", src / "lib" / "poprisk", ignore=ignore)  # the version string
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    cfg["title"] = f"{cfg['title']} (student edition)"
    cfg["repository"]["branch"] = STUDENT_BRANCH
    (src / "_config.yml").write_text(yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True))
    names = exercise_names(site_index(site))
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        try:
            nb, _ = strip_notebook(read_notebook(path), names, keep_outputs=True)
        except (ValueError, KeyError) as exc:
            raise SystemExit(f"{path}: {exc}") from None
        nbformat.write(nb, src / "book" / path.name)
    for page in (src / "book").glob("*.md"):
        page.write_text(strip_answers(page.read_text()))
    return src


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", type=pathlib.Path, default=ROOT / "_build" / "html",
                        help="the built instructor site (exercise numbers)")
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "_build" / "student-site")
    args = parser.parse_args(argv)
    src = source_tree(args.site, args.out / "src")
    jb = pathlib.Path(sys.executable).with_name("jupyter-book")
    proc = subprocess.run([str(jb), "build", str(src), "--path-output", str(args.out), "-W", "-n", "--keep-going"])
    if proc.returncode == 0:
        print(f"The student site is at {args.out / '_build' / 'html' / 'index.html'}")
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
