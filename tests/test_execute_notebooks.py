"""tools/execute_notebooks.py: a recorded time is a first run's (a fresh, empty POPRISK_CACHE per notebook),
and the device it names is the one the run used (issue 18)."""

from __future__ import annotations

import os
import pathlib
import sys

import nbformat

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tools import execute_notebooks as ex, timeouts  # noqa: E402

# A notebook that reports what the cache held when it started, then leaves an entry in it.
PROBE = """import os, pathlib
cache = pathlib.Path(os.environ["POPRISK_CACHE"])
print(sorted(p.name for p in cache.iterdir()) if cache.exists() else "absent")
cache.mkdir(parents=True, exist_ok=True)
(cache / "entry.pt").write_text("trained")"""


def _probe(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "probe.ipynb"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(PROBE)])
    nbformat.write(nb, path)
    return path


def _seen(path: pathlib.Path) -> str:
    return nbformat.read(path, as_version=4).cells[0].outputs[0]["text"].strip()


def test_each_run_starts_with_an_empty_cache_unless_told_to_keep_it(tmp_path, monkeypatch):
    warm = tmp_path / "warm-cache"
    monkeypatch.setenv("POPRISK_CACHE", str(warm))
    path = _probe(tmp_path)
    for _ in range(2):  # cold twice: the first run's entry is not seen by the second
        assert ex.execute(path, timeouts.notebook_cell(), cold=True) > 0
        assert _seen(path) == "[]"
    assert not warm.exists() and os.environ["POPRISK_CACHE"] == str(warm)  # the caller's cache untouched
    ex.execute(path, timeouts.notebook_cell(), cold=False)
    assert _seen(path) == "absent" and (warm / "entry.pt").exists()
    ex.execute(path, timeouts.notebook_cell(), cold=False)
    assert _seen(path) == "['entry.pt']"  # a warm run loads what an earlier one left


def test_record_says_cold_or_warm_and_names_the_device_used():
    status = {"notebooks": {}}
    ex.record(status, "book/x.ipynb", 12.34, fast=False, gpu=False)
    entry = status["notebooks"]["book/x.ipynb"]
    assert entry["seconds"] == 12.3 and entry["cache"] == "cold" and entry["device"].startswith("CPU (")
    ex.record(status, "book/x.ipynb", 5.0, fast=True, gpu=False, cold=False)
    assert entry["fast_seconds"] == 5.0 and entry["cache"] == "cold"  # FAST times do not touch the full entry
    assert ex.environment(False)["device"].startswith("CPU (")
