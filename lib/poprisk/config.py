"""Run-time switches shared by every chapter: the FAST switch, the device, and seeding.

* ``POPRISK_FAST=1`` (set by ``make test`` and CI) asks chapters to shrink epochs, seeds and grids so that the
  whole book executes quickly; unset (the default, used for the stored outputs) means *full* mode.
* The device is CUDA when available, otherwise the CPU; ``POPRISK_DEVICE`` overrides it.
* :func:`seed_everything` is the one place where Python, NumPy and torch are seeded.

The switch is read from the environment on every call, so a notebook can flip it with ``os.environ``.
"""

from __future__ import annotations

import os
import random

import numpy as np

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def is_fast() -> bool:
    """Whether ``POPRISK_FAST`` asks for the reduced (FAST) workload."""
    raw = os.environ.get("POPRISK_FAST", "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ValueError(f"POPRISK_FAST must be one of {sorted(_TRUE | _FALSE)}, got {raw!r}")


def fast_or_full(fast, full):
    """Return ``fast`` in FAST mode and ``full`` otherwise (the one way chapters scale their workload)."""
    return fast if is_fast() else full


def device(prefer: str | None = None):
    """The torch device chapters compute on: ``prefer`` or ``POPRISK_DEVICE`` if given, else cuda → cpu."""
    import torch

    name = prefer or os.environ.get("POPRISK_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was asked for but CUDA is not available on this machine")
    return dev


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python, NumPy's legacy global RNG and torch (CPU and CUDA); return a fresh NumPy ``Generator``.

    Prefer passing the returned generator (or explicit ``torch.Generator`` objects) around over relying on
    global state: the global seeding is a safety net for third-party code.
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
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
    """Whether long loops show a progress bar: on unless ``POPRISK_PROGRESS=0``.

    ``make execute`` turns bars off so that stored notebook outputs hold results, not bar redraws.
    """
    return os.environ.get("POPRISK_PROGRESS", "1").strip().lower() not in _FALSE


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
