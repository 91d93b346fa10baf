"""tools/gpu_check.sh: its CPU dry run goes through every step and writes one report with a time per step.

About a minute on the 2-core machine, so it runs under ``make gpu-check-dry`` (POPRISK_GPU_CHECK=1), not in
``make test``.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(os.environ.get("POPRISK_GPU_CHECK") != "1",
                                reason="slow: run with make gpu-check-dry")


def test_dry_run_passes_and_reports_every_step(tmp_path):
    proc = subprocess.run(["bash", str(ROOT / "tools" / "gpu_check.sh"), "--dry-run", str(tmp_path)],
                          capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHON": str(ROOT / ".venv" / "bin" / "python")})
    report = (tmp_path / "gpu_check.md").read_text()
    assert proc.returncode == 0, proc.stdout + report
    rows = re.findall(r"^\| (.+?) \| ([\d.]+) \| ok", report, re.M)
    steps = [r[0] for r in rows]
    assert steps[0] == "unit tests" and any(s.startswith("FAST ") for s in steps)
    assert any(s.startswith("full ") for s in steps) and "paper-scale MNIST (synthetic stand-in)" in steps
    assert "failures: 0" in report and re.search(r"^train 1 seeds x 1 epochs", report, re.M)
    status = json.loads((tmp_path / "execution_status.json").read_text())["notebooks"]
    assert "fast_seconds" in status["book/ch04_compression_generalizes.ipynb"]
    # the dry run must leave the book's own timings file alone
    assert (ROOT / "book" / "execution_status.json").read_text() != (tmp_path / "execution_status.json").read_text()
