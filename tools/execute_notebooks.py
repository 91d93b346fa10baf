"""Execute chapter notebooks top-to-bottom in place (``make execute``), in full mode unless told otherwise.

Records each notebook's wall time, the device and the library versions in ``book/execution_status.json``
and re-renders the table of ``book/status.md`` from it. Usage::

    python tools/execute_notebooks.py                 # every notebook in _toc.yml, full mode
    python tools/execute_notebooks.py book/ch01_phenomenon.ipynb
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import sys
import time

import nbformat
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).resolve().parents[1]
STATUS = ROOT / "book" / "execution_status.json"
STATUS_PAGE = ROOT / "book" / "status.md"
TABLE_START, TABLE_END = "<!-- status-table:start -->", "<!-- status-table:end -->"


def toc_files() -> list[str]:
    """Every document of ``_toc.yml`` (root first), as paths without extension relative to the repository."""
    import yaml

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc.get("parts", toc.get("chapters", [])))
    return files


def toc_notebooks() -> list[pathlib.Path]:
    return [ROOT / f"{f}.ipynb" for f in toc_files() if (ROOT / f"{f}.ipynb").exists()]


def environment() -> dict:
    import numpy
    import torch

    dev = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"
    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__,
            "device": dev}


def execute(path: pathlib.Path, timeout: int) -> float:
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    elapsed = time.perf_counter() - start
    nbformat.write(nb, path)
    return elapsed


def render_status_page() -> None:
    """Rewrite the table between the markers of book/status.md from book/execution_status.json."""
    status = json.loads(STATUS.read_text())["notebooks"]
    titles = {}
    for name in status:
        nb = nbformat.read(ROOT / name, as_version=4)
        first = next((c.source for c in nb.cells if c.cell_type == "markdown"), name)
        titles[name] = first.splitlines()[0].lstrip("# ").strip()
    rows = ["| Chapter | Full-mode run (s) | Date | Device | Python | torch | numpy |",
            "|---|---:|---|---|---|---|---|"]
    for name in sorted(status):
        e = status[name]
        link = f"[{titles[name]}]({pathlib.Path(name).stem}.ipynb)"
        rows.append(f"| {link} | {e['seconds']:.1f} | {e['date']} | {e['device']} | {e['python']} | "
                    f"{e['torch']} | {e['numpy']} |")
    total = sum(e["seconds"] for e in status.values())
    rows.append(f"| **Total** | **{total:.1f}** | | | | | |")
    page = STATUS_PAGE.read_text()
    head, rest = page.split(TABLE_START)
    _, tail = rest.split(TABLE_END)
    STATUS_PAGE.write_text(head + TABLE_START + "\n" + "\n".join(rows) + "\n" + TABLE_END + tail)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=pathlib.Path)
    parser.add_argument("--timeout", type=int, default=3600, help="per-cell timeout in seconds")
    args = parser.parse_args(argv)
    paths = [p.resolve() for p in args.notebooks] or toc_notebooks()
    fast = os.environ.get("POPRISK_FAST", "")
    os.environ["POPRISK_PROGRESS"] = "0"  # stored outputs hold results, not progress-bar redraws
    for path in paths:
        print(f"executing {path.relative_to(ROOT)} ...", flush=True)
        elapsed = execute(path, args.timeout)
        print(f"  done in {elapsed:.1f} s", flush=True)
        if fast:
            continue  # only full-mode runs are the book's stored results
        # Re-read just before writing: several notebooks may be executed side by side.
        status = json.loads(STATUS.read_text()) if STATUS.exists() else {"notebooks": {}}
        status["notebooks"][str(path.relative_to(ROOT))] = {
            "seconds": round(elapsed, 1), "date": time.strftime("%Y-%m-%d"), **environment()}
        STATUS.write_text(json.dumps(status, indent=2, sort_keys=True) + "\n")
        render_status_page()
    return 0


if __name__ == "__main__":
    sys.exit(main())
