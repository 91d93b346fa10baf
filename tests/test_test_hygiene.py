"""Two lints that keep the suite green on every machine (issue 18).

1. No test asserts a wall-clock time. A test compares measured seconds with a constant only through a clock
   (``time.perf_counter``, ``time.time``, ``time.monotonic``, ``time.process_time``, their ``_ns`` forms,
   ``timeit``): :func:`timed_assertions` follows every value derived from a clock call through assignments and
   helper functions' return values, and reports each ``assert`` (or ``if …: pytest.fail/raise``) that compares
   such a value. Speed belongs in ``bench/``; a test states cost in iterations, calls or bytes. Waiting loops
   (``while time.monotonic() < deadline``) are timeouts, not assertions, and are allowed.
2. Checked notebook outputs print properties, not rounding digits. :func:`residual_prints` reports, in the
   text of every ``nbval-check-output`` cell, (a) a number below 1e-3 printed in e-notation with its digits
   (``5.3e-08``): a residual that should be tiny is asserted below a stated bound and shown as ``< 1e-6``; a
   power of ten (a tolerance, a grid value) is a stated constant and passes; (b) a decimal with seven or more
   significant digits (``4.030216``), more than float32 carries, which no CPU-independent claim needs.
"""

from __future__ import annotations

import ast
import json
import pathlib
import re
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
CLOCKS = {"perf_counter", "perf_counter_ns", "time", "time_ns", "monotonic", "monotonic_ns", "process_time",
          "process_time_ns", "thread_time", "thread_time_ns", "timeit", "repeat", "default_timer"}
CLOCK_MODULES = {"time", "timeit"}


# ----------------------------------------------------------------------------------------- wall-clock asserts
def _clock_names(tree: ast.AST) -> set[str]:
    """Names bound to a clock by ``from time import perf_counter [as pc]``."""
    return {a.asname or a.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
            and node.module in CLOCK_MODULES for a in node.names if a.name in CLOCKS}


def _is_clock_call(node: ast.AST, clock_names: set[str]) -> bool:
    if not isinstance(node, ast.Call):
        return False
    f = node.func
    if isinstance(f, ast.Attribute):
        return f.attr in CLOCKS and isinstance(f.value, ast.Name) and f.value.id in CLOCK_MODULES
    return isinstance(f, ast.Name) and f.id in clock_names


def _tainted(expr: ast.AST, names: set[str], funcs: set[str], clock_names: set[str]) -> bool:
    """Whether ``expr`` contains a clock call, a name derived from one, or a call of a function returning one."""
    for node in ast.walk(expr):
        if _is_clock_call(node, clock_names):
            return True
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in names:
            return True
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in funcs:
            return True
    return False


def _targets(node: ast.AST) -> list[str]:
    if isinstance(node, (ast.Assign,)):
        targets = node.targets
    elif isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.NamedExpr)):
        targets = [node.target]
    else:
        return []
    return [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]


def timed_assertions(source: str) -> list[int]:
    """Line numbers of the assertions in ``source`` that compare a time measured by a clock.

    Flow-insensitive and name-based (a fixpoint over the module): a name is timed if any assignment to it
    uses a timed value; a function is timed if it returns one.
    """
    tree = ast.parse(source)
    clock_names = _clock_names(tree)
    names: set[str] = set()
    funcs: set[str] = set()
    changed = True
    while changed:
        changed = False
        for node in ast.walk(tree):
            value = getattr(node, "value", None)
            if value is not None and _targets(node) and _tainted(value, names, funcs, clock_names):
                new = set(_targets(node)) - names
                names |= new
                changed |= bool(new)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                returns = [r.value for r in ast.walk(node) if isinstance(r, ast.Return) and r.value is not None]
                if node.name not in funcs and any(_tainted(r, names, funcs, clock_names) for r in returns):
                    funcs.add(node.name)
                    changed = True
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assert):
            tests = [node.test]
        elif isinstance(node, ast.If) and any(isinstance(n, ast.Raise) or (
                isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "fail")
                for stmt in node.body for n in ast.walk(stmt)):
            tests = [node.test]
        else:
            continue
        for test in tests:
            for cmp in (n for n in ast.walk(test) if isinstance(n, ast.Compare)):
                if any(_tainted(side, names, funcs, clock_names) for side in [cmp.left, *cmp.comparators]):
                    hits.append(node.lineno)
                    break
    return sorted(set(hits))


