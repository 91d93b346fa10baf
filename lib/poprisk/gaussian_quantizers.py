"""Scalar quantizers of a standard Gaussian source in closed form (chapter 3).

A quantizer of ``X ~ N(0, 1)`` with cells ``(e_{j−1}, e_j]`` (``e_0 = −∞``, ``e_K = +∞``) and levels ``c_j``
has, with ``φ``/``Φ`` the normal density and distribution function,

.. math:: P_j = Φ(e_j) − Φ(e_{j−1}), \\qquad E[X; j] = φ(e_{j−1}) − φ(e_j), \\qquad
          E[X^2; j] = P_j + e_{j−1}φ(e_{j−1}) − e_jφ(e_j),

so its mean squared error is ``Σ_j (E[X²; j] − 2c_j E[X; j] + c_j² P_j)`` and its index entropy ``H(P)``
(:func:`gaussian_quantizer`). :func:`lloyd_max` iterates the centroid condition ``c_j = E[X; j]/P_j`` with
nearest-neighbour cells from quantile starts; :func:`uniform_levels` is the best evenly spaced
``Δ(j − (K − 1)/2)`` (the step minimizing the exact MSE).
"""

from __future__ import annotations

import numpy as np
from scipy import optimize, stats

from poprisk import checks, infotheory

__all__ = ["gaussian_quantizer", "lloyd_max", "uniform_levels"]


def gaussian_quantizer(centers, edges=None):
    """``(mse, entropy in nats, cell masses, cell first moments)`` of a quantizer of ``N(0, 1)``.

    Cells are nearest-neighbour for the sorted ``centers`` unless the ``K − 1`` interior ``edges`` are given
    (then ``centers[j]`` is the level of the ``j``-th cell in increasing order)."""
    c = np.asarray(centers, dtype=float).reshape(-1)
    if c.size == 0 or not np.isfinite(c).all():
        raise ValueError("centers must be a non-empty array of finite levels")
    if edges is None:
        c = np.sort(c)
        edges = 0.5 * (c[1:] + c[:-1])
    edges = np.asarray(edges, dtype=float).reshape(-1)
    if edges.size != c.size - 1 or np.any(np.diff(edges) < 0) or not np.isfinite(edges).all():
        raise ValueError(f"edges must be {c.size - 1} finite non-decreasing interior edges, got {edges.size}")
    edges = np.concatenate([[-np.inf], edges, [np.inf]])
    lo, hi = edges[:-1], edges[1:]
    phi = stats.norm.pdf
    mass = stats.norm.cdf(hi) - stats.norm.cdf(lo)
    first = phi(lo) - phi(hi)  # E[X; cell]
    lo_phi = np.where(np.isinf(lo), 0.0, np.nan_to_num(lo) * phi(lo))
    hi_phi = np.where(np.isinf(hi), 0.0, np.nan_to_num(hi) * phi(hi))
    second = mass + lo_phi - hi_phi  # E[X^2; cell]
    mse = float(np.sum(second - 2 * c * first + c**2 * mass))
    return mse, infotheory.entropy(mass / mass.sum()), mass, first


def lloyd_max(k: int, tol: float = 1e-12, max_iter: int = 20_000) -> np.ndarray:
    """The ``k`` Lloyd–Max levels of ``N(0, 1)``: centroid and nearest-neighbour conditions iterated from
    the quantiles ``Φ⁻¹((j + ½)/k)`` until the levels move less than ``tol``."""
    k = checks.integer(k, "k", low=1)
    c = stats.norm.ppf((np.arange(k) + 0.5) / k)
    for _ in range(checks.integer(max_iter, "max_iter", low=1)):
        _, _, mass, first = gaussian_quantizer(c)
        new = first / mass  # centroid of each cell
        if np.max(np.abs(new - c)) < tol:
            return new
        c = new
    return c


def uniform_levels(k: int) -> np.ndarray:
    """The ``k`` evenly spaced levels ``Δ(j − (k − 1)/2)`` whose step ``Δ`` minimizes the exact MSE."""
    k = checks.integer(k, "k", low=2)
    grid = np.arange(k) - (k - 1) / 2
    res = optimize.minimize_scalar(lambda delta: gaussian_quantizer(delta * grid)[0], bounds=(1e-3, 4.0),
                                   method="bounded", options={"xatol": 1e-10})
    return res.x * grid
