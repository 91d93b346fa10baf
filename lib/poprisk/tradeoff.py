"""The rate–distortion trade-off of chapter 5, the computations behind its check cells.

* :func:`shrinkage_improvement` — the shrinkage example: ``w* ~ N(0, σ_w²)``, ``Z_i ~ N(w*, 1)``, ``W = Z̄``,
  the Gaussian test channel ``Ŵ = (1 − t)W + N``, ``t = e^{−2R}``, ``N ~ N(0, (1 − t)t s)``, ``s = σ_w² + 1/n``.
  The derived improvement is ``E L_μ(W) − E L_μ(Ŵ) = t(1/n − σ_w²)``; this simulates it with fresh test points.
* :func:`logistic_problem` and :func:`quadratic_prediction_errors` — the rise of the training loss under a
  perturbation ``Δ`` against its quadratic model ``½ΔᵀHΔ`` (proposition ``ch05-prop-taylor``), the diagonal
  ``½Σ_j H_jj Δ_j²`` and one fitted curvature ``½ h̄ ‖Δ‖²``.
* :func:`noisy_mean_source` and :class:`RiseSimulation` — the cosine-loss noisy mean
  ``W = Z̄ + τξ`` discretized into cells, with its conditional distortion ``d̄`` (definition
  ``ch05-def-distortion``), and a simulation of the rise ``L_S(Ŵ) − L_S(W)`` through a channel on the cells.
* :func:`bound_curve` and :func:`grid_minimizer` — ``f(R) − E L_S(W) = s e^{−2R} + √(2σ²R/n)``, the Gaussian
  upper bound of theorem ``ch05-thm-bound``, and its minimizer on a grid.

Randomness comes from the generator or seed passed in; nothing here draws from a global state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy import optimize, special, stats

from poprisk import checks
from poprisk.quantize import kmeans

__all__ = ["shrinkage_improvement", "LogisticProblem", "logistic_problem", "quadratic_prediction_errors",
           "NoisyMeanSource", "noisy_mean_source", "RiseSimulation", "bound_curve", "grid_minimizer"]


def shrinkage_improvement(prior_var, rate, n: int, draws: int, rng: np.random.Generator):
    """Simulated ``E L_μ(W) − E L_μ(Ŵ)`` of the shrinkage example (chapter 5), and its standard error.

    Each of ``draws`` tasks draws ``w*``, a sample of ``n`` points, ``W = Z̄``, ``Ŵ`` from the test channel at
    ``rate`` nats, and one fresh test point ``Z'``; ``(Ŵ − Z')² − (W − Z')²`` is an unbiased estimate of the
    change ``L_μ(Ŵ) − L_μ(W)``. Returns ``(improvement, SE)``; the theory says ``t(1/n − σ_w²)``.
    """
    prior_var = checks.real(prior_var, "prior_var", low=0.0, low_open=True)
    rate = checks.real(rate, "rate", low=0.0)
    n, draws = checks.integer(n, "n", low=1), checks.integer(draws, "draws", low=2)
    t = math.exp(-2 * rate)
    w_star = rng.normal(0.0, math.sqrt(prior_var), draws)
    w = rng.normal(w_star[:, None], 1.0, size=(draws, n)).mean(axis=1)
    w_hat = (1 - t) * w + rng.normal(0.0, math.sqrt((1 - t) * t * (prior_var + 1 / n)), draws)
    z_test = rng.normal(w_star, 1.0)
    change = (w_hat - z_test) ** 2 - (w - z_test) ** 2
    return float(-change.mean()), float(change.std(ddof=1) / math.sqrt(draws))


@dataclass(frozen=True)
class LogisticProblem:
    """An L2-regularized logistic regression at its optimum ``w_opt`` (gradient below ``1e-10``), with the
    Hessian ``hessian`` there. ``loss(w)`` is the regularized training loss."""

    loss: Callable[[np.ndarray], float]
    w_opt: np.ndarray
    hessian: np.ndarray

    @property
    def off_diagonal_share(self) -> float:
        """``‖H − diag H‖_F / ‖H‖_F``: how much of the Hessian the diagonal form ignores."""
        h = self.hessian
        return float(np.linalg.norm(h - np.diag(np.diag(h))) / np.linalg.norm(h))


def logistic_problem(correlated: bool, seed: int, n: int = 600, d: int = 60, reg: float = 1e-2):
    """Chapter 5's test problem for the quadratic model: ``n`` points with feature scales from 0.1 to 3,
    features mixed by ``0.7 I + 0.3 Q`` (``Q`` a random rotation) when ``correlated``, labels from a logistic
    model; minimized by L-BFGS and three Newton steps (proposition ``ch05-prop-taylor`` needs a stationary
    point)."""
    correlated = checks.boolean(correlated, "correlated")
    rng = np.random.default_rng(checks.seed(seed))
    n, d = checks.integer(n, "n", low=2), checks.integer(d, "d", low=1)
    reg = checks.real(reg, "reg", low=0.0, low_open=True)
    scales = np.geomspace(0.1, 3.0, d)
    rotation = np.linalg.qr(rng.normal(size=(d, d)))[0]
    mixing = 0.7 * np.eye(d) + 0.3 * rotation if correlated else np.eye(d)
    x = (rng.normal(size=(n, d)) * scales) @ mixing
    logits = x @ rng.normal(scale=0.3, size=d)  # drawn before the labels' uniforms
    y = (rng.uniform(size=n) < special.expit(logits)).astype(float)

    def loss(w):
        z = x @ w
        return float(np.mean(np.logaddexp(0.0, z) - y * z) + 0.5 * reg * w @ w)

    def grad(w):
        return x.T @ (special.expit(x @ w) - y) / n + reg * w

    def hessian(w):
        prob = special.expit(x @ w)
        return (x * (prob * (1 - prob))[:, None]).T @ x / n + reg * np.eye(d)

    opts = {"gtol": 1e-10, "maxiter": 10_000}
    w = optimize.minimize(loss, np.zeros(d), jac=grad, method="L-BFGS-B", options=opts).x
    for _ in range(3):  # Newton steps to a tight optimum
        w = w - np.linalg.solve(hessian(w), grad(w))
    if np.abs(grad(w)).max() >= 1e-10:
        raise RuntimeError("the logistic problem did not reach a stationary point")
    return LogisticProblem(loss=loss, w_opt=w, hessian=hessian(w))


def quadratic_prediction_errors(problem: LogisticProblem, levels=(2, 3, 4, 6, 8, 12, 16)):
    """Chapter 5: the rise ``L_S(w + Δ) − L_S(w)`` when ``w_opt`` is K-means-quantized to each number of
    ``levels``, and three predictions of it: the full form ``½ΔᵀHΔ``, the diagonal ``½Σ_j H_jj Δ_j²`` and
    ``½ h̄‖Δ‖²`` with ``h̄`` the median of ``rise/(½‖Δ‖²)`` over the *other* codebooks (out of sample).

    Returns ``(rise, predictions, relative_errors)``: arrays of shape ``(L,)``, ``(L, 3)`` and ``(L, 3)``.
    """
    w, h = problem.w_opt, problem.hessian
    found = []
    for k in levels:
        centers, labels = kmeans(w, checks.integer(k, "levels", low=1))
        delta = centers[labels] - w
        found.append((problem.loss(w + delta) - problem.loss(w), 0.5 * delta @ h @ delta,
                      0.5 * np.sum(np.diag(h) * delta**2), 0.5 * delta @ delta))
    found = np.array(found)
    ratio = found[:, 0] / found[:, 3]
    h_bar = np.array([np.median(np.delete(ratio, i)) for i in range(len(found))])
    predictions = np.stack([found[:, 1], found[:, 2], h_bar * found[:, 3]], axis=1)
    return found[:, 0], predictions, np.abs(predictions / found[:, :1] - 1)


@dataclass(frozen=True)
class NoisyMeanSource:
    """The noisy mean ``W = Z̄ + τξ`` of chapter 5 (cosine loss ``1 − cos(w − z)``, ``Z_i ~ N(m, 1)``) on cells.

    ``edges`` (cells + 1), ``p_cell`` (probability of each cell, tails joined to the end cells), ``w_rep``
    (reproduction points, the cell centres), ``d_bar[c, j] = E[L_S(ŵ_j) − L_S(W) | W in cell c]``,
    ``pop_rep[j] = L_μ(ŵ_j)`` and ``train = E L_S(W)``; ``n``, ``tau2`` and ``m`` as given.
    """

    n: int
    tau2: float
    m: float
    edges: np.ndarray
    p_cell: np.ndarray
    w_rep: np.ndarray
    d_bar: np.ndarray
    pop_rep: np.ndarray
    train: float


def noisy_mean_source(n: int, tau2, m, cells: int = 160, nodes: int = 16) -> NoisyMeanSource:
    """Discretize chapter 5's noisy mean into ``cells`` cells over ``m ± 5 sd(W)``.

    Given ``W = w``, ``Z̄`` is Gaussian with mean ``z̄(w) = m + g(w − m)``, ``g = (1/n)/(1/n + τ²)``, and
    variance ``v = (τ²/n)/(1/n + τ²)``, so ``E[L_S(ŵ) | W = w] = 1 − A cos(z̄(w) − ŵ)`` with
    ``A = exp(−(n − 1)/(2n) − v/2)``; ``d̄`` per cell averages that over the cell by Gauss–Legendre
    quadrature with ``nodes`` nodes. ``L_μ(ŵ) = 1 − e^{−1/2} cos(ŵ − m)``.
    """
    n = checks.integer(n, "n", low=1)
    tau2 = checks.real(tau2, "tau2", low=0.0, low_open=True)
    m = checks.real(m, "m")
    cells, nodes = checks.integer(cells, "cells", low=2), checks.integer(nodes, "nodes", low=1)
    var_w = 1 / n + tau2
    gain, v_post = (1 / n) / var_w, (tau2 / n) / var_w
    amp = math.exp(-(n - 1) / (2 * n) - v_post / 2)
    edges = m + math.sqrt(var_w) * np.linspace(-5.0, 5.0, cells + 1)
    x, weights = np.polynomial.legendre.leggauss(nodes)
    lo, hi = edges[:-1, None], edges[1:, None]
    w_nodes = 0.5 * (lo + hi) + 0.5 * (hi - lo) * x
    dens = weights * stats.norm.pdf(w_nodes, m, math.sqrt(var_w))
    dens /= dens.sum(axis=1, keepdims=True)
    cdf = stats.norm.cdf(edges[1:], m, math.sqrt(var_w))
    p_cell = np.diff(np.concatenate([[0.0], cdf[:-1], [1.0]]))
    w_rep = 0.5 * (edges[1:] + edges[:-1])
    z_bar = m + gain * (w_nodes - m)
    ls_rep = 1 - amp * np.einsum("cq,cqj->cj", dens, np.cos(z_bar[..., None] - w_rep))
    ls_own = 1 - amp * np.sum(dens * np.cos(z_bar - w_nodes), axis=1)
    return NoisyMeanSource(n=n, tau2=tau2, m=m, edges=edges, p_cell=p_cell, w_rep=w_rep,
                           d_bar=ls_rep - ls_own[:, None],
                           pop_rep=1 - math.exp(-0.5) * np.cos(w_rep - m), train=float(p_cell @ ls_own))


class RiseSimulation:
    """Samples ``S`` and ``W`` of a :class:`NoisyMeanSource` (``draws`` of them, from ``seed``) and, for a
    channel on its cells, the rise ``L_S(Ŵ) − L_S(W)`` of each sample (chapter 5, the identity
    ``E[L_S(Ŵ) − L_S(W)] = E d̄(W, Ŵ)`` that makes ``d̄`` the distortion)."""

    def __init__(self, source: NoisyMeanSource, draws: int, seed: int):
        self.source, self.draws = source, checks.integer(draws, "draws", low=2)
        self.rng = np.random.default_rng(checks.seed(seed))
        self.z = self.rng.normal(source.m, 1.0, size=(self.draws, source.n))
        self.w = self.z.mean(axis=1) + math.sqrt(source.tau2) * self.rng.standard_normal(self.draws)
        self.cell = np.clip(np.searchsorted(source.edges, self.w) - 1, 0, len(source.p_cell) - 1)

    def rise(self, channel: np.ndarray):
        """``(mean rise, z)`` through ``channel`` (rows: cells, columns: reproduction points), where ``z`` is
        the mean of ``rise − d̄(cell, pick)`` in standard errors (about ``N(0, 1)`` if the identity holds)."""
        src = self.source
        pick = (channel[self.cell].cumsum(axis=1) < self.rng.uniform(size=self.draws)[:, None]).sum(axis=1)
        pick = np.minimum(pick, len(src.w_rep) - 1)
        ls_hat = 1 - np.cos(src.w_rep[pick][:, None] - self.z).mean(axis=1)
        rise = ls_hat - (1 - np.cos(self.w[:, None] - self.z).mean(axis=1))
        diff = rise - src.d_bar[self.cell, pick]
        return float(rise.mean()), float(diff.mean() / (diff.std(ddof=1) / math.sqrt(self.draws)))


def bound_curve(r, s, sigma, n):
    """``s e^{−2R} + √(2σ²R/n)``: chapter 5's bound minus ``E L_S(W)`` with ``D(R) ≤ s e^{−2R}`` (NumPy-wise)."""
    return s * np.exp(-2 * np.asarray(r, dtype=float)) + np.sqrt(2 * sigma**2 * np.asarray(r, dtype=float) / n)


def grid_minimizer(s, sigma, n, r_max: float = 12.0, points: int = 240_001) -> float:
    """The minimizer of :func:`bound_curve` over ``R`` on ``points`` equally spaced rates in ``[0, r_max]``
    (chapter 5: the check that the Lambert-W root is the minimum, or that ``R = 0`` is)."""
    grid = np.linspace(0.0, checks.real(r_max, "r_max", low=0.0, low_open=True),
                       checks.integer(points, "points", low=2))
    return float(grid[np.argmin(bound_curve(grid, s, sigma, n))])