TIMED = '''
import time
from time import perf_counter as pc
def _timed(f):
    t = time.perf_counter(); f(); return time.perf_counter() - t
def test_a():
    t0 = time.monotonic(); work(); elapsed = time.monotonic() - t0
    assert elapsed < 5.0
def test_b():
    best = min(_timed(work) for _ in range(3))
    assert best < 0.05
def test_c():
    start = pc(); work()
    if pc() - start > 2:
        pytest.fail("too slow")
'''
UNTIMED = '''
import time
def test_wait():
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if done():
            break
    assert done()
def test_counts():
    res = solve()
    assert res.iterations.sum() <= 400 and time.gmtime(0).tm_year == 1970
'''


def test_timed_assertion_lint_catches_clock_comparisons():
    assert timed_assertions(TIMED) == [8, 11, 14]


def test_timed_assertion_lint_allows_waits_and_counts():
    assert timed_assertions(UNTIMED) == []


def test_no_test_asserts_a_wall_clock_time():
    found = {str(p.relative_to(ROOT)): timed_assertions(p.read_text())
             for p in sorted((ROOT / "tests").glob("*.py"))}
    found = {p: lines for p, lines in found.items() if lines}
    assert not found, ("tests comparing a measured time (lines): move the timing to bench/ and assert the "
                       f"cost in iterations, calls or bytes: {found}")


# -------------------------------------------------------------------------------------- residuals in outputs
# a number in e-notation: mantissa and exponent; not part of a word, a version or a longer number
E_NUMBER = re.compile(r"(?<![\w.])[-+−]?(\d+(?:\.\d+)?)[eE]([-+−]?\d+)(?![\w.])")
DECIMAL = re.compile(r"(?<![\w.])(\d+\.\d+)(?![\w.]|[eE])")
BOUND_BEFORE = re.compile(r"(?:<|≤|<=|&lt;|below|under|within|to)\s*$")


def _significant(digits: str) -> int:
    return len(digits.replace(".", "").lstrip("0"))


def residual_prints(text: str) -> list[str]:
    """The numbers in ``text`` that print rounding-level digits (see the module docstring)."""
    bad = []
    for m in E_NUMBER.finditer(text):
        mantissa, exponent = m.group(1), int(m.group(2).replace("−", "-"))
        bounded = BOUND_BEFORE.search(text[max(0, m.start() - 12):m.start()])
        power_of_ten = float(mantissa) == 1.0
        if exponent <= -4 and not (bounded or power_of_ten):
            bad.append(m.group(0))
        elif _significant(mantissa) > 4:
            bad.append(m.group(0))
    bad += [m.group(0) for m in DECIMAL.finditer(text) if _significant(m.group(1)) >= 7]
    return bad


@pytest.mark.parametrize("text", [
    "max |D - 1/(1 + e^-s)| on the curved part = 5.3e-08",
    "smallest increase when a centre moves: 1.16e-04",
    "residual 6e-08",
    "0.2000   -2.7e-04",
    "N = 1.23456e+10",
    "D(P||Q) = 4.030216",
])
def test_residual_lint_catches_digits(text):
    assert residual_prints(text)


@pytest.mark.parametrize("text", [
    "max |D - 1/(1 + e^-s)| on the curved part < 1e-6",
    "residual ≤ 2.5e-07: True",
    "|DP - enumeration| < 1e-12: True",
    "eps = 1e-03: trace ratio = 0.000556",
    "weights 7.23e+10, loss 0.3276, torch 2.13.0, 1,125 bits",
    "tested to 1e-9 relative",
])
def test_residual_lint_allows_bounds_and_rounded_values(text):
    assert residual_prints(text) == []


def _checked_text(cell: dict) -> tuple[str, str]:
    """What nbval compares in a cell, as (printed text, table text): stream text and text/plain, except the
    text/plain of an output that has an HTML form (a table), whose cells come as the second part."""
    printed, tabled = [], []
    for out in cell.get("outputs", []):
        printed.append("".join(out.get("text", "")))
        data = out.get("data", {})
        if "text/html" in data:
            tabled.append(re.sub(r"<[^>]+>", " ", "".join(data["text/html"])))
        elif "text/plain" in data:
            printed.append("".join(data["text/plain"]))
    return "\n".join(printed), "\n".join(tabled)


