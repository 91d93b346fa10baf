"""Small learning problems whose population risk is known exactly or by cheap Monte Carlo (chapter 4).

Chapter 4 checks its bounds on three of them:

* :func:`bernoulli_compressed` — the mean of ``n`` Bernoulli(``p``) draws rounded to a ``K``-point grid on
  ``[0, 1]`` (with probability ``ρ`` replaced by a uniform grid point), absolute loss ``|w − z|``: the exact
  expected generalization error and the three information quantities of the compressed bound.
* :func:`quantized_circular_erm` — the circular mean of ``n`` draws ``Z ~ N(m, 1)`` under the cosine loss
  ``1 − cos(w − z)``, quantized to ``K = 2^b`` equal arcs: Monte Carlo generalization error and index entropy.
* :func:`gaussian_classes`, :func:`fit_logistic`, :func:`gaussian_population_error` — two Gaussian classes
  ``X | Y = y ~ N(y m, I)``, a logistic fit and the exact 0–1 population error of a linear rule, for the
  Occam bound of one trained (and K-means-compressed, :func:`kmeans_versions`) model.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize, special, stats

from poprisk import checks

__all__ = ["bernoulli_compressed", "circular_mean", "quantize_angle", "quantized_circular_erm",
           "gaussian_classes", "fit_logistic", "zero_one", "gaussian_population_error",
           "kmeans_versions"]


def _entropy(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def _mutual_information(joint: np.ndarray) -> float:
    outer = joint.sum(1, keepdims=True) * joint.sum(0, keepdims=True)
    mask = joint > 0
    return max(0.0, float(np.sum(joint[mask] * np.log(joint[mask] / outer[mask]))))


def bernoulli_compressed(n, p, k, rho) -> tuple[float, float, float, float]:
    """Chapter 4's compressed Bernoulli mean: ``(gen, I(S;W), I(S;Ŵ), H(Ŵ))`` in nats.

    ``W = (number of ones)/n`` is the ERM of the absolute loss's linear surrogate; ``Ŵ`` is the grid point
    of ``{0, 1/(K−1), …, 1}`` nearest to ``W`` with probability ``1 − ρ + ρ/K`` and each other grid point
    with probability ``ρ/K``. With ``L_μ(w) = p(1 − w) + (1 − p)w`` and ``L_S(w) = W(1 − w) + (1 − W)w``,
    ``gen = E[L_μ(Ŵ) − L_S(Ŵ)]`` exactly (a sum over the ``n + 1`` counts). ``W`` is a bijection of the count,
    so ``I(S;W) = H(W)`` and ``I(S;Ŵ) = I(W;Ŵ)``.
    """
    n = checks.integer(n, "n", low=1)
    k = checks.integer(k, "k", low=1)
    p, rho = checks.real(p, "p", low=0.0, high=1.0), checks.real(rho, "rho", low=0.0, high=1.0)
    counts = np.arange(n + 1)
    pk = stats.binom.pmf(counts, n, p)
    grid = np.linspace(0.0, 1.0, k)
    nearest = np.abs(counts[:, None] / n - grid[None, :]).argmin(axis=1)
    channel = np.full((n + 1, k), rho / k)  # P(Ŵ = grid_j | count)
    channel[counts, nearest] += 1 - rho
    risk_pop = p * (1 - grid) + (1 - p) * grid
    w = counts[:, None] / n
    risk_emp = w * (1 - grid) + (1 - w) * grid
    gen = float(np.sum(pk[:, None] * channel * (risk_pop[None, :] - risk_emp)))
    joint = pk[:, None] * channel
    return gen, _entropy(pk), _mutual_information(joint), _entropy(joint.sum(0))


def circular_mean(z: np.ndarray) -> np.ndarray:
    """The ERM of the cosine loss ``1 − cos(w − z)`` for each row of ``z``: ``atan2(Σ sin z, Σ cos z)``."""
    return np.arctan2(np.sin(z).sum(axis=1), np.cos(z).sum(axis=1))


def quantize_angle(w: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The index of ``w`` among ``k`` equal arcs of ``[−π, π)`` and the arc's midpoint."""
    k = checks.integer(k, "k", low=1)
    step = 2 * np.pi / k
    idx = np.floor((w + np.pi) / step).astype(np.int64) % k
    return idx, -np.pi + (idx + 0.5) * step


def _cosine_gap(w_hat: np.ndarray, z: np.ndarray, mean: float) -> tuple[float, float]:
    # L_mu(w) = 1 - E cos(w - Z) = 1 - exp(-1/2) cos(w - m) for Z ~ N(m, 1)
    gap = (1 - math.exp(-0.5) * np.cos(w_hat - mean)) - (1 - np.cos(w_hat[:, None] - z).mean(axis=1))
    return float(gap.mean()), float(gap.std(ddof=1) / math.sqrt(gap.size))


