"""Execute chapter notebooks top-to-bottom in place (``make execute``), in full mode unless told otherwise.

Records each notebook's wall time, the device and the library versions in ``book/execution_status.json``
and re-renders the table of ``book/status.md`` from it. Usage::

    python tools/execute_notebooks.py                 # every notebook in _toc.yml, full mode
    python tools/execute_notebooks.py book/ch01_phenomenon.ipynb
    POPRISK_FAST=1 python tools/execute_notebooks.py  # FAST-mode times only (``make timings-fast``)

Only a full-mode run on the CPU stores its outputs (the book's pages). A FAST run, or any run on a GPU, is
timed and recorded (``fast_seconds``; ``gpu.seconds``/``gpu.fast_seconds``) but leaves the notebook as it is;
the runtime banners (``book/_ext/runtime_banner.py``) show these times.

Each notebook runs with a fresh, empty ``POPRISK_CACHE`` (a temporary folder, removed afterwards), so a recorded
time is a first run's, as a reader who opens that chapter first gets it: nothing trained by an earlier run or
another chapter is loaded. ``--warm-cache`` keeps the caller's cache (re-runs while editing).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import sys
import tempfile
import time

import nbformat
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tools import timeouts  # noqa: E402

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


def environment(gpu: bool) -> dict:
    """Versions and the device the run used: the GPU's name only when it ran on the GPU (a run forced to
    the CPU with ``POPRISK_DEVICE=cpu`` on a machine with CUDA is a CPU run)."""
    import numpy
    import torch

    cpu = f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"
    dev = torch.cuda.get_device_name(0) if gpu else cpu
    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__,
            "device": dev}


def execute(path: pathlib.Path, timeout: int, *, store: bool = True, cold: bool = True) -> float:
    """Run ``path`` top to bottom; return its wall time. ``cold``: in a fresh, empty ``POPRISK_CACHE``."""
    nb = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory(prefix="poprisk-cold-cache-") as fresh:
        saved = os.environ.get("POPRISK_CACHE")
        if cold:
            os.environ["POPRISK_CACHE"] = fresh  # the kernel inherits the environment at its start
        try:
            start = time.perf_counter()
            NotebookClient(nb, timeout=timeout, kernel_name="python3",
                           resources={"metadata": {"path": str(path.parent)}}).execute()
            elapsed = time.perf_counter() - start
        finally:
            if saved is None:
                os.environ.pop("POPRISK_CACHE", None)
            else:
                os.environ["POPRISK_CACHE"] = saved
    if store:
        nbformat.write(nb, path)
    return elapsed


def on_gpu() -> bool:
    import torch

    return torch.cuda.is_available() and os.environ.get("POPRISK_DEVICE", "cuda").startswith("cuda")


def record(status: dict, name: str, elapsed: float, *, fast: bool, gpu: bool, cold: bool = True) -> None:
    """Merge one timing into ``status`` (the parsed execution_status.json) without losing the others;
    ``cache`` says whether it was a first (``cold``) run or one that could load cached networks (``warm``)."""
    entry = status["notebooks"].setdefault(name, {})
    cache = "cold" if cold else "warm"
    if gpu:
        g = entry.setdefault("gpu", {})
        g["fast_seconds" if fast else "seconds"] = round(elapsed, 1)
        g.update(device=environment(gpu)["device"], date=time.strftime("%Y-%m-%d"), cache=cache)
    elif fast:
        entry["fast_seconds"] = round(elapsed, 1)
    else:
        entry.update({"seconds": round(elapsed, 1), "date": time.strftime("%Y-%m-%d"), "cache": cache,
                      **environment(gpu)})


def render_status_page() -> None:
    """Rewrite the table between the markers of book/status.md from book/execution_status.json."""
    status = json.loads(STATUS.read_text())["notebooks"]
    titles = {}
    for name in status:
        nb = nbformat.read(ROOT / name, as_version=4)
        first = next((c.source for c in nb.cells if c.cell_type == "markdown"), name)
        titles[name] = first.splitlines()[0].lstrip("# ").strip()
    rows = ["| Chapter | Full-mode run (s) | FAST (s) | GPU full / FAST (s) | Date | Device | Python | torch | numpy |",
            "|---|---:|---:|---:|---|---|---|---|---|"]
    for name in sorted(status):
        e = status[name]
        if "seconds" not in e:
            continue
        link = f"[{titles[name]}]({pathlib.Path(name).stem}.ipynb)"
        fast = f"{e['fast_seconds']:.1f}" if "fast_seconds" in e else "–"
        g = e.get("gpu", {})
        gpu = " / ".join(f"{g[k]:.1f}" if k in g else "–" for k in ("seconds", "fast_seconds")) if g else "–"
        rows.append(f"| {link} | {e['seconds']:.1f} | {fast} | {gpu} | {e['date']} | {e['device']} | "
                    f"{e['python']} | {e['torch']} | {e['numpy']} |")
    total = sum(e["seconds"] for e in status.values() if "seconds" in e)
    rows.append(f"| **Total** | **{total:.1f}** | | | | | | | |")
    page = STATUS_PAGE.read_text()
    head, rest = page.split(TABLE_START)
    _, tail = rest.split(TABLE_END)
    STATUS_PAGE.write_text(head + TABLE_START + "\n" + "\n".join(rows) + "\n" + TABLE_END + tail)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=pathlib.Path)
    parser.add_argument("--timeout", type=int, default=timeouts.notebook_cell(),
                        help="per-cell timeout in seconds (default: tools/timeouts.py)")
    parser.add_argument("--status", type=pathlib.Path, default=STATUS,
                        help="timings file (default book/execution_status.json, which also re-renders status.md)")
    parser.add_argument("--no-store", action="store_true", help="time the run, leave the notebook unchanged")
    parser.add_argument("--warm-cache", action="store_true",
                        help="keep the caller's POPRISK_CACHE (default: a fresh, empty one per notebook)")
    args = parser.parse_args(argv)
    paths = [p.resolve() for p in args.notebooks] or toc_notebooks()
    fast = os.environ.get("POPRISK_FAST", "").strip().lower() in {"1", "true", "yes", "on"}
    gpu = on_gpu()
    os.environ["POPRISK_PROGRESS"] = "0"  # stored outputs hold results, not progress-bar redraws
    for path in paths:
        print(f"executing {path.relative_to(ROOT)} ...", flush=True)
        # Only full-mode CPU runs are the book's stored results; the others are timings.
        elapsed = execute(path, args.timeout, store=not (fast or gpu or args.no_store), cold=not args.warm_cache)
        print(f"  done in {elapsed:.1f} s", flush=True)
        # Re-read just before writing: several notebooks may be executed side by side.
        status = json.loads(args.status.read_text()) if args.status.exists() else {"notebooks": {}}
        record(status, str(path.relative_to(ROOT)), elapsed, fast=fast, gpu=gpu, cold=not args.warm_cache)
        args.status.write_text(json.dumps(status, indent=2, sort_keys=True) + "\n")
        if args.status.resolve() == STATUS.resolve():
            render_status_page()
    return 0


if __name__ == "__main__":
    sys.exit(main())
