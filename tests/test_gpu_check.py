"""tools/gpu_check.sh: it runs on the device machine as it is (issue 18), and its CPU dry run goes through every
step and writes one report with a time per step.

The structure tests are cheap and run in ``make test``. The dry run takes about a minute on the 2-core machine,
so it runs under ``make gpu-check-dry`` (POPRISK_GPU_CHECK=1), not in ``make test``.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tools" / "gpu_check.sh"
sys.path.insert(0, str(ROOT))
from tools import gpu_wheels, timeouts  # noqa: E402

dry_run_only = pytest.mark.skipif(os.environ.get("POPRISK_GPU_CHECK") != "1",
                                  reason="slow: run with make gpu-check-dry")


def _code() -> str:
    """The script without its comment lines (what runs)."""
    return "\n".join(line for line in SCRIPT.read_text().splitlines() if not line.lstrip().startswith("#"))


def test_script_parses():
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


def test_runs_on_the_device_python_without_a_venv_or_network():
    code = _code()
    assert ".venv" not in code and 'PY="${PYTHON:-python3}"' in code  # the device's own python3
    assert 'PYTHONPATH="$PWD/lib' in code  # this checkout's library, no editable install
    install = next(line for line in code.splitlines() if "pip install" in line)
    assert "--no-index" in install and "--target" in install and ".whl/" in code
    assert "pip download" not in code and "make " not in code.replace("make gpu-wheels", "")


def test_the_header_says_how_to_call_the_device_tool():
    header = SCRIPT.read_text().split("set -uo pipefail")[0]
    assert "make gpu-wheels" in header and 'carry=[".whl"]' in header and "timeout_s=600" in header


def test_wheels_cover_the_notebook_stack_at_the_pinned_versions():
    needed = {"nbformat", "nbclient", "jupyter-client", "ipykernel", "ipython", "pyzmq", "traitlets", "tornado"}
    assert needed <= set(gpu_wheels.MISSING)
    pins = gpu_wheels.pins()
    assert all(name in pins for name in gpu_wheels.MISSING)
    assert gpu_wheels.normalize("jupyter_client") == "jupyter-client"


def test_cold_cache_and_cuda_unit_tests():
    code = _code()
    assert "cache_dir=None" not in code and code.count("cache_dir=False") == 2
    assert 'POPRISK_CACHE="$WORK/cache"' in code and 'WORK="$(mktemp -d' in code
    real = code.split("else\n", 1)[1].split("\nfi\n", 1)[0]  # the branch that is not the dry run
    assert "POPRISK_TEST_DEVICE=cuda" in real and "POPRISK_DEVICE=cuda" in real
    assert "tests/test_device_path.py" in real


def test_keeps_to_the_device_limits():
    assert 0 < timeouts.gpu_check_budget() <= 570  # the device's 600 s a command, less start-up
    assert "timeouts.gpu_check_budget()" in _code() and 'timeout --kill-after=10 "$rest"' in _code()
    # at most 8 files come back from $OUT, named in letters, digits, '.', '_' and '-'
    written = set(re.findall(r'"\$OUTDIR/([^"]+)"', _code()))
    assert len(written) <= 8 and all(re.fullmatch(r"[\w.-]+", f) for f in written), written


def test_unknown_step_is_refused_before_any_work(tmp_path):
    proc = subprocess.run(["bash", str(SCRIPT), "--only", "unit,bogus", str(tmp_path)], capture_output=True,
                          text=True, cwd=ROOT, timeout=timeouts.child_process())
    assert proc.returncode == 2 and "unknown step 'bogus'" in proc.stderr and not any(tmp_path.iterdir())


@dry_run_only
def test_dry_run_passes_and_reports_every_step(tmp_path):
    proc = subprocess.run(["bash", str(SCRIPT), "--dry-run", str(tmp_path)],
                          capture_output=True, text=True, cwd=ROOT, timeout=timeouts.child_process(),
                          env={**os.environ, "PYTHON": str(ROOT / ".venv" / "bin" / "python")})
    report = (tmp_path / "gpu_check.md").read_text()
    assert proc.returncode == 0, proc.stdout + report
    assert report in proc.stdout  # the table is printed, so a device call's output shows it
    rows = re.findall(r"^\| (.+?) \| ([\d.]+) \| ok", report, re.M)
    steps = [r[0] for r in rows]
    assert steps[0] == "unit tests (cpu)" and any(s.startswith("FAST ") for s in steps)
    assert any(s.startswith("full ") for s in steps) and "paper-scale MNIST (synthetic stand-in)" in steps
    assert "failures: 0; skipped: 0" in report and re.search(r"^train 1 seeds x 1 epochs", report, re.M)
    assert "cache: cold" in report
    status = json.loads((tmp_path / "execution_status.json").read_text())["notebooks"]
    assert "fast_seconds" in status["book/ch04_compression_generalizes.ipynb"]
    # the dry run must leave the book's own timings file alone
    assert (ROOT / "book" / "execution_status.json").read_text() != (tmp_path / "execution_status.json").read_text()
    assert len(list(tmp_path.iterdir())) <= 8  # what the device tool brings back from $OUT
