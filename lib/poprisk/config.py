"""Run-time switches shared by every chapter: the FAST switch, the device, and seeding.

* ``POPRISK_FAST=1`` (set by ``make test`` and CI) asks chapters to shrink epochs, seeds and grids so that the
  whole book executes quickly; unset (the default, used for the stored outputs) means *full* mode.
* The device is CUDA when available, otherwise the CPU; ``POPRISK_DEVICE`` overrides it.
* :func:`seed_everything` is the one place where Python, NumPy and torch are seeded.
* Training runs on a fixed number of CPU threads, :func:`train_threads` (``POPRISK_THREADS``, default 1):
  float reductions are ordered differently with 1 and 2 threads, so a network trained on a 2-core laptop
  would otherwise differ from the same network trained on a 16-core server.

The switch is read from the environment on every call, so a notebook can flip it with ``os.environ``.
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
import warnings

import numpy as np

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
#: more training threads than this is a typo, not a setting (and would oversubscribe every machine)
MAX_THREADS_PER_CORE = 4


def env_flag(name: str, default: bool) -> bool:
    """The switch ``name`` of the environment: one of ``1 true yes on`` / ``0 false no off`` (any case,
    surrounding spaces ignored); unset or empty means ``default``. Anything else is a ``ValueError`` naming
    the variable — a typo never silently picks a mode."""
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    word = raw.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError(f"{name} must be one of {sorted(_TRUE)} or {sorted(_FALSE)} (or unset), got {raw!r}")


def env_int(name: str, default: int, *, low: int, high: int) -> int:
    """The integer ``name`` of the environment in ``[low, high]``: ASCII digits only (no sign, no ``1e3``,
    no other scripts' digits), surrounding spaces ignored; unset or empty means ``default``."""
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    text = raw.strip()
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"{name} must be a whole number written with the digits 0-9, got {raw!r}")
    value = int(text)
    if not low <= value <= high:
        raise ValueError(f"{name} must lie in [{low}, {high}], got {value}")
    return value


def is_fast() -> bool:
    """Whether ``POPRISK_FAST`` asks for the reduced (FAST) workload (:func:`env_flag`, default off)."""
    return env_flag("POPRISK_FAST", False)


def fast_or_full(fast, full):
    """Return ``fast`` in FAST mode and ``full`` otherwise (the one way chapters scale their workload)."""
    return fast if is_fast() else full


_ANNOUNCED: set = set()


def in_colab() -> bool:
    """Whether this process runs inside Google Colab."""
    return "google.colab" in sys.modules


def device(prefer: str | None = None, *, verbose: bool | None = None):
    """The torch device chapters compute on: ``prefer`` or ``POPRISK_DEVICE`` if given, else cuda → cpu.

    On Colab (or with ``verbose=True``) the first call for each device says which one it picked, and a CPU
    pick on Colab warns that the GPU chapters want a GPU runtime (Runtime → Change runtime type). Elsewhere
    it is silent, so the stored pages carry no log lines.
    """
    import torch

    if prefer is not None and not isinstance(prefer, (str, torch.device)):
        raise TypeError(f"prefer must be a device name such as 'cpu' or 'cuda', got {prefer!r}")
    if prefer is not None:
        name, source = prefer, "device"
    elif (os.environ.get("POPRISK_DEVICE") or "").strip():
        name, source = os.environ["POPRISK_DEVICE"].strip(), "POPRISK_DEVICE"
    else:
        name, source = ("cuda" if torch.cuda.is_available() else "cpu"), "device"
    if isinstance(name, str) and (not name.strip() or not name.isascii()):
        raise ValueError(f"{source} must be a torch device name such as 'cpu', 'cuda' or 'cuda:0', got {name!r}")
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError) as exc:
        raise ValueError(f"{source}={name!r} is not a torch device name ({exc})") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{source}={name!r} asks for CUDA, but CUDA is not available on this machine")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"{source}={name!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(f"{source}={name!r} asks for Apple's MPS, which is not available on this machine")
    elif dev.type not in ("cpu", "meta"):
        raise ValueError(f"{source}={name!r}: poprisk computes on 'cpu', 'cuda' or 'mps', not {dev.type!r}")
    verbose = in_colab() if verbose is None else verbose
    if verbose and str(dev) not in _ANNOUNCED:
        _ANNOUNCED.add(str(dev))
        what = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU"
        print(f"poprisk: computing on {dev} ({what})")
        if dev.type == "cpu" and in_colab():
            warnings.warn("no GPU in this Colab runtime: the training chapters run, but slowly. "
                          "Runtime → Change runtime type → GPU.", stacklevel=2)
    return dev


def train_threads() -> int:
    """The number of CPU threads every training run uses (``POPRISK_THREADS``, default 1).

    Fixed, not "all cores", so that the same seed gives the same network on every machine; it is part of
    the model cache key.
    """
    return env_int("POPRISK_THREADS", 1, low=1, high=MAX_THREADS_PER_CORE * (os.cpu_count() or 1))


@contextlib.contextmanager
def torch_threads(n: int):
    """Run the block with torch using ``n`` intra-op CPU threads, then restore the previous number."""
    import torch

    from poprisk.checks import integer

    n = integer(n, "n", low=1)
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python, NumPy's legacy global RNG and torch (CPU and CUDA); return a fresh NumPy ``Generator``.

    Prefer passing the returned generator (or explicit ``torch.Generator`` objects) around over relying on
    global state: the global seeding is a safety net for third-party code.
    """
    from poprisk.checks import seed as check_seed

    seed = check_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    try:
        import torch
    except ImportError:  # numpy-only chapters do not need torch
        pass
    else:
        torch.manual_seed(seed)
    return np.random.default_rng(seed)


def progress_enabled() -> bool:
    """Whether long loops show a progress bar: ``POPRISK_PROGRESS`` (:func:`env_flag`, default on).

    ``make execute`` turns bars off so that stored notebook outputs hold results, not bar redraws.
    """
    return env_flag("POPRISK_PROGRESS", True)


def progress_bar(iterable=None, **kwargs):
    """A tqdm progress bar: a notebook widget where ipywidgets exists (Colab, Jupyter), text elsewhere.

    Disabled when :func:`progress_enabled` is false; ``disable=True`` in ``kwargs`` also turns it off.
    """
    try:
        import ipywidgets  # noqa: F401  (only probing for widget support)
        from tqdm.auto import tqdm
    except ImportError:
        from tqdm.std import tqdm
    kwargs["disable"] = kwargs.get("disable", False) or not progress_enabled()
    return tqdm(iterable, **kwargs)
