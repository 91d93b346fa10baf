"""Every public function of poprisk is used by a chapter, a test or a bench (issue 23): a public
name that nothing outside the library calls is either dead code or an untested promise.

Public: the names in a module's ``__all__``, or else every name it defines that does not start with ``_``.
Used: the name appears as a whole word in a chapter's code cells, a test file (other than this one) or a
bench script — a call, an attribute access or an import, not a mention in the library itself.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pathlib
import pkgutil
import re

import poprisk

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _modules():
    yield poprisk
    for info in pkgutil.walk_packages(poprisk.__path__, "poprisk."):
        yield importlib.import_module(info.name)


def _public(module):
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n, obj in vars(module).items() if not n.startswith("_")
                 and getattr(obj, "__module__", None) == module.__name__]
    # each function once, in the module that defines it (a package re-exports its submodules' names)
    return [n for n in names if inspect.isfunction(getattr(module, n))
            and getattr(module, n).__module__ == module.__name__]


def _users() -> str:
    texts = [p.read_text() for p in sorted((ROOT / "tests").glob("*.py")) if p.name != pathlib.Path(__file__).name]
    texts += [p.read_text() for p in sorted((ROOT / "bench").glob("*.py"))]
    for nb in sorted((ROOT / "book").glob("*.ipynb")):
        cells = json.loads(nb.read_text())["cells"]
        texts += ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    return "\n".join(texts)


def test_every_public_function_is_used_outside_the_library():
    text = _users()
    unused = sorted({f"{m.__name__}.{n}" for m in _modules() for n in _public(m)
                     if not re.search(rf"\b{re.escape(n)}\b", text)})
    assert not unused, f"public names no chapter, test or bench uses: {unused}"
