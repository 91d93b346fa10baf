"""Argument checks shared by every module of :mod:`poprisk` (each public entry calls them first).

Every public function validates its arguments before any expensive work and raises ``TypeError`` (wrong kind
of value) or ``ValueError`` (right kind, wrong value) with a message that names the argument and says what
was expected. Booleans are never accepted where a number is expected (``True`` is not 1 epoch), and strings
are never accepted where a boolean is expected (``"no"`` is truthy).

A value of the wrong kind raises :class:`ArgumentTypeError`, a subclass of both ``TypeError`` and
``ValueError`` (as NumPy's ``AxisError`` is of ``ValueError`` and ``IndexError``): a caller that guards a
call with either ``except`` clause sees it, whichever of the two it expects for "not a number".
"""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = ["ArgumentTypeError", "integer", "real", "boolean", "seed", "text", "mapping", "frame", "numeric_column", "reals",
           "model_input"]


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong kind (a string for a number, a list for a mapping, ...)."""


def integer(value, name: str, *, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an ``int`` in ``[low, high]`` (either end optional)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ArgumentTypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        span = f"[{'-inf' if low is None else low}, {'inf' if high is None else high}]"
        raise ValueError(f"{name} must be an integer in {span}, got {value}")
    return value


def real(value, name: str, *, low: float | None = None, high: float | None = None,
         low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a finite ``float`` in the interval given (ends open when asked)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ArgumentTypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
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
    raise ArgumentTypeError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")


def seed(value, name: str = "seed") -> int:
    """A seed: a non-negative integer (``None`` is refused — every random draw of the book is seeded)."""
    if value is None:
        raise ArgumentTypeError(f"{name} must be a non-negative integer; None (unseeded) is not allowed: "
                        "every random draw of the book is reproducible")
    return integer(value, name, low=0)


def text(value, name: str, *, choices=None) -> str:
    """``value`` if it is a string (one of ``choices`` when given)."""
    if not isinstance(value, str):
        raise ArgumentTypeError(f"{name} must be a string, got {value!r} ({type(value).__name__})")
    if choices is not None and value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def mapping(value, name: str, *, nonempty: bool = False):
    """``value`` if it is a mapping (a dict of conditions, of settings, ...), non-empty when asked."""
    from collections.abc import Mapping

    if not isinstance(value, Mapping):
        raise ArgumentTypeError(f"{name} must be a {'non-empty ' if nonempty else ''}mapping (a dict), got "
                                f"{value!r:.60} ({type(value).__name__})")
    if nonempty and not value:
        raise ValueError(f"{name} must be a non-empty mapping")
    return value


def frame(value, name: str, *, columns=(), nonempty: bool = False):
    """``value`` if it is a pandas DataFrame holding ``columns`` (and rows, when asked)."""
    import pandas as pd

    if not isinstance(value, pd.DataFrame):
        raise ArgumentTypeError(f"{name} must be a pandas DataFrame, got {type(value).__name__}")
    missing = [c for c in columns if c not in value.columns]
    if missing:
        raise ValueError(f"{name} lacks the column(s) {missing} (it has {list(value.columns)})")
    if nonempty and value.empty:
        raise ValueError(f"{name} has no rows (check the filter that made it)")
    return value


def numeric_column(df, column: str, name: str) -> np.ndarray:
    """Column ``column`` of ``df`` as finite float64 values; booleans, text, complex numbers, missing and
    non-finite values are refused, naming ``name`` (the argument that chose the column)."""
    import pandas as pd

    col = df[column]
    if (pd.api.types.is_bool_dtype(col) or not pd.api.types.is_numeric_dtype(col)
            or pd.api.types.is_complex_dtype(col)):
        raise ArgumentTypeError(f"{name} {column!r} must be a numeric column of real numbers, it has dtype "
                                f"{col.dtype}")
    values = col.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(values)
    if bad.any():
        raise ValueError(f"{name} {column!r} has {int(bad.sum())} missing or non-finite value(s) (rows "
                         f"{list(df.index[bad][:5])}); filter them out or fix the run that made them")
    return values


def reals(value, name: str, *, ndim: int | None = 1, finite: bool = True, min_size: int = 0) -> np.ndarray:
    """``value`` (a sequence, NumPy array or torch tensor of real numbers, any float width) as float64, with
    ``ndim`` dimensions when given; booleans, text and complex numbers are refused."""
    if isinstance(value, (str, bytes)) or value is None or isinstance(value, (numbers.Number, np.generic)):
        raise ArgumentTypeError(f"{name} must be an array of real numbers, got {type(value).__name__}")
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor: any device, half widths too
        value = value.detach().cpu()
        value = value.double() if value.is_floating_point() else value
        value = value.numpy()
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as exc:  # ragged nesting
        raise ArgumentTypeError(f"{name} must be a rectangular array of real numbers ({exc})") from None
    if arr.dtype == bool or arr.dtype.kind not in "iuf":
        raise ArgumentTypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array, got shape {arr.shape}")
    if arr.size < min_size:
        want = "one value" if min_size == 1 else f"{min_size} values"
        raise ValueError(f"{name} must hold at least {want}, got {arr.size}")
    arr = arr.astype(np.float64)
    if finite and not np.isfinite(arr).all():
        raise ValueError(f"{name} contains {int((~np.isfinite(arr)).sum())} non-finite value(s) (NaN or inf)")
    return arr


def model_input(model, x, y=None, *, name: str) -> None:
    """Refuse, before any training step, inputs a model cannot take: ``x`` of another dtype than the model's
    weights or of a feature shape its first layer rejects, and labels ``y`` outside its classes (one forward
    pass of a single example finds both). ``name`` is the calling function."""
    import torch

    param = next(model.parameters())
    if x.dtype != param.dtype:
        raise ArgumentTypeError(f"{name}: x has dtype {x.dtype} but the model's weights are {param.dtype}; "
                        f"convert x (x.to({param.dtype}))")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(x[:1].to(param.device))
    except RuntimeError as exc:
        raise ValueError(f"{name}: x of shape {tuple(x.shape)} does not fit the model ({exc})") from None
    finally:
        model.train(was_training)
    if out.ndim != 2:
        raise ValueError(f"{name}: the model must return logits shaped (N, C), got {tuple(out.shape)}")
    if y is not None and y.numel() and int(y.max()) >= out.shape[1]:
        raise ValueError(f"{name}: y holds label {int(y.max())}, outside the model's {out.shape[1]} classes "
                         f"[0, {out.shape[1]})")
