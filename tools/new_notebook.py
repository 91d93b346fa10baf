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
import re

import nbformat
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
CHECK_TAG = "nbval-check-output"  # nbval (0.11) compares the outputs of cells with this tag


def repository_url() -> str:
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    return cfg["repository"]["url"].rstrip("/")


def version() -> str:
    """The one version string of the book and of ``poprisk`` (``lib/poprisk/__init__.py``), read without
    importing the package."""
    text = (ROOT / "lib" / "poprisk" / "__init__.py").read_text()
    match = re.search(r'^__version__ = "([^"]+)"$', text, re.M)
    if not match:
        raise ValueError("lib/poprisk/__init__.py has no line __version__ = \"x.y.z\"")
    return match.group(1)


def bootstrap_source(url: str | None = None, ref: str | None = None) -> str:
    """The Colab bootstrap cell: installs poprisk on Colab, and only there, pinned to the release tag ``ref``
    (default ``v`` + :func:`version`), so that a saved copy of a notebook keeps the library it was written for.
    ``tools/release.py`` stamps this cell into every notebook."""
    url = url or repository_url()
    ref = ref or f"v{version()}"
    return (
        "# Colab bootstrap: on Google Colab, install the companion library `poprisk` from the book's repository,\n"
        "# pinned to the release this notebook belongs to. Anywhere else this cell does nothing.\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules:\n'
        "    import subprocess\n"
        "\n"
        f'    POPRISK = "poprisk @ git+{url}@{ref}"\n'
        '    subprocess.run([sys.executable, "-m", "pip", "install", "-q", POPRISK], check=True)'
    )


def is_bootstrap(cell) -> bool:
    """Whether ``cell`` is a Colab bootstrap cell (any version of it)."""
    return cell.cell_type == "code" and "google.colab" in cell.source and "pip" in cell.source


def md(text: str):
    return nbformat.v4.new_markdown_cell(text.strip("\n"))


def code(source: str, *, check: bool = False, tags: tuple[str, ...] = ()):
    cell = nbformat.v4.new_code_cell(source.strip("\n"))
    tags = (*tags, CHECK_TAG) if check else tags
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def bootstrap_cell(ref: str | None = None):
    """The hidden (``remove-cell``) bootstrap code cell."""
    cell = nbformat.v4.new_code_cell(bootstrap_source(ref=ref))
    cell.metadata["tags"] = ["remove-cell"]
    return cell


def set_gpu_runtime(nb, gpu: bool) -> None:
    """Colab's notebook metadata for a GPU runtime (``accelerator``, ``colab.gpuType``), or none of it."""
    if gpu:
        nb.metadata["accelerator"] = "GPU"
        nb.metadata["colab"] = {**nb.metadata.get("colab", {}), "provenance": [], "gpuType": "T4"}
    else:
        nb.metadata.pop("accelerator", None)
        colab = nb.metadata.get("colab")
        if colab is not None:
            colab.pop("gpuType", None)
            if set(colab) <= {"provenance"}:
                del nb.metadata["colab"]


def write_notebook(path, cells, *, gpu: bool = False) -> pathlib.Path:
    nb = nbformat.v4.new_notebook(cells=[bootstrap_cell(), *cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    set_gpu_runtime(nb, gpu)
    path = ROOT / path
    nbformat.write(nb, path)
    return path
