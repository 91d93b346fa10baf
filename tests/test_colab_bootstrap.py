"""The Colab bootstrap cell: a no-op off Colab, and on Colab a pip command that really installs poprisk,
pinned to the release tag of the one version string (every notebook names the same ref).

Until ``python tools/release.py stamp`` has run on the chapters, the pinned-ref tests fail on purpose.

The install is tested from the working tree into a fresh virtual environment with the cell's own command,
the repository url replaced by the local checkout (and, offline, without dependencies or build isolation:
the dependencies come from the book's environment).
"""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess
import sys
import sysconfig
import types

import nbformat
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tools.new_notebook import version  # noqa: E402

NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))
FIRST_NOTEBOOK = NOTEBOOKS[0]


def bootstrap_source(path=FIRST_NOTEBOOK) -> str:
    nb = nbformat.read(path, as_version=4)
    return nb.cells[0].source


def captured_command(monkeypatch, path=FIRST_NOTEBOOK) -> list[str]:
    calls = []
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append(cmd))
    exec(bootstrap_source(path), {})
    assert len(calls) == 1, "the bootstrap should run exactly one pip command on Colab"
    return calls[0]


def test_noop_outside_colab(monkeypatch):
    calls = []
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: calls.append(a))
    exec(bootstrap_source(), {})
    assert calls == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_bootstrap_pins_the_release_of_the_configured_repository(monkeypatch, path):
    import yaml

    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"].rstrip("/")
    nb = nbformat.read(path, as_version=4)
    assert "remove-cell" in nb.cells[0].metadata.get("tags", []), f"{path.name}: cell 0 is not the hidden bootstrap"
    cmd = captured_command(monkeypatch, path)
    assert cmd[1:4] == ["-m", "pip", "install"]
    assert cmd[-1] == f"poprisk @ git+{url}@v{version()}", \
        f"{path.name}: not pinned to v{version()} (run: .venv/bin/python tools/release.py stamp)"


def test_same_command_installs_into_fresh_venv(monkeypatch, tmp_path):
    cmd = captured_command(monkeypatch)
    monkeypatch.undo()  # the real subprocess.run from here on
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    # A copy of the package's files, so that the build leaves nothing behind in the working tree.
    src = tmp_path / "src"
    shutil.copytree(ROOT / "lib", src / "lib", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    spec = re.sub(r"git\+\S+@v[\d.]+$", src.as_uri(), cmd[-1])
    assert spec != cmd[-1], f"the bootstrap does not name a pinned ref: {cmd[-1]}"
    install = [str(python), *cmd[1:-1], "--no-deps", "--no-build-isolation", spec]
    # Dependencies (and the build backend) come from the book's environment; poprisk itself must come from
    # the fresh install.
    env = {**os.environ, "PYTHONPATH": sysconfig.get_paths()["purelib"]}
    proc = subprocess.run(install, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    check = ("import importlib, poprisk; [importlib.import_module('poprisk.' + m) for m in poprisk._MODULES]; "
             "print(poprisk.__file__, poprisk.__version__)")
    out = subprocess.run([str(python), "-c", check], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert str(venv) in out.stdout, f"poprisk was not imported from the fresh install: {out.stdout}"
