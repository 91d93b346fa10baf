"""Argument checks shared by the core modules (``config``, ``data``, ``models``, ``train``).

Every public function validates its arguments before any expensive work and raises ``TypeError`` (wrong kind
of value) or ``ValueError`` (right kind, wrong value) with a message that names the argument and says what
was expected. Booleans are never accepted where a number is expected (``True`` is not 1 epoch), and strings
are never accepted where a boolean is expected (``"no"`` is truthy).
"""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = ["integer", "real", "boolean", "seed"]


def integer(value, name: str, *, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an ``int`` in ``[low, high]`` (either end optional)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        span = f"[{'-inf' if low is None else low}, {'inf' if high is None else high}]"
        raise ValueError(f"{name} must be an integer in {span}, got {value}")
    return value


def real(value, name: str, *, low: float | None = None, high: float | None = None,
         low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a finite ``float`` in the interval given (ends open when asked)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        span = (f"{'(' if low_open else '['}{'-inf' if low is None else low}, "
                f"{'inf' if high is None else high}{')' if high_open else ']'}")
        raise ValueError(f"{name} must lie in {span}, got {value}")
    return value


def boolean(value, name: str) -> bool:
    """``value`` if it is a ``bool`` (NumPy's too); anything else — ``"no"``, ``0``, ``None`` — is refused."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")


def seed(value, name: str = "seed") -> int:
    """A seed: a non-negative integer (``None`` is refused — every random draw of the book is seeded)."""
    if value is None:
        raise TypeError(f"{name} must be a non-negative integer; None (unseeded) is not allowed: "
                        "every random draw of the book is reproducible")
    return integer(value, name, low=0)
