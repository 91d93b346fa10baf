"""Per-layer scalar weight sharing (chapters 1, 3, 7 and 9).

A layer's weights ``w_1..w_n`` are replaced by ``K`` shared values (the *codebook* or centres ``c``) and a label
per weight. Hessian-weighted K-means :cite:`choi2017towards` chooses them to minimise the quadratic model of
the loss increase (chapter 5)

.. math:: \\sum_j h_j (w_j - c_{k(j)})^2,

with importances ``h_j > 0`` (a Hessian-diagonal estimate); ``h ≡ 1`` is plain K-means. Lloyd's iteration
alternates the nearest-centre assignment (in 1-D: a ``searchsorted`` against the mid-points of the sorted
centres) and the weighted-mean update ``c_k = Σ_{C_k} h w / Σ_{C_k} h``.

Conventions shared by every quantizer here: it returns ``(centers, labels)`` with ``centers`` ascending
(float64) and ``labels`` integer indices into it; an empty cluster keeps its previous centre (so no NaN can
appear) and is reported by an entropy of zero for that label.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

INITS = ("quantile", "linear", "random")


def _as_weights(w, name: str = "w") -> np.ndarray:
    arr = w.detach().cpu().numpy() if isinstance(w, torch.Tensor) else np.asarray(w)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False).reshape(-1)
    if arr.size == 0:
        raise ValueError(f"{name} must contain at least one weight")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains non-finite values (NaN or inf)")
    return arr


def _as_importance(h, n: int, name: str = "h") -> np.ndarray:
    if h is None:
        return np.ones(n)
    arr = _as_weights(h, name)
    if arr.size != n:
        raise ValueError(f"{name} must have one importance per weight: expected {n}, got {arr.size}")
    if (arr <= 0).any():
        raise ValueError(f"{name} must be strictly positive (clip or shift a Hessian estimate first)")
    return arr


def _check_k(k, n: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if k > n:
        raise ValueError(f"k={k} is larger than the number of weights ({n})")
    return int(k)


def _weighted_quantiles(w: np.ndarray, h: np.ndarray, q: np.ndarray) -> np.ndarray:
    order = np.argsort(w, kind="stable")
    cum = np.cumsum(h[order])
    cum = (cum - 0.5 * h[order]) / cum[-1]
    return np.interp(q, cum, w[order])


def init_centers(w, k: int, *, h=None, init: str = "quantile", seed: int = 0) -> np.ndarray:
    """Initial codebook, ascending: ``"quantile"`` (the (i+½)/K weighted quantiles — the authors' choice),
    ``"linear"`` (evenly spaced over [min w, max w]) or ``"random"`` (K distinct weights drawn with ``seed``)."""
    w = _as_weights(w)
    h = _as_importance(h, w.size)
    k = _check_k(k, w.size)
    if init == "quantile":
        c = _weighted_quantiles(w, h, (np.arange(k) + 0.5) / k)
    elif init == "linear":
        c = np.linspace(w.min(), w.max(), k)
    elif init == "random":
        c = np.random.default_rng(seed).choice(np.unique(w), size=min(k, np.unique(w).size), replace=False)
        c = np.concatenate([c, np.full(k - c.size, c[0])])
    else:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    return np.sort(c)


def assign(w, centers) -> np.ndarray:
    """Index of the nearest centre for each weight (ties go to the lower centre); ``centers`` ascending."""
    w = _as_weights(w)
    c = np.asarray(centers, dtype=np.float64)
    if c.ndim != 1 or c.size == 0 or (np.diff(c) < 0).any():
        raise ValueError("centers must be a non-empty ascending 1-D array")
    return np.searchsorted(0.5 * (c[1:] + c[:-1]), w, side="left").astype(np.int64)


def hw_kmeans(w, h, k: int, *, iters: int = 30, init: str = "quantile", seed: int = 0):
    """Hessian-weighted K-means of scalar weights by Lloyd's iteration (``h=None`` gives plain K-means).

    Runs ``iters`` Lloyd steps at most (stopping early at a fixed point) from :func:`init_centers`.
    Returns ``(centers, labels)``; a local optimum only — chapter 7 compares it with the exact optimum.
    """
    w = _as_weights(w)
    h = _as_importance(h, w.size)
    k = _check_k(k, w.size)
    if not isinstance(iters, (int, np.integer)) or iters < 0:
        raise ValueError(f"iters must be a non-negative integer, got {iters!r}")
    centers = init_centers(w, k, h=h, init=init, seed=seed)
    for _ in range(iters):
        labels = assign(w, centers)
        mass = np.bincount(labels, weights=h, minlength=k)
        moment = np.bincount(labels, weights=h * w, minlength=k)
        # An empty cluster keeps its centre: it may be re-populated later and never produces NaN.
        new = np.where(mass > 0, moment / np.where(mass > 0, mass, 1.0), centers)
        new.sort()
        if np.array_equal(new, centers):
            break
        centers = new
    return centers, assign(w, centers)


def kmeans(w, k: int, *, iters: int = 30, init: str = "quantile", seed: int = 0):
    """Plain (unweighted) scalar K-means: :func:`hw_kmeans` with ``h ≡ 1``."""
    return hw_kmeans(w, None, k, iters=iters, init=init, seed=seed)


def distortion(w, h, centers, labels) -> float:
    """Hessian-weighted distortion ``Σ_j h_j (w_j − c_{labels_j})²`` (``h=None``: squared error)."""
    w = _as_weights(w)
    h = _as_importance(h, w.size)
    c = np.asarray(centers, dtype=np.float64)
    lab = np.asarray(labels)
    if lab.shape != w.shape or lab.dtype.kind not in "iu" or lab.min() < 0 or lab.max() >= c.shape[0]:
        raise ValueError("labels must be integer indices into centers, one per weight")
    return float(np.sum(h * (w - c[lab]) ** 2))


def label_entropy_bits(labels, k: int) -> float:
    """Empirical entropy (bits per weight) of the labels: the size an entropy coder needs per weight."""
    lab = np.asarray(labels).reshape(-1)
    counts = np.bincount(lab, minlength=k).astype(np.float64)
    p = counts[counts > 0] / lab.size
    return float(-(p * np.log2(p)).sum())


def entropy_coded_bits(labels, k: int, *, codebook_bits: int = 32) -> float:
    """Bits to store a quantized layer: ``n · Ĥ(labels) + codebook_bits · K`` (paper notes §6)."""
    lab = np.asarray(labels).reshape(-1)
    return lab.size * label_entropy_bits(lab, k) + codebook_bits * k


@dataclass(frozen=True)
class LayerReport:
    """What quantizing one layer did: its size, codebook, distortion and entropy-coded size."""

    name: str
    n_weights: int
    k: int
    centers: np.ndarray
    distortion: float
    entropy_bits: float
    coded_bits: float


@dataclass(frozen=True)
class QuantizationReport:
    layers: list[LayerReport]

    @property
    def compression_ratio(self) -> float:
        """Entropy-coded size over the 32-bit float size of the quantized weights (biases excluded)."""
        coded = sum(layer.coded_bits for layer in self.layers)
        return coded / (32.0 * sum(layer.n_weights for layer in self.layers))


#: Quantizers by name: each maps ``(w, h, k, **kw)`` to ``(centers, labels)``.
METHODS = {
    "kmeans": lambda w, h, k, **kw: kmeans(w, k, **kw),
    "hw_kmeans": hw_kmeans,
}

_QUANTIZABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def quantize_model(model: nn.Module, method: str = "kmeans", k: int = 4, h: dict | None = None, **kw):
    """Quantize every Linear/Conv weight of a copy of ``model`` per layer; biases are left untouched.

    Parameters
    ----------
    method : a key of :data:`METHODS` (``"kmeans"``, ``"hw_kmeans"``, …).
    k : codebook size per layer (``2**bits``).
    h : importances per layer, ``{module_name: tensor shaped like its weight}``; ``None`` means all ones.
    kw : passed to the quantizer (``iters``, ``init``, ``seed``, ``beta`` …).

    Returns ``(compressed_model, QuantizationReport)``; the original model is not modified.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}, got {method!r}")
    layers = [(name, m) for name, m in model.named_modules() if isinstance(m, _QUANTIZABLE)]
    if not layers:
        raise ValueError("model has no Linear or Conv layer to quantize")
    if h is not None:
        missing = sorted({name for name, _ in layers} - set(h))
        if missing:
            raise ValueError(f"h has no importances for layers {missing}")
    out = copy.deepcopy(model)
    modules = dict(out.named_modules())
    reports = []
    for name, m in layers:
        w = m.weight.detach().cpu().double().numpy().reshape(-1)
        hl = None if h is None else h[name]
        centers, labels = METHODS[method](w, hl, k, **kw)
        target = modules[name].weight
        with torch.no_grad():
            target.copy_(torch.as_tensor(centers[labels], dtype=target.dtype).reshape(target.shape))
        reports.append(LayerReport(
            name=name, n_weights=w.size, k=k, centers=np.asarray(centers),
            distortion=distortion(w, hl, centers, labels),
            entropy_bits=label_entropy_bits(labels, k),
            coded_bits=entropy_coded_bits(labels, k),
        ))
    return out, QuantizationReport(reports)