def table_residuals(text: str) -> list[str]:
    """The numbers of a table that print rounding-level digits. A table cell shows a quantity at the table's
    fixed number of significant digits, so a small value there (``2.36e-05``) is the quantity, not a residual;
    what is flagged is more digits than a claim needs (more than 4 significant, or a 7-digit decimal)."""
    bad = [m.group(0) for m in E_NUMBER.finditer(text) if _significant(m.group(1)) > 4]
    return bad + [m.group(0) for m in DECIMAL.finditer(text) if _significant(m.group(1)) >= 7]


def checked_residuals(path: pathlib.Path) -> dict[int, list[str]]:
    """{code-cell index: offending numbers} over the ``nbval-check-output`` cells of one notebook."""
    cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    found = {}
    for i, c in enumerate(cells):
        if "nbval-check-output" in c.get("metadata", {}).get("tags", []):
            printed, tabled = _checked_text(c)
            found[i] = residual_prints(printed) + table_residuals(tabled)
    return {i: bad for i, bad in found.items() if bad}


def test_table_lint_allows_small_quantities_but_not_long_digits():
    assert table_residuals(" 0.000181   2.36e−05   0.730 ") == []
    assert table_residuals(" 2.3612e−05 ") and table_residuals(" 4.030216 ")
    printed, tabled = _checked_text({"outputs": [{"output_type": "execute_result", "data": {
        "text/plain": "1.16e-04", "text/html": "<td>1.16e-04</td>"}}]})
    assert printed == "" and "1.16e-04" in tabled


@pytest.mark.parametrize("path", sorted((ROOT / "book").glob("*.ipynb")), ids=lambda p: p.name)
def test_checked_outputs_print_no_rounding_digits(path):
    found = checked_residuals(path)
    assert not found, (f"{path.name}: checked cells (code-cell index: numbers) print rounding-level digits, "
                       f"which differ across CPUs and BLAS builds; assert a bound and print '< 1e-6', or "
                       f"round to the precision the claim needs: {found}")


# ------------------------------------------------------------------------------------ timeouts in one place
# 3. Every timeout of the suite and the tools is named in tools/timeouts.py (scaled by POPRISK_TIMEOUT_SCALE
#    on a slow machine). :func:`literal_timeouts` reports, in Python source, a number given as a timeout: a
#    keyword ``timeout=``/``*_timeout=``, a parameter ``timeout: int = 600``, an option ``--timeout`` with a
#    numeric ``default``, a positional number to a waiting call (``communicate(120)``), and ``timeout=900``
#    inside generated code (a string); :func:`shell_timeouts` the same in a Makefile or shell script
#    (``timeout 600 cmd``, ``--nbval-cell-timeout=900``). A pause (Playwright's ``wait_for_timeout(100)``) is
#    not a bound and passes.
WAITING_CALLS = {"communicate", "wait", "join", "set_default_timeout", "set_default_navigation_timeout",
                 "await_reply", "await_idle"}
TIMEOUT_IN_TEXT = re.compile(r"\b\w*timeout\s*=\s*\d")
SHELL_TIMEOUT = re.compile(r"(?:^|[\s;&|(])timeout\s+(?:-\S+\s+(?:[A-Za-z]+\s+)?)*\d|--[\w-]*timeout[=\s]+\d", re.I)


def _numeric(node: ast.AST | None) -> bool:
    """A number, or arithmetic of numbers only (``60 * 10``)."""
    if node is None:
        return False
    parts = list(ast.walk(node))
    return (any(isinstance(n, ast.Constant) and type(n.value) in (int, float) for n in parts)
            and all(isinstance(n, (ast.Constant, ast.BinOp, ast.UnaryOp, ast.operator, ast.unaryop))
                    and not (isinstance(n, ast.Constant) and type(n.value) not in (int, float)) for n in parts))


def _is_timeout_name(name: str | None) -> bool:
    return bool(name) and name.lower().endswith("timeout")


def literal_timeouts(source: str) -> list[int]:
    """Line numbers in ``source`` that give a timeout as a number instead of through tools/timeouts.py."""
    hits = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
            if any(_is_timeout_name(k.arg) and _numeric(k.value) for k in node.keywords):
                hits.append(node.lineno)
            elif name in WAITING_CALLS and node.args and _numeric(node.args[0]):
                hits.append(node.lineno)
            elif (name == "add_argument" and any(isinstance(a, ast.Constant) and "timeout" in str(a.value)
                                                 for a in node.args)
                  and any(k.arg == "default" and _numeric(k.value) for k in node.keywords)):
                hits.append(node.lineno)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            a = node.args
            positional = [*a.posonlyargs, *a.args]
            pairs = list(zip(positional[len(positional) - len(a.defaults):], a.defaults))
            pairs += [(arg, d) for arg, d in zip(a.kwonlyargs, a.kw_defaults) if d is not None]
            if any(_is_timeout_name(arg.arg) and _numeric(d) for arg, d in pairs):
                hits.append(node.lineno)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and TIMEOUT_IN_TEXT.search(node.value):
            hits.append(node.lineno)
    return sorted(set(hits))


