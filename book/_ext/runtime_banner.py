"""Sphinx extension: a runtime banner under each chapter title, from the stored run; and the book's version.

The banner says which runtime a chapter needs (a CPU is fine everywhere; a GPU is named only for the chapters
that train networks, which carry Colab's GPU metadata, and only once a GPU time is measured) and how long it
took, read from
``book/execution_status.json`` (written by ``make execute``: full-mode and FAST wall times on the CPU, and on a
GPU once ``tools/gpu_check.sh`` has measured them). The notebooks themselves are never edited: the banner is
inserted into the page's doctree at build time. ``tools/colab_notebooks.py`` puts the same text into the
generated Colab notebooks (:func:`banner_text` is the one formatter).

The Sphinx ``version``/``release`` are set from ``poprisk.__version__`` (one version for book and library).
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]
STATUS = ROOT / "book" / "execution_status.json"
CHAPTER = re.compile(r"^book/ch\d\d[a-z]?_")  # ch09b: a chapter too


def _seconds(s: float) -> str:
    s = float(s)
    if s < 60:
        return f"{s:.0f} s"
    return f"{int(s // 60)} min {int(round(s % 60)):02d} s"


def _times(entry: dict) -> str:
    full = _seconds(entry["seconds"]) if "seconds" in entry else "not measured"
    fast = f"; FAST mode: {_seconds(entry['fast_seconds'])}" if "fast_seconds" in entry else ""
    return f"full run: {full}{fast}"


def banner_text(entry: dict | None, gpu: bool) -> str:
    """One line: the runtime a chapter needs and the measured times of the stored run (``entry`` of the status
    file). A GPU is mentioned only once a GPU time exists: an unmeasured "GPU recommended" sent readers to wait
    for a GPU runtime that may not be faster for these small networks (issue 21)."""
    g = (entry or {}).get("gpu")
    want = "CPU or GPU" if gpu and g else "CPU is fine (no GPU needed)"
    parts = [f"Runtime: {want}."]
    if entry:
        parts.append(f"CPU, {_times(entry)}.")
        if g:
            parts.append(f"GPU ({g.get('device', 'CUDA')}), {_times(g)}.")
    else:
        parts.append("Run time: not measured yet.")
    return " ".join(parts)


def _wants_gpu(docname: str) -> bool:
    path = ROOT / f"{docname}.ipynb"
    if not path.exists():
        return False
    return json.loads(path.read_text(encoding="utf-8")).get("metadata", {}).get("accelerator") == "GPU"


def _status() -> dict:
    return json.loads(STATUS.read_text()).get("notebooks", {}) if STATUS.exists() else {}


def insert_banner(app, doctree) -> None:
    from docutils import nodes

    docname = app.env.docname
    if not CHAPTER.match(docname):
        return
    section = next(iter(doctree.findall(nodes.section)), None)
    if section is None or not isinstance(section[0], nodes.title):
        return
    text = banner_text(_status().get(f"{docname}.ipynb"), _wants_gpu(docname))
    para = nodes.paragraph("", "", nodes.emphasis("", text), classes=["runtime-banner"])
    section.insert(1, para)


def outdated(app, env, added, changed, removed):
    """Re-read the chapters when the stored run changed (their banners depend on it)."""
    digest = hashlib.sha256(STATUS.read_bytes()).hexdigest() if STATUS.exists() else ""
    if getattr(env, "runtime_banner_digest", None) == digest:
        return []
    env.runtime_banner_digest = digest
    return [d for d in env.found_docs if CHAPTER.match(d)]


def set_version(app, config) -> None:
    text = (ROOT / "lib" / "poprisk" / "__init__.py").read_text()
    version = re.search(r'^__version__ = "([^"]+)"$', text, re.M).group(1)
    config.version = config.release = version


def setup(app):
    app.connect("config-inited", set_version)
    app.connect("env-get-outdated", outdated)
    app.connect("doctree-read", insert_banner)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True,
            "env_version": 2}  # 2: the banner text changed (issue 21)
