"""The Colab-like environment (``make colab-env``): a fresh Python 3.12 virtual environment with the *loose*
ranges of ``pyproject.toml`` (not the pins of requirements.txt) plus what Colab preinstalls for notebooks
(ipykernel, nbclient, pandas), ``poprisk`` installed exactly as the bootstrap cell does it — its own pip
command, with the GitHub address replaced by a ``git+file://`` clone of this repository at the release tag —
then chapters 1 and 9 executed in FAST mode in that environment.

Slow (a first run downloads PyTorch's CUDA build for Python 3.12; see the README for the cost), so it runs
only with POPRISK_COLAB_ENV=1 (``make colab-env``), not in ``make test``. The venv is kept in
``_build/colab-env/venv`` and reused while pyproject.toml's dependencies are unchanged.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import re
import shutil
import subprocess
import sys
import types

import nbformat
import pytest
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tools import timeouts  # noqa: E402
from tools.new_notebook import version  # noqa: E402

pytestmark = pytest.mark.skipif(os.environ.get("POPRISK_COLAB_ENV") != "1",
                                reason="slow: run with make colab-env")
PY312 = os.environ.get("POPRISK_PY312", "python3.12")  # make colab-env passes PY312
COLAB_PREINSTALLED = ["ipykernel", "nbclient", "nbformat", "pandas"]
CHAPTERS = ("book/ch01_phenomenon.ipynb", "book/ch09_experiments.ipynb")


def run(cmd, **kw):
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert proc.returncode == 0, f"{cmd[:4]} failed:\n{(proc.stdout + proc.stderr)[-4000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def venv():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    wanted = sorted(deps) + COLAB_PREINSTALLED
    digest = hashlib.sha256("\n".join(wanted).encode()).hexdigest()
    home = ROOT / "_build" / "colab-env"
    python = home / "venv" / "bin" / "python"
    marker = home / "venv" / ".deps"
    if not (python.exists() and marker.exists() and marker.read_text() == digest):
        shutil.rmtree(home / "venv", ignore_errors=True)
        home.mkdir(parents=True, exist_ok=True)
        run([PY312, "-m", "venv", str(home / "venv")])
        run([str(python), "-m", "pip", "install", "-q", *wanted])
        marker.write_text(digest)
    assert run([str(python), "-c", "import sys; print(sys.version_info[:2])"]).strip() == "(3, 12)"
    return python


@pytest.fixture(scope="module")
def tagged_clone(tmp_path_factory):
    """A clone of the committed repository at the release tag. Where the repository has no such tag yet, the
    clone gets one the way ``make release`` makes it: notebooks stamped, one commit, the tag."""
    clone = tmp_path_factory.mktemp("clone") / "repo"
    run(["git", "clone", "-q", "--no-local", str(ROOT), str(clone)])
    tag = f"v{version()}"
    if run(["git", "tag", "--list", tag], cwd=clone).strip():
        run(["git", "checkout", "-q", tag], cwd=clone)
    else:
        run([sys.executable, str(clone / "tools" / "release.py"), "stamp"], cwd=clone)
        ident = ["-c", "user.name=test", "-c", "user.email=test@example.invalid"]
        run(["git", *ident, "commit", "-q", "--allow-empty", "-am", f"Release {tag} (test)"], cwd=clone)
        run(["git", *ident, "tag", tag], cwd=clone)
    return clone, tag


def bootstrap_command(notebook: pathlib.Path) -> list[str]:
    calls = []
    fake_subprocess = types.SimpleNamespace(run=lambda cmd, **kw: calls.append(cmd))
    source = nbformat.read(notebook, as_version=4).cells[0].source
    saved = sys.modules.get("subprocess")
    sys.modules["google.colab"] = types.ModuleType("google.colab")
    sys.modules["subprocess"] = fake_subprocess
    try:
        exec(source, {})
    finally:
        del sys.modules["google.colab"]
        sys.modules["subprocess"] = saved
    assert len(calls) == 1, "the bootstrap runs one pip command on Colab"
    return calls[0]


def test_bootstrap_install_then_fast_chapters(venv, tagged_clone, tmp_path):
    clone, tag = tagged_clone
    cmd = bootstrap_command(clone / CHAPTERS[0])
    spec = cmd[-1]
    assert spec.endswith(f"@{tag}"), f"the bootstrap does not pin {tag}: {spec}"
    # file://localhost/...: the bundled pip of Python 3.12.1 (23.2) refuses git+file:///...@tag requirements
    local = re.sub(r"git\+\S+@", f"git+file://localhost{clone.as_posix()}@", spec)
    run([str(venv), *cmd[1:-1], "--force-reinstall", "--no-deps", local], cwd=tmp_path)
    where = run([str(venv), "-c", "import poprisk; print(poprisk.__file__, poprisk.__version__)"], cwd=tmp_path)
    assert str(venv.parents[1]) in where and where.split()[1] == version(), where
    script = ("import sys, nbformat\nfrom nbclient import NotebookClient\n"
              "nb = nbformat.read(sys.argv[1], as_version=4)\n"
              f"NotebookClient(nb, timeout={timeouts.notebook_cell()}, kernel_name='python3',"
              " resources={'metadata': {'path': sys.argv[2]}}).execute()\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(POPRISK_FAST="1", POPRISK_PROGRESS="0", JUPYTER_PATH=str(venv.parents[1] / "share" / "jupyter"))
    for chapter in CHAPTERS:
        work = tmp_path / "book"
        shutil.copytree(clone / "book", work, dirs_exist_ok=True)
        run([str(venv), "-c", script, str(work / pathlib.Path(chapter).name), str(work)], cwd=work, env=env)
