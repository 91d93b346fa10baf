"""Shared fixtures: the repository root, the TOC, the built site (built once per test session), the device
the device-path tests run on, and the suite's timeouts (all named in tools/timeouts.py); with
``--phase-times`` (``make test``), the time of each phase of the run at its end."""

from __future__ import annotations

import pathlib
import collections
import subprocess
import sys
import time

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `from tools import timeouts` in every test
from tools import timeouts  # noqa: E402


# Phases of `make test` (README "Timings"): a test file's phase, else "library tests"; notebooks by chapter.
PHASES = {"test_browser.py": "browser (real Chromium, axe-core)", "test_pdf.py": "PDF (build and checks)",
          **dict.fromkeys(("test_site.py", "test_colab_render.py", "test_colab_notebooks.py",
                           "test_student_site.py"), "site checks (site, Colab render, student site)")}
SITE_BUILD = "site build (jupyter-book -W -n)"
_phase_seconds: collections.Counter = collections.Counter()
_site_build_pending: list[float] = []  # seconds of a site build inside the setup now being reported
_session_start: list[float] = []


def phase_of(nodeid: str) -> str:
    path = pathlib.PurePosixPath(nodeid.split("::")[0])
    if path.suffix == ".ipynb":
        return f"nbval {path.stem}"
    return PHASES.get(path.name, "library tests")


def pytest_addoption(parser):
    parser.addoption("--phase-times", action="store_true",
                     help="print the time of each phase (library tests, site build, each chapter, ...)")


def pytest_sessionstart(session):
    _session_start.append(time.perf_counter())


def pytest_runtest_logreport(report):
    seconds = report.duration
    if report.when == "setup" and _site_build_pending:
        build = _site_build_pending.pop()
        _phase_seconds[SITE_BUILD] += build
        seconds -= build
    _phase_seconds[phase_of(report.nodeid)] += seconds


def pytest_terminal_summary(terminalreporter, config):
    if not config.getoption("phase_times") or not _phase_seconds:
        return
    write = terminalreporter.write_line
    terminalreporter.section("phase times (sum of the tests' set-up, call and tear-down)")
    write("| phase | seconds |")
    write("|---|---:|")
    chapters = sorted(p for p in _phase_seconds if p.startswith("nbval "))
    for phase in [*sorted(set(_phase_seconds) - set(chapters)), *chapters]:
        write(f"| {phase} | {_phase_seconds[phase]:.1f} |")
    if chapters:
        write(f"| all chapters (nbval) | {sum(_phase_seconds[c] for c in chapters):.1f} |")
    tests = sum(_phase_seconds.values())
    wall = time.perf_counter() - _session_start[0] if _session_start else tests
    write(f"| start-up, collection, the rest (wall time less the above) | {max(0.0, wall - tests):.1f} |")
    write(f"| pytest wall time | {wall:.1f} |")


def pytest_configure(config):
    """nbval's cell and kernel-start timeouts from tools/timeouts.py, unless given on the command line."""
    option = config.option
    if getattr(option, "nbval_cell_timeout", None) == 2000:  # nbval's default: not set by the caller
        option.nbval_cell_timeout = timeouts.notebook_cell()
    if getattr(option, "nbval_kernel_startup_timeout", None) == 60:
        option.nbval_kernel_startup_timeout = timeouts.kernel_startup()


def pytest_collection_modifyitems(items):
    """nbval waits a fixed 5 s for a finished cell's output, which a loaded machine can miss."""
    for item in items:
        if type(item).__name__ == "IPyNbCell":
            item.output_timeout = timeouts.nbval_output()


@pytest.fixture(scope="session")
def test_device():
    """The device of the device-path tests: the CPU (they then run on tests/device_guard.py's pretend
    accelerator) or, under ``POPRISK_TEST_DEVICE=cuda`` (tools/gpu_check.sh), the real GPU."""
    import torch

    import device_guard

    if device_guard.requested_device() == "cuda":
        if not torch.cuda.is_available():
            pytest.fail("POPRISK_TEST_DEVICE=cuda but CUDA is not available")
        return torch.device("cuda")
    return torch.device("cpu")


@pytest.fixture(scope="session")
def root() -> pathlib.Path:
    return ROOT


@pytest.fixture(scope="session")
def config() -> dict:
    return yaml.safe_load((ROOT / "_config.yml").read_text())


@pytest.fixture(scope="session")
def built_site() -> tuple[pathlib.Path, str]:
    """Build the HTML site exactly as `make book` does; return (html folder, build log)."""
    jb = pathlib.Path(sys.executable).with_name("jupyter-book")
    start = time.perf_counter()
    proc = subprocess.run([str(jb), "build", str(ROOT), "-W", "-n", "--keep-going"],
                          capture_output=True, text=True, cwd=ROOT, timeout=timeouts.site_build())
    _site_build_pending.append(time.perf_counter() - start)  # its own phase, not the first site test's
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"jupyter-book build failed (exit {proc.returncode}):\n{log[-6000:]}"
    return ROOT / "_build" / "html", log