def shell_timeouts(text: str) -> list[int]:
    """Line numbers of a Makefile or shell script that give a timeout as a number (comments skipped)."""
    return [i for i, line in enumerate(text.splitlines(), 1)
            if not line.lstrip().startswith("#") and SHELL_TIMEOUT.search(line)]


LITERAL_TIMEOUTS = '''
import subprocess
def run(cmd, timeout: int = 600):
    subprocess.run(cmd, timeout=120)
def child(p):
    return p.communicate(60 * 5)
ap.add_argument("--timeout", type=float, default=900.0)
page.wait_for_function("f", timeout=20000)
script = "NotebookClient(nb, timeout=900)"
def start(*, startup_timeout=60.0):
    pass
'''
NAMED_TIMEOUTS = '''
import subprocess
from tools import timeouts
def run(cmd, timeout: int | None = None):
    subprocess.run(cmd, timeout=timeout or timeouts.child_process())
def child(p):
    return p.communicate(timeouts.child_process())
ap.add_argument("--timeout", type=float, default=timeouts.mutation_run())
page.wait_for_timeout(100)  # a pause, not a bound
script = f"NotebookClient(nb, timeout={timeouts.notebook_cell()})"
run(cmd, retries=3, timeout=None)
'''


def test_timeout_lint_catches_numbers():
    assert literal_timeouts(LITERAL_TIMEOUTS) == [3, 4, 6, 7, 8, 9, 10]
    assert shell_timeouts("a:\n\ttimeout 600 make x\n\tpytest --nbval-cell-timeout=900 b\n"
                          "\ttimeout -s KILL 30 cmd\n") == [2, 3, 4]


def test_timeout_lint_allows_named_timeouts_and_pauses():
    assert literal_timeouts(NAMED_TIMEOUTS) == []
    assert shell_timeouts("# timeout 600 in a comment\n\tpytest --timeout \"$$T\" x\n\tsleep 1\n") == []


def _suite_files() -> list[pathlib.Path]:
    files = [*(ROOT / "tests").glob("*.py"), *(ROOT / "tools").rglob("*.py"), *(ROOT / "bench").glob("*.py")]
    # tools/timeouts.py names them; this file's samples above are timeouts on purpose
    return sorted(p for p in files if p not in (ROOT / "tools" / "timeouts.py", pathlib.Path(__file__)))


def test_every_timeout_is_named_in_tools_timeouts():
    found = {str(p.relative_to(ROOT)): literal_timeouts(p.read_text()) for p in _suite_files()}
    for p in [ROOT / "Makefile", *(ROOT / "tools").glob("*.sh")]:
        found[str(p.relative_to(ROOT))] = shell_timeouts(p.read_text())
    found = {p: lines for p, lines in found.items() if lines}
    assert not found, ("timeouts given as numbers (file: lines): name them in tools/timeouts.py and use "
                       f"its functions, so that POPRISK_TIMEOUT_SCALE scales every one: {found}")


def test_timeout_scale_is_parsed_strictly(monkeypatch):
    sys.path.insert(0, str(ROOT))
    from tools import timeouts

    monkeypatch.setenv("POPRISK_TIMEOUT_SCALE", "3")
    assert timeouts.notebook_cell() == 3 * timeouts.NOTEBOOK_CELL and timeouts.http() == 3 * timeouts.HTTP
    for bad in ("0", "-1", "fast", "inf", "nan", ""):
        monkeypatch.setenv("POPRISK_TIMEOUT_SCALE", bad)
        with pytest.raises(ValueError, match="POPRISK_TIMEOUT_SCALE"):
            timeouts.scale()


def test_nbval_waits_come_from_tools_timeouts(pytestconfig):
    from tools import timeouts

    option = pytestconfig.option
    if isinstance(option.nbval_cell_timeout, str):  # given on the command line: the caller's choice
        pytest.skip("--nbval-cell-timeout given")
    assert option.nbval_cell_timeout == timeouts.notebook_cell()
    assert option.nbval_kernel_startup_timeout == timeouts.kernel_startup()
