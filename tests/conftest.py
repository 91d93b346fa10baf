"""Shared fixtures: the repository root, the TOC, the built site (built once per test session), the device
the device-path tests run on, and the suite's timeouts (all named in tools/timeouts.py)."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `from tools import timeouts` in every test
from tools import timeouts  # noqa: E402


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
    proc = subprocess.run([str(jb), "build", str(ROOT), "-W", "-n", "--keep-going"],
                          capture_output=True, text=True, cwd=ROOT, timeout=timeouts.site_build())
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"jupyter-book build failed (exit {proc.returncode}):\n{log[-6000:]}"
    return ROOT / "_build" / "html", log