def quantized_circular_erm(bits, n, draws, draws_h, rng, *, mean: float = 1.0) -> dict:
    """Chapter 4's quantized ERM: Monte Carlo ``gen`` of the circular mean and of its ``2^b``-arc quantization.

    ``draws`` training sets ``Z_1..Z_n ~ N(mean, 1)`` (drawn first from ``rng``) give ``gen_w``, ``se_w``
    (the ERM ``W``) and, per ``b`` in ``bits``, ``gen_hat``, ``se_hat`` (``Ŵ`` = the arc midpoint,
    :func:`quantize_angle`); another ``draws_h`` training sets give ``rate``, the plug-in entropy
    ``H(Ŵ)`` in nats of the arc index. The population risk is exact:
    ``L_μ(w) = 1 − e^{−1/2} cos(w − mean)``.
    """
    n, draws = checks.integer(n, "n", low=1), checks.integer(draws, "draws", low=1)
    draws_h = checks.integer(draws_h, "draws_h", low=1)
    bits = np.asarray(bits, dtype=np.int64)
    if bits.ndim != 1 or bits.size == 0 or (bits < 1).any():
        raise ValueError(f"bits must be a non-empty 1-D array of positive integers, got {bits!r}")
    z = rng.normal(mean, 1.0, size=(draws, n))
    w_erm = circular_mean(z)
    gen_w, se_w = _cosine_gap(w_erm, z, mean)
    w_h = circular_mean(rng.normal(mean, 1.0, size=(draws_h, n)))
    gen_hat, se_hat, rate = [], [], []
    for b in bits:
        g, se = _cosine_gap(quantize_angle(w_erm, 2**b)[1], z, mean)
        counts = np.bincount(quantize_angle(w_h, 2**b)[0], minlength=2**b)
        gen_hat.append(g)
        se_hat.append(se)
        rate.append(_entropy(counts / draws_h))
    return dict(gen_w=gen_w, se_w=se_w, gen_hat=np.array(gen_hat), se_hat=np.array(se_hat),
                rate=np.array(rate))


def gaussian_classes(rng, n, m_vec) -> tuple[np.ndarray, np.ndarray]:
    """``n`` pairs with ``Y`` uniform on ``{−1, 1}`` and ``X | Y = y ~ N(y m, I)`` (chapter 4)."""
    n = checks.integer(n, "n", low=1)
    m_vec = np.asarray(m_vec, dtype=float)
    y = rng.choice([-1.0, 1.0], size=n)
    return y[:, None] * m_vec + rng.standard_normal((n, m_vec.size)), y


def fit_logistic(x, y, reg: float = 1e-2) -> np.ndarray:
    """Weights and bias (last entry) minimizing the mean logistic loss ``log(1 + e^{−y(w·x + b)})`` plus
    ``reg/2 ‖(w, b)‖²``, by L-BFGS from zero (chapter 4)."""
    xb = np.hstack([x, np.ones((x.shape[0], 1))])

    def loss(w):
        return np.mean(np.logaddexp(0.0, -y * (xb @ w))) + 0.5 * reg * w @ w

    def grad(w):
        return -(xb * (y * special.expit(-y * (xb @ w)))[:, None]).mean(0) + reg * w

    return optimize.minimize(loss, np.zeros(xb.shape[1]), jac=grad, method="L-BFGS-B").x


def zero_one(w, x, y) -> float:
    """Training 0–1 error of the rule ``sign(w·x + b)`` (``w[-1]`` is ``b``)."""
    return float(np.mean(np.sign(x @ w[:-1] + w[-1]) != y))


def gaussian_population_error(w, m_vec) -> float:
    """Exact 0–1 population error of ``sign(w·x + b)`` on :func:`gaussian_classes`:
    ``½ [Φ(−(w·m + b)/‖w‖) + Φ(−(w·m − b)/‖w‖)]``."""
    norm, shift = np.linalg.norm(w[:-1]), w[:-1] @ np.asarray(m_vec, dtype=float)
    return float(0.5 * (stats.norm.cdf(-(shift + w[-1]) / norm) + stats.norm.cdf(-(shift - w[-1]) / norm)))


def kmeans_versions(w, ks=(8, 4, 2)):
    """``(name, weights)``: ``w`` in float32, then K-means-quantized to each ``K`` of ``ks`` (chapter 4)."""
    from poprisk import quantize

    yield "float32 (no compression)", np.asarray(w).astype(np.float32)
    for k in ks:
        centres, labels = quantize.kmeans(w, k)
        yield f"K = {k}", centres.astype(np.float32)[labels]
