"""Every timeout of the test suite and the notebook tools, in one place (issue 18).

Timeouts are generous: under load the suite may be slower, but it must not fail because of it. On a slow or
busy machine scale them all with ``POPRISK_TIMEOUT_SCALE`` (e.g. ``POPRISK_TIMEOUT_SCALE=3 make test``).
Nothing in a test asserts a time (``tests/test_test_hygiene.py``); these only bound how long a test may wait
before it reports a hang.
"""

from __future__ import annotations

import os


def scale() -> float:
    """``POPRISK_TIMEOUT_SCALE`` (default 1), a positive number multiplying every timeout below."""
    raw = os.environ.get("POPRISK_TIMEOUT_SCALE", "1").strip()
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise ValueError(f"POPRISK_TIMEOUT_SCALE must be a positive number, got {raw!r}")
    return value


def seconds(base: float) -> float:
    """``base`` seconds, scaled."""
    return base * scale()


# base values, in seconds unless the name says otherwise
NOTEBOOK_CELL = 1800  # one notebook cell under nbval, execute_notebooks or the device-path guard (full mode)
KERNEL_STARTUP = 300  # a Jupyter kernel's start (nbval's default of 60 s is short on a loaded machine)
SUBPROCESS = 600  # a test's child Python process (a concurrent cache writer, a fresh-interpreter import)
BROWSER_PAGE_MS = 60_000  # the browser test's page loads and waits for an element, in milliseconds
HTTP = 30  # a request to the local site server
SITE_BUILD = 1800  # `jupyter-book build` of the whole site (tests/conftest.py's built_site)
NBVAL_OUTPUT = 60  # nbval's wait for a finished cell's output messages (its own default, 5 s, is short under load)
MUTATION_RUN = 900  # one mutation's unit tests and FAST notebooks (tools/mutate.py)
# tools/gpu_check.sh's whole run: the device tool's 600 s per command less the machine's start-up and the
# transfers. Not scaled: the device's limit does not grow on a slow machine.
GPU_CHECK_BUDGET = 540


def notebook_cell() -> int:
    return int(seconds(NOTEBOOK_CELL))


def kernel_startup() -> int:
    return int(seconds(KERNEL_STARTUP))


def child_process() -> int:
    return int(seconds(SUBPROCESS))


def browser_ms() -> int:
    return int(seconds(BROWSER_PAGE_MS))


def http() -> float:
    return seconds(HTTP)


def site_build() -> int:
    return int(seconds(SITE_BUILD))


def nbval_output() -> int:
    return int(seconds(NBVAL_OUTPUT))


def mutation_run() -> int:
    return int(seconds(MUTATION_RUN))


def gpu_check_budget() -> int:
    return GPU_CHECK_BUDGET
