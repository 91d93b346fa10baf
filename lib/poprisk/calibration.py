"""Calibration of a classifier's probabilities: temperature scaling and the expected calibration error
(chapters 1, 9 and 10).

A network's test cross-entropy can fall for two different reasons: its *ranking* of the classes improves, or
its probabilities merely become less over-confident. Temperature scaling (Guo et al. 2017) isolates the
second: the logits ``z`` are divided by one scalar ``T > 0``,

.. math::  p_T(y \\mid x) = \\operatorname{softmax}(z / T)_y ,

which never changes the predicted class (so neither the accuracy) but can lower the mean cross-entropy a lot
when the network is over-confident (``T > 1``). The book uses it as the control for the claim that
compression lowers the test loss by removing information: a temperature fitted on held-out data removes no
information from the weights at all.

* :func:`fit_temperature` — the ``T`` in ``[0.05, 20]`` minimising the mean cross-entropy of ``z / T`` on the
  data given (validation data, never the test set): a bounded scalar search over ``log T`` in float64. The
  objective is convex in ``1/T`` (a log-sum-exp of affine functions minus an affine one), so the minimiser
  is unique and the search finds it to ~1e-9 relative.
* :func:`expected_calibration_error` — the standard equal-width-bin ECE of the top-class probability:
  ``Σ_b (n_b/n) |acc_b − conf_b|`` over ``bins`` bins of ``[0, 1]``; :func:`reliability_curve` gives the
  per-bin confidence, accuracy and count behind it (the reliability diagram).

Inputs are logits ``(n, C)`` and integer labels ``(n,)`` as NumPy arrays or torch tensors (any device, any
float width: float16 and bfloat16 logits are widened exactly to float64); all computation is float64 NumPy. Bad input — non-finite logits, mismatched lengths, labels outside ``[0, C)``,
``bins < 1`` — raises ``ValueError``/``TypeError`` naming the argument.
"""

from __future__ import annotations

import math

import numpy as np

from poprisk import checks

__all__ = ["T_MIN", "T_MAX", "fit_temperature", "temperature_scale", "per_example_ce", "cross_entropy",
           "expected_calibration_error", "reliability_curve"]

#: The search interval of :func:`fit_temperature`.
T_MIN, T_MAX = 0.05, 20.0


def _to_numpy(x, name: str) -> np.ndarray:
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor, possibly on a GPU
        x = x.detach().cpu()
        # NumPy has no bfloat16: widen every half-precision tensor (exactly) before leaving torch
        x = (x.double() if x.is_floating_point() else x).numpy()
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"{name} must be an array or tensor, got {type(x).__name__}")
    try:
        return np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name} must be array-like: {exc}") from exc


def _logits(logits) -> np.ndarray:
    z = _to_numpy(logits, "logits")
    if z.dtype == bool or not (np.issubdtype(z.dtype, np.floating) or np.issubdtype(z.dtype, np.integer)):
        raise TypeError(f"logits must be real numbers, got dtype {z.dtype}")
    if z.ndim != 2 or z.shape[0] == 0 or z.shape[1] < 2:
        raise ValueError(f"logits must have shape (n, C) with n >= 1 and C >= 2, got {z.shape}")
    z = z.astype(np.float64)
    if not np.isfinite(z).all():
        raise ValueError("logits contain non-finite values (NaN or inf)")
    return z


def _checked(logits, labels) -> tuple[np.ndarray, np.ndarray]:
    z = _logits(logits)
    y = _to_numpy(labels, "labels")
    if y.ndim != 1 or y.shape[0] != z.shape[0]:
        raise ValueError(f"labels must have shape ({z.shape[0]},) to match logits {z.shape}, got {y.shape}")
    if y.dtype == bool or not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating)):
        raise TypeError(f"labels must be integers, got dtype {y.dtype}")
    if np.issubdtype(y.dtype, np.floating):
        if not (np.isfinite(y).all() and (y == np.round(y)).all()):
            raise ValueError("labels must be whole numbers")
    y = y.astype(np.int64)
    if y.min() < 0 or y.max() >= z.shape[1]:
        raise ValueError(f"labels must lie in [0, {z.shape[1]}) (C = {z.shape[1]} classes), "
                         f"got values in [{y.min()}, {y.max()}]")
    return z, y


