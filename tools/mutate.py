"""Mutation runner: show that every listed break of the book's mathematics is caught (``make test-mutations``).

Each ``tools/mutations/*.toml`` is a data list of mutations, one ``[[mutation]]`` table each::

    [[mutation]]
    id = "ch10-drop-flag-bit"
    target = "lib/poprisk/subspace.py"
    find = "return 1 + bits"
    replace = "return bits"
    why = "the description without its flag bit"
    tests = ["tests/test_subspace.py"]              # optional
    notebooks = ["book/ch10_what_theory_explains.ipynb"]  # optional

(data, not code: the lists are rows of one shape, which is what a table is for). Every row goes through the
one factory here, ``mutation(id, target, find, replace, why, tests=(), notebooks=())``, which checks it.

``target`` is a library file or a notebook (relative to the repository root), ``find`` the exact source
text (exactly once in the target; in a notebook, in its code cells), ``replace`` the mutated text, ``why``
the error it stands for, ``tests`` the unit tests and ``notebooks`` the chapters that must catch it.

For each mutation the runner copies the working tree (without ``.venv``, ``_build``, ``.git`` and caches) to a
scratch folder, replaces the single occurrence of ``find`` in ``target`` (for a notebook: in its code cells),
and runs pytest there on the named unit tests and, under nbval in FAST mode, the named notebooks (a notebook
target is always run) with ``PYTHONPATH`` pointing at the scratch copy's ``lib``. The mutation is CAUGHT iff
that run exits non-zero; SURVIVED if it passes. A ``find`` that does not occur exactly once, or a pytest usage
error / empty collection, is an ERROR of the list, not a catch. Before the mutations, the unmutated tree must
pass the same tests (the baseline), so that a catch is never a test that fails anyway.

Usage: ``python tools/mutate.py [--only ID ...] [--list] [--jobs N] [FILE ...]``; exit status 0 iff every
mutation is caught.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tools import timeouts  # noqa: E402

MUTATION_DIR = ROOT / "tools" / "mutations"
FIELDS = ("id", "target", "find", "replace", "why", "tests", "notebooks")
SKIP = {".venv", "_build", ".git", "student", "__pycache__", ".pytest_cache", ".hypothesis",
        ".ipynb_checkpoints", ".cache", "data"}
NBVAL = ["--nbval-lax", "--nbval-current-env", "--nbval-sanitize-with", "tests/nbval_sanitize.cfg"]
# pytest's exit codes that mean "the tests ran and some failed or broke": a mutation caught.
# 4 (usage error) and 5 (nothing collected) mean the list names something wrong.
LIST_ERRORS = {4: "pytest usage error", 5: "no tests collected"}


def mutation(id: str, target: str, find: str, replace: str, why: str, tests=(), notebooks=()) -> dict:
    """One mutation of a list: replace ``find`` by ``replace`` in ``target``; ``tests`` and ``notebooks``
    must then fail (every row of ``tools/mutations/*.toml`` goes through it, so the lists share one format)."""
    for name, value in (("id", id), ("target", target), ("find", find), ("replace", replace), ("why", why)):
        if not isinstance(value, str) or not value:
            raise TypeError(f"mutation {id!r}: `{name}` must be a non-empty string, got {value!r}")
    for name, value in (("tests", tests), ("notebooks", notebooks)):
        if isinstance(value, str):
            raise TypeError(f"mutation {id!r}: `{name}` must be a sequence of paths, not one string")
    return dict(id=id, target=target, find=find, replace=replace, why=why, tests=list(tests),
                notebooks=list(notebooks))


def load(files: list[pathlib.Path]) -> list[dict]:
    """Every mutation of ``files``, each checked for its fields, a unique id and an existing target."""
    found, seen = [], set()
    for path in files:
        try:
            rows = tomllib.loads(pathlib.Path(path).read_text(encoding="utf-8")).get("mutation", [])
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ValueError(f"{path}: not a readable mutation list ({exc})") from None
        for row in rows:
            missing = [f for f in FIELDS[:5] if f not in row]
            unknown = sorted(set(row) - set(FIELDS))
            if missing or unknown:
                raise ValueError(f"{path.name}: mutation {row.get('id')!r} lacks {missing} / has unknown "
                                 f"{unknown}")
            try:
                m = mutation(**row)
            except TypeError as exc:
                raise ValueError(f"{path.name}: {exc}") from None
            if m["id"] in seen:
                raise ValueError(f"{path.name}: duplicate mutation id {m['id']!r}")
            if not (ROOT / m["target"]).is_file():
                raise ValueError(f"{m['id']}: target {m['target']!r} is not a file")
            if m["find"] == m["replace"]:
                raise ValueError(f"{m['id']}: replace equals find (not a mutation)")
            if not m["tests"] and not m["notebooks"] and not m["target"].endswith(".ipynb"):
                raise ValueError(f"{m['id']}: names no tests and no notebooks")
            seen.add(m["id"])
            found.append(dict(m, source=path.name))
    return found


def _code_cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def occurrences(m: dict, root: pathlib.Path = ROOT) -> int:
    """How often ``m['find']`` occurs in its target (a notebook: summed over its code cells)."""
    path = root / m["target"]
    if path.suffix == ".ipynb":
        nb = json.loads(path.read_text())
        return sum("".join(c["source"]).count(m["find"]) for c in _code_cells(nb))
    return path.read_text().count(m["find"])


def apply(m: dict, root: pathlib.Path) -> None:
    """Replace the one occurrence of ``m['find']`` in the target below ``root`` (ValueError unless once)."""
    n = occurrences(m, root)
    if n != 1:
        raise ValueError(f"{m['id']}: `find` occurs {n} times in {m['target']} (must be exactly once)")
    path = root / m["target"]
    if path.suffix == ".ipynb":
        nb = json.loads(path.read_text())
        for cell in _code_cells(nb):
            src = "".join(cell["source"])
            if m["find"] in src:
                cell["source"] = src.replace(m["find"], m["replace"])
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    else:
        path.write_text(path.read_text().replace(m["find"], m["replace"]))


def scratch_copy(dest: pathlib.Path) -> pathlib.Path:
    """The working tree (without environments, builds, git data and caches) copied to ``dest``."""
    shutil.copytree(ROOT, dest, symlinks=True, ignore=lambda _d, names: [n for n in names if n in SKIP])
    if (ROOT / "data").is_dir():  # downloaded data sets: shared read-only, too large to copy
        (dest / "data").symlink_to(ROOT / "data")
    return dest


def pytest_args(m: dict) -> list[str]:
    notebooks = list(m["notebooks"])
    if m["target"].endswith(".ipynb") and m["target"] not in notebooks:
        notebooks.append(m["target"])
    return [*m["tests"], *notebooks] + (NBVAL if notebooks else [])


def run_pytest(tree: pathlib.Path, args: list[str], cache: pathlib.Path, timeout: float) -> tuple[int, str]:
    env = dict(os.environ, PYTHONPATH=str(tree / "lib"), POPRISK_FAST="1", POPRISK_PROGRESS="0",
               POPRISK_CACHE=str(cache), PYTHONDONTWRITEBYTECODE="1")
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *args]
    try:
        proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return -1, f"timed out after {timeout:.0f} s"
    return proc.returncode, (proc.stdout + proc.stderr)[-3000:]


def run_one(m: dict, cache: pathlib.Path, timeout: float, keep: bool) -> dict:
    """Apply ``m`` to a scratch copy and run its tests: the result row."""
    start = time.monotonic()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f"mutate-{m['id']}-"))
    try:
        tree = scratch_copy(tmp / "tree")
        apply(m, tree)
        code, log = run_pytest(tree, pytest_args(m), cache, timeout)
    except ValueError as exc:
        code, log = -2, str(exc)
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
    if code == 0:
        result = "SURVIVED"
    elif code in LIST_ERRORS or code < 0:
        result = "ERROR"
        log = LIST_ERRORS.get(code, "") + "\n" + log
    else:
        result = "caught"
    return dict(id=m["id"], target=m["target"], result=result, exit=code,
                seconds=time.monotonic() - start, why=m["why"], log=log)


def baseline(mutations: list[dict], cache: pathlib.Path, timeout: float) -> tuple[int, str]:
    """The unmutated tree under the union of every mutation's tests and notebooks."""
    args, seen = [], set()
    for m in mutations:
        for a in pytest_args(m):
            if a not in seen and a not in NBVAL:
                seen.add(a)
                args.append(a)
    notebooks = any(a.endswith(".ipynb") for a in args)
    with tempfile.TemporaryDirectory(prefix="mutate-baseline-") as tmp:
        tree = scratch_copy(pathlib.Path(tmp) / "tree")
        return run_pytest(tree, args + (NBVAL if notebooks else []), cache, timeout)


def table(rows: list[dict]) -> str:
    width = max([len(r["id"]) for r in rows] + [2])
    lines = [f"{'id':<{width}}  {'result':<8}  {'exit':>4}  {'s':>5}  why", "-" * (width + 60)]
    for r in rows:
        lines.append(f"{r['id']:<{width}}  {r['result']:<8}  {r['exit']:>4}  {r['seconds']:>5.0f}  {r['why']}")
    counts = {k: sum(r["result"] == k for r in rows) for k in ("caught", "SURVIVED", "ERROR")}
    lines.append(f"{len(rows)} mutations: {counts['caught']} caught, {counts['SURVIVED']} survived, "
                 f"{counts['ERROR']} errors")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="*", type=pathlib.Path, help="mutation lists (default tools/mutations/*.toml)")
    ap.add_argument("--only", nargs="+", default=None, help="run only these mutation ids")
    ap.add_argument("--list", action="store_true", help="list the mutations and check their `find`s; run nothing")
    ap.add_argument("--jobs", type=int, default=1, help="mutations run in parallel (default 1)")
    ap.add_argument("--timeout", type=float, default=timeouts.mutation_run(),
                    help="seconds per mutation run (default: tools/timeouts.py)")
    ap.add_argument("--no-baseline", action="store_true", help="skip the unmutated run")
    ap.add_argument("--cache", type=pathlib.Path, default=ROOT / "_build" / "mutate-cache",
                    help="POPRISK_CACHE of the runs (default _build/mutate-cache)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch copies (their paths are printed)")
    args = ap.parse_args(argv)
    if args.jobs < 1:
        ap.error(f"--jobs must be a positive integer, got {args.jobs}")
    files = [f.resolve() for f in args.files] or sorted(MUTATION_DIR.glob("*.toml"))
    mutations = load(files)
    if args.only is not None:
        unknown = set(args.only) - {m["id"] for m in mutations}
        if unknown:
            ap.error(f"unknown mutation ids: {sorted(unknown)}")
        mutations = [m for m in mutations if m["id"] in args.only]
    bad = [(m["id"], n) for m in mutations if (n := occurrences(m)) != 1]
    if args.list or bad:
        for m in mutations:
            print(f"{m['id']:<40} {m['target']:<45} {m['why']}")
        for mid, n in bad:
            print(f"ERROR {mid}: `find` occurs {n} times in its target (must be exactly once)")
        print(f"{len(mutations)} mutations in {len(files)} lists")
        return 1 if bad else 0
    # networks trained by mutated code get their own cache keys (the key hashes the library), so one
    # cache serves every run; it is kept apart from the reader's cache, which mutants would fill
    cache = args.cache
    cache.mkdir(parents=True, exist_ok=True)
    if not args.no_baseline:
        code, log = baseline(mutations, cache, args.timeout)
        if code != 0:
            print(f"baseline (unmutated tree) fails with exit {code}; a catch would mean nothing:\n{log}")
            return 2
        print("baseline (unmutated tree): passes")
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(lambda m: run_one(m, cache, args.timeout, args.keep), mutations))
    for r in rows:
        if r["result"] != "caught":
            print(f"--- {r['id']} {r['result']}:\n{r['log']}\n")
    print(table(rows))
    return 0 if all(r["result"] == "caught" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
