"""Authoring helper: build a chapter notebook with the book's conventions from a list of cells.

Used from throw-away generator scripts while writing a chapter (``python my_gen.py``), never at build time:

    from tools.new_notebook import md, code, write_notebook
    write_notebook("book/ch07_hw_kmeans.ipynb", [md("# Title"), code("x = 1", check=True)], gpu=False)

Then execute it in full mode with ``make execute NB=book/ch07_hw_kmeans.ipynb``.
Conventions applied here: the hidden Colab bootstrap cell first, Python 3 kernelspec, Colab GPU metadata on
GPU chapters, and the nbval check tag on cells whose output is deterministic (``check=True``).
"""

from __future__ import annotations

import pathlib

import nbformat
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
CHECK_TAG = "nbval-check-output"  # nbval (0.11) compares the outputs of cells with this tag


def repository_url() -> str:
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    return cfg["repository"]["url"].rstrip("/")


def bootstrap_source(url: str | None = None) -> str:
    """The Colab bootstrap cell: installs poprisk from the repository on Colab, and only there."""
    url = url or repository_url()
    return (
        "# Colab bootstrap: on Google Colab, install the companion library `poprisk` from the book's repository.\n"
        "# Anywhere else this cell does nothing (locally, `make` has installed poprisk into .venv).\n"
        "import sys\n"
        "if \"google.colab\" in sys.modules:\n"
        "    import subprocess\n"
        "    subprocess.run([sys.executable, \"-m\", \"pip\", \"install\", \"-q\",\n"
        f"                    \"poprisk @ git+{url}@main\"], check=True)"
    )


def md(text: str):
    return nbformat.v4.new_markdown_cell(text.strip("\n"))


def code(source: str, *, check: bool = False, tags: tuple[str, ...] = ()):
    cell = nbformat.v4.new_code_cell(source.strip("\n"))
    tags = (*tags, CHECK_TAG) if check else tags
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def write_notebook(path, cells, *, gpu: bool = False) -> pathlib.Path:
    boot = nbformat.v4.new_code_cell(bootstrap_source())
    boot.metadata["tags"] = ["remove-cell"]
    nb = nbformat.v4.new_notebook(cells=[boot, *cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    if gpu:
        nb.metadata["accelerator"] = "GPU"
        nb.metadata["colab"] = {"provenance": [], "gpuType": "T4"}
    path = ROOT / path
    nbformat.write(nb, path)
    return path