def _temperature(T) -> float:
    return checks.real(T, "T", low=0.0, low_open=True)


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def per_example_ce(logits, labels, T: float = 1.0) -> np.ndarray:
    """Per-example cross-entropy ``−log softmax(z_i / T)_{y_i}`` (nats), float64."""
    z, y = _checked(logits, labels)
    T = _temperature(T)
    # shift by the row maximum *before* dividing by T: z / T overflows to inf for large logits and small T
    with np.errstate(over="ignore"):  # a gap that overflows is -inf: probability 0, which is exact enough
        return -_log_softmax((z - z.max(axis=1, keepdims=True)) / T)[np.arange(y.size), y]


def cross_entropy(logits, labels, T: float = 1.0) -> float:
    """Mean cross-entropy of ``softmax(z / T)`` (nats)."""
    return float(per_example_ce(logits, labels, T).mean())


def fit_temperature(logits, labels) -> float:
    """The temperature ``T ∈ [T_MIN, T_MAX]`` that minimises the mean cross-entropy of ``logits / T``.

    Fit it on data the model did not train on and that will not report the result (a validation set).
    Bounded Brent search over ``log T`` (scipy), float64; the objective is convex in ``1/T``, so the
    minimiser is unique (it sits on an end of the interval only when the optimum lies outside it).
    """
    from scipy.optimize import minimize_scalar

    z, y = _checked(logits, labels)
    # Subtracting each row's max leaves every ratio z/T unchanged in the softmax, and keeps exp() in range.
    z = z - z.max(axis=1, keepdims=True)
    zy = z[np.arange(y.size), y]

    def loss(log_t: float) -> float:
        s = z / math.exp(log_t)
        m = s.max(axis=1)
        return float(np.mean(m + np.log(np.exp(s - m[:, None]).sum(axis=1)) - zy / math.exp(log_t)))

    lo, hi = math.log(T_MIN), math.log(T_MAX)
    res = minimize_scalar(loss, bounds=(lo, hi), method="bounded", options={"xatol": 1e-10})
    best = min((res.x, lo, hi), key=loss)  # a monotone objective ends at a bound Brent may stop short of
    return float(math.exp(best))


def temperature_scale(logits, T: float):
    """``logits / T`` in the type it came in (a torch tensor stays a tensor on its device)."""
    T = _temperature(T)
    if hasattr(logits, "detach") and hasattr(logits, "cpu"):
        _logits(logits)
        return logits / T
    return _logits(logits) / T


def _top_class(logits, labels, bins) -> tuple[np.ndarray, np.ndarray, int]:
    bins = checks.integer(bins, "bins", low=1)
    z, y = _checked(logits, labels)
    p = np.exp(_log_softmax(z))
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    return conf, correct, int(bins)


def _bin_index(conf: np.ndarray, bins: int) -> np.ndarray:
    # Bins (b/B, (b+1)/B]; a confidence of exactly 1 falls in the last bin. Confidences are >= 1/C > 0.
    return np.clip(np.ceil(conf * bins).astype(np.int64) - 1, 0, bins - 1)


def expected_calibration_error(logits, labels, bins: int = 15) -> float:
    """ECE of the top-class probability with ``bins`` equal-width bins: ``Σ_b (n_b/n) |acc_b − conf_b|``."""
    conf, correct, bins = _top_class(logits, labels, bins)
    # only the occupied bins: memory O(n) whatever ``bins`` is (empty bins contribute nothing)
    _, idx = np.unique(_bin_index(conf, bins), return_inverse=True)
    idx = idx.reshape(-1)
    gap = np.abs(np.bincount(idx, correct) - np.bincount(idx, conf))
    return float(gap.sum() / idx.size)


def reliability_curve(logits, labels, bins: int = 15):
    """The reliability diagram behind :func:`expected_calibration_error`: a DataFrame with one row per bin —
    ``lower``, ``upper`` (the bin's edges), ``confidence`` (mean top-class probability), ``accuracy`` and
    ``count``; empty bins have NaN confidence and accuracy."""
    import pandas as pd

    checks.integer(bins, "bins", low=1, high=10**6)  # the curve has one row per bin, occupied or not
    conf, correct, bins = _top_class(logits, labels, bins)
    idx = _bin_index(conf, bins)
    count = np.bincount(idx, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.where(count > 0, np.bincount(idx, conf, bins) / count, np.nan)
        acc = np.where(count > 0, np.bincount(idx, correct, bins) / count, np.nan)
    edges = np.arange(bins + 1) / bins
    return pd.DataFrame({"lower": edges[:-1], "upper": edges[1:], "confidence": mean_conf,
                         "accuracy": acc, "count": count})
