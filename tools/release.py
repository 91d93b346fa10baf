"""Version stamping and releases: one version string for the book and ``poprisk``.

The version lives in one place, ``__version__`` in ``lib/poprisk/__init__.py`` (``pyproject.toml`` reads it).
A release ``vX.Y.Z`` is a git tag; every notebook's Colab bootstrap cell installs ``poprisk`` from that tag,
so a saved Colab copy or a student copy keeps working with the library it was written for.

    python tools/release.py stamp [NOTEBOOK ...]   # bootstrap cells + Colab GPU metadata (default: book/*.ipynb)
    python tools/release.py check                  # exit 1 if a notebook is not stamped for the current version
    python tools/release.py release 0.2.0          # make release VERSION=0.2.0: version, stamp, changelog,
                                                   # CITATION.cff, one commit and the tag v0.2.0

Stamping touches only cell 0 (the bootstrap; inserted if a notebook has none) and the notebook metadata, and
is idempotent: a stamped notebook is written back byte for byte unchanged.
"""

from __future__ import annotations

import argparse
import datetime
import pathlib
import re
import subprocess
import sys

import nbformat

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from tools.new_notebook import bootstrap_cell, is_bootstrap, set_gpu_runtime, version  # noqa: E402

INIT = ROOT / "lib" / "poprisk" / "__init__.py"
CHANGELOG = ROOT / "CHANGELOG.md"
CITATION = ROOT / "CITATION.cff"
# Chapters that train a network: Colab opens them on a GPU runtime.
GPU_CHAPTERS = ("ch01", "ch07", "ch08", "ch09", "ch10")
# ASCII digits only (``\d`` also matches other scripts' digits), no leading zeros, matched with fullmatch:
# ``$`` would let a trailing newline through, which then breaks the ``__version__`` line of the package.
SEMVER = re.compile(r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)", re.ASCII)


class ReleaseError(ValueError):
    """A release that cannot go ahead; raised before any file is changed."""


def check_version(new) -> str:
    """``new`` if it is a plain ``X.Y.Z`` version (ASCII digits, no leading zeros, nothing around it)."""
    if not isinstance(new, str):
        raise TypeError(f"VERSION must be a string like 1.2.3, got {new!r} ({type(new).__name__})")
    if not SEMVER.fullmatch(new):
        raise ReleaseError(f"VERSION must look like 1.2.3 (ASCII digits, no leading zeros, nothing else), "
                           f"got {new!r}")
    return new


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)


def check_repository(ref: str) -> None:
    """Refuse (before anything changes) a tag ``ref`` that exists already or a working tree with changes."""
    inside = _git("rev-parse", "--is-inside-work-tree")
    if inside.returncode != 0 or inside.stdout.strip() != "true":
        raise ReleaseError(f"{ROOT} is not a git working tree: cannot commit and tag a release")
    if _git("rev-parse", "-q", "--verify", f"refs/tags/{ref}").returncode == 0:
        raise ReleaseError(f"the tag {ref} exists already: choose a new version (nothing was changed)")
    status = _git("status", "--porcelain", "--untracked-files=no")
    if status.returncode != 0:
        raise ReleaseError(f"git status failed: {status.stderr.strip()}")
    if status.stdout.strip():
        raise ReleaseError("the working tree has uncommitted changes; commit or stash them first (nothing was "
                           "changed):\n" + status.stdout.rstrip())


def wants_gpu(path: pathlib.Path) -> bool:
    return path.name.split("_", 1)[0] in GPU_CHAPTERS


def book_notebooks() -> list[pathlib.Path]:
    return sorted((ROOT / "book").glob("ch*.ipynb"))


def stamp_notebook(nb, ref: str, gpu: bool) -> None:
    """Stamp ``nb`` in place: cell 0 becomes the bootstrap pinned to ``ref``; Colab GPU metadata set or cleared."""
    cell = bootstrap_cell(ref)
    if nb.cells and is_bootstrap(nb.cells[0]):
        first = nb.cells[0]
        first.source = cell.source
        tags = first.metadata.setdefault("tags", [])
        if "remove-cell" not in tags:
            tags.append("remove-cell")
    else:
        nb.cells.insert(0, cell)
    set_gpu_runtime(nb, gpu)


