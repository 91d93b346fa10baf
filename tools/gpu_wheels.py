"""Wheels for the device machine (``make gpu-wheels``): what tools/gpu_check.sh needs and that machine's image lacks.

The lent GPU machines run their own Python (3.12, CUDA torch, numpy, pandas, scipy, matplotlib, scikit-learn,
pytest, hypothesis, ... : the device tool's KINDS.md, package list of 2026-11-17) and reach no network. What
the notebooks and the library need beyond that image is fetched here, at the versions requirements.txt pins,
as CPython 3.12 x86-64 wheels into ``.whl/`` (ignored by git), which the device call carries
(``carry=[".whl"]``) and tools/gpu_check.sh installs with ``pip install --no-index --target``.
"""

from __future__ import annotations

import argparse
import pathlib
import re
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
# Executing notebooks (nbclient + an IPython kernel) and poprisk's one dependency the image lacks (mlxtend);
# every requirement of these that is not in the image's list.
MISSING = ("asttokens comm debugpy executing fastjsonschema ipykernel ipython ipython-pygments-lexers jedi "
           "jsonschema jsonschema-specifications jupyter-client jupyter-core matplotlib-inline mlxtend nbclient "
           "nbformat nest-asyncio2 parso pexpect platformdirs prompt-toolkit ptyprocess pure-eval pyzmq "
           "referencing rpds-py stack-data tornado traitlets tzdata wcwidth").split()
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_26_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "manylinux_2_5_x86_64", "manylinux1_x86_64")


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(requirements: pathlib.Path = ROOT / "requirements.txt") -> dict[str, str]:
    """``{normalized name: NAME==VERSION}`` of requirements.txt's exact pins."""
    found = {}
    for line in requirements.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+)==(\S+)", line.strip())
        if m:
            found[normalize(m.group(1))] = f"{m.group(1)}=={m.group(2)}"
    return found


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=pathlib.Path, default=ROOT / ".whl")
    args = ap.parse_args(argv)
    pinned = pins()
    unpinned = [n for n in MISSING if n not in pinned]
    if unpinned:
        raise SystemExit(f"not pinned in requirements.txt: {unpinned}")
    shutil.rmtree(args.out, ignore_errors=True)
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version",
           "3.12", "--implementation", "cp", *(f"--platform={p}" for p in PLATFORMS), "-d", str(args.out),
           *(pinned[n] for n in MISSING)]
    subprocess.run(cmd, check=True)
    wheels = sorted(args.out.glob("*.whl"))
    got = {normalize(w.name.split("-")[0]) for w in wheels}
    if got != set(MISSING) or len(wheels) != len(MISSING):
        raise SystemExit(f"expected one wheel each of {sorted(MISSING)}, got {[w.name for w in wheels]}")
    size = sum(w.stat().st_size for w in wheels) / 2**20
    print(f"{len(wheels)} wheels, {size:.1f} MiB in {args.out} (the device call carries it: carry=['.whl'])")
    return 0


if __name__ == "__main__":
    sys.exit(main())
