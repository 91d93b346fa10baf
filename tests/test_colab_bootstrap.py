"""The Colab bootstrap cell: a no-op off Colab, and on Colab a pip command that really installs poprisk.

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

ROOT = pathlib.Path(__file__).resolve().parents[1]
FIRST_NOTEBOOK = sorted((ROOT / "book").glob("*.ipynb"))[0]


def bootstrap_source() -> str:
    nb = nbformat.read(FIRST_NOTEBOOK, as_version=4)
    return next(c.source for c in nb.cells if c.cell_type == "code")


def captured_command(monkeypatch) -> list[str]:
    calls = []
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append(cmd))
    exec(bootstrap_source(), {})
    assert len(calls) == 1, "the bootstrap should run exactly one pip command on Colab"
    return calls[0]


def test_noop_outside_colab(monkeypatch):
    calls = []
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: calls.append(a))
    exec(bootstrap_source(), {})
    assert calls == []


def test_command_installs_from_configured_repository(monkeypatch):
    import yaml

    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"].rstrip("/")
    cmd = captured_command(monkeypatch)
    assert cmd[1:4] == ["-m", "pip", "install"]
    assert cmd[-1] == f"poprisk @ git+{url}@main"


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
    spec = re.sub(r"git\+\S+@main$", src.as_uri(), cmd[-1])
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