def stamp(paths, ref: str) -> list[pathlib.Path]:
    """Stamp every notebook of ``paths``; return those whose file changed."""
    changed = []
    for path in map(pathlib.Path, paths):
        before = path.read_text()
        nb = nbformat.reads(before, as_version=4)
        stamp_notebook(nb, ref, wants_gpu(path))
        after = nbformat.writes(nb) + "\n"
        if after != before:
            path.write_text(after)
            changed.append(path)
    return changed


def unstamped(paths, ref: str) -> list[str]:
    """A message for every notebook whose bootstrap or GPU metadata is not what :func:`stamp` would write."""
    problems = []
    for path in map(pathlib.Path, paths):
        nb = nbformat.read(path, as_version=4)
        if not nb.cells or nb.cells[0].source != bootstrap_cell(ref).source:
            problems.append(f"{path.name}: cell 0 is not the bootstrap pinned to {ref}")
        if (nb.metadata.get("accelerator") == "GPU") != wants_gpu(path):
            problems.append(f"{path.name}: Colab GPU metadata {'missing' if wants_gpu(path) else 'unexpected'}")
    return problems


def set_version(new: str) -> None:
    text = INIT.read_text()
    INIT.write_text(re.sub(r'^__version__ = "[^"]+"$', f'__version__ = "{new}"', text, count=1, flags=re.M))


def update_changelog(new: str, date: str) -> None:
    """Turn the ``## [Unreleased]`` section into ``## [new] - date`` under a fresh, empty Unreleased heading."""
    text = CHANGELOG.read_text()
    if f"## [{new}]" in text:
        return
    if "## [Unreleased]" not in text:
        raise ValueError("CHANGELOG.md has no '## [Unreleased]' section to release")
    CHANGELOG.write_text(text.replace("## [Unreleased]", f"## [Unreleased]\n\n## [{new}] - {date}", 1))


def update_citation(new: str, date: str) -> None:
    text = CITATION.read_text()
    text = re.sub(r"^version: .*$", f'version: "{new}"', text, count=1, flags=re.M)
    if re.search(r"^date-released: ", text, re.M):
        text = re.sub(r"^date-released: .*$", f'date-released: "{date}"', text, count=1, flags=re.M)
    else:
        text = re.sub(r"^(version: .*)$", rf'\1\ndate-released: "{date}"', text, count=1, flags=re.M)
    CITATION.write_text(text)


def release(new: str, *, tag: bool = True, date: str | None = None) -> str:
    """Set the version, stamp every notebook, date the changelog and CITATION.cff, commit and tag ``v<new>``."""
    ref = f"v{check_version(new)}"
    if tag:
        check_repository(ref)
    date = date or datetime.date.today().isoformat()
    set_version(new)
    stamp(book_notebooks(), ref)
    update_changelog(new, date)
    update_citation(new, date)
    if tag:
        files = [str(p.relative_to(ROOT)) for p in (INIT, CHANGELOG, CITATION, *book_notebooks())]
        subprocess.run(["git", "add", *files], cwd=ROOT, check=True)
        subprocess.run(["git", "commit", "-m", f"Release {ref}", "--", *files], cwd=ROOT, check=True)
        subprocess.run(["git", "tag", "-a", ref, "-m", f"Release {ref}"], cwd=ROOT, check=True)
    return ref


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_stamp = sub.add_parser("stamp", help="stamp bootstrap cells and GPU metadata")
    p_stamp.add_argument("notebooks", nargs="*", type=pathlib.Path)
    p_stamp.add_argument("--ref", help="git ref to pin (default: v + poprisk.__version__)")
    sub.add_parser("check", help="fail if a notebook is not stamped for the current version")
    p_rel = sub.add_parser("release", help="version, stamp, changelog, CITATION.cff, commit and tag")
    p_rel.add_argument("version")
    p_rel.add_argument("--no-tag", action="store_true", help="change the files but neither commit nor tag")
    args = parser.parse_args(argv)
    if args.command == "stamp":
        changed = stamp(args.notebooks or book_notebooks(), args.ref or f"v{version()}")
        print(f"stamped {len(changed)} notebook(s): {', '.join(p.name for p in changed) or 'none changed'}")
    elif args.command == "check":
        problems = unstamped(book_notebooks(), f"v{version()}")
        print("\n".join(problems) or f"every notebook is stamped for v{version()}")
        return 1 if problems else 0
    else:
        try:
            print(f"released {release(args.version, tag=not args.no_tag)}")
        except (ReleaseError, TypeError) as exc:
            print(f"release: {exc}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
