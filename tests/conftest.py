"""Shared fixtures: the repository root, the TOC, and the built site (built once per test session)."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]


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
                          capture_output=True, text=True, cwd=ROOT)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"jupyter-book build failed (exit {proc.returncode}):\n{log[-6000:]}"
    return ROOT / "_build" / "html", log
