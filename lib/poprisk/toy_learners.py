"""Chapter 2's toy learners in closed form: the noisy majority vote, the noisy mean and the memorizer.

Everything is in **nats**. Each function is the exact (or exactly enumerated) quantity a check cell of
chapter 2 compares with a bound or with a simulation; the chapter only sets up, calls and shows.

* :func:`noisy_majority` — the noisy majority vote on ``n`` bits ``Z_i ~ Bernoulli(p)``: ``W`` is the
  majority bit (a fair coin on a tie) flipped with probability ``ρ``; 0–1 loss ``ℓ(w, z) = 1{w ≠ z}``.
  With ``K = Σ Z_i ~ Binomial(n, p)`` and ``P(W = 1 | K) = ρ + (1 − 2ρ) maj(K)``,

  .. math:: \\mathrm{gen} = \\sum_k P(K{=}k) \\sum_w P(w \\mid k)\\,(L_\\mu(w) − L_S(w)),

  with ``L_μ = (p, 1 − p)`` and ``L_S = (k/n, 1 − k/n)``; ``I(S;W) = I(K;W)`` (``K`` is sufficient) and
  ``I(W;Z_1)`` from ``K − Z_1 ~ Binomial(n − 1, p)``.
* :func:`majority_cmi` — its conditional mutual information ``I(W; B | Z̃)`` for a supersample of ``n``
  pairs, summed over the pair counts ``(n11, n_mix, n00)`` (multinomial) and the ``j ~ Binomial(n_mix, ½)``
  ones that the selection ``B`` picks from the mixed pairs.
* :func:`squared_loss_cgf` — the noisy mean ``W = Z̄ + N(0, τ²)`` of ``Z_i ~ N(m, 1)`` under the squared
  loss: with ``a = 1/n + τ²`` the exact cumulant generating function of ``L_μ(W') − L_S(W')`` for ``W'``
  independent of ``S`` (the decoupled law of ``ch02-thm-cgf``) is

  .. math:: Ψ(η) = η − \\tfrac{n − 1}{2} \\log(1 + 2η/n) − \\tfrac12 \\log\\bigl(1 − 2(2aη^2 − η)/n\\bigr),

  ``+∞`` where the last argument is ``≤ 0``; :func:`cgf_bound` minimizes ``(I(S;W) + Ψ(η))/η`` over ``η``.
* :func:`cosine_gen_monte_carlo` — Monte Carlo of the noisy mean's generalization error under the
  bounded loss ``ℓ(w, z) = 1 − cos(w − z)`` (``L_μ(w) = 1 − e^{−1/2} cos(w − m)``).
* :func:`memorizer_cmi` — the memorizer's ``I(W; B | Z̃) = H(W | Z̃)`` by enumerating the ``2^k`` selections
  (``k log 2`` when the ``2^k`` means differ).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize, stats

from poprisk import checks, infotheory

__all__ = ["noisy_majority", "majority_cmi", "squared_loss_cgf", "cgf_bound", "cosine_gen_monte_carlo",
           "memorizer_cmi"]


def _majority(k, n: int) -> np.ndarray:
    """maj(k): 1 above n/2, ½ at a tie, 0 below."""
    k = np.asarray(k)
    return np.where(2 * k > n, 1.0, np.where(2 * k == n, 0.5, 0.0))


def _check(n, p, rho) -> tuple[int, float, float]:
    return (checks.integer(n, "n", low=1), checks.real(p, "p", low=0.0, high=1.0),
            checks.real(rho, "rho", low=0.0, high=1.0))


def noisy_majority(n: int, p: float, rho: float) -> tuple[float, float, float]:
    """``(gen, I(S;W), I(W;Z_1))`` of the noisy majority vote on ``n`` Bernoulli(``p``) bits, flip ``rho``."""
    n, p, rho = _check(n, p, rho)
    k = np.arange(n + 1)
    pk = stats.binom.pmf(k, n, p)
    p1 = rho + (1 - 2 * rho) * _majority(k, n)  # P(W = 1 | K = k)
    pw_k = np.stack([1 - p1, p1], axis=1)
    risk_pop = np.array([p, 1 - p])  # L_mu(0), L_mu(1)
    risk_emp = np.stack([k / n, 1 - k / n], axis=1)  # L_S(0), L_S(1) given K = k
    gen = float(np.sum(pk[:, None] * pw_k * (risk_pop[None, :] - risk_emp)))
    rest = np.arange(n)  # K - Z_1 ~ Binomial(n - 1, p)
    p_rest = stats.binom.pmf(rest, n - 1, p)
    joint_wz = np.zeros((2, 2))  # rows z_1 = 0, 1; columns w = 0, 1
    for z, pz in ((0, 1 - p), (1, p)):
        q = rho + (1 - 2 * rho) * _majority(rest + z, n)
        joint_wz[z] = pz * np.sum(p_rest * (1 - q)), pz * np.sum(p_rest * q)
    return gen, infotheory.mutual_information(pk[:, None] * pw_k), infotheory.mutual_information(joint_wz)


def majority_cmi(n: int, p: float, rho: float) -> float:
    """``I(W; B | Z̃)`` in nats of the noisy majority vote on a supersample of ``n`` Bernoulli(``p``) pairs."""
    n, p, rho = _check(n, p, rho)
    total = 0.0
    for n11 in range(n + 1):
        for nmix in range(n - n11 + 1):
            n00 = n - n11 - nmix
            log_mult = math.lgamma(n + 1) - math.lgamma(n11 + 1) - math.lgamma(nmix + 1) - math.lgamma(n00 + 1)
            weight = math.exp(log_mult) * p ** (2 * n11) * (1 - p) ** (2 * n00) * (2 * p * (1 - p)) ** nmix
            j = np.arange(nmix + 1)  # ones the selection picks from the mixed pairs
            pj = stats.binom.pmf(j, nmix, 0.5)
            p1 = rho + (1 - 2 * rho) * _majority(n11 + j, n)
            total += weight * infotheory.mutual_information(np.stack([pj * (1 - p1), pj * p1], axis=1))
    return total


def squared_loss_cgf(eta: float, n: int, tau2: float) -> float:
    """The noisy mean's exact CGF ``Ψ(η)`` under the squared loss (module docstring); ``inf`` off its domain."""
    eta = checks.real(eta, "eta", low=0.0)
    n = checks.integer(n, "n", low=1)
    tau2 = checks.real(tau2, "tau2", low=0.0)
    arg = 1 - 2 * (2 * (1 / n + tau2) * eta**2 - eta) / n
    if arg <= 0:
        return math.inf
    return eta - (n - 1) / 2 * math.log1p(2 * eta / n) - 0.5 * math.log(arg)


def cgf_bound(n: int, tau2: float) -> float:
    """``min_η (I(S;W) + Ψ(η)) / η`` for the noisy mean under the squared loss (``ch02-thm-cgf``).

    ``I(S;W) = ½ log(1 + 1/(nτ²))``; ``Ψ`` is finite for ``η < η_max = (1 + sqrt(1 + 4an))/(4a)``, so the
    search runs over ``log η`` up to ``0.999 η_max``."""
    n = checks.integer(n, "n", low=1)
    tau2 = checks.real(tau2, "tau2", low=0.0)
    info = infotheory.gaussian_mi(1 / n, tau2)
    a = 1 / n + tau2
    eta_max = (1 + math.sqrt(1 + 4 * a * n)) / (4 * a)
    res = optimize.minimize_scalar(lambda le: (info + squared_loss_cgf(math.exp(le), n, tau2)) / math.exp(le),
                                   bounds=(-10.0, math.log(0.999 * eta_max)), method="bounded")
    return float(res.fun)


def cosine_gen_monte_carlo(m: float, tau2: float, n_values, draws: int, rng: np.random.Generator):
    """Monte Carlo mean and standard error of ``L_μ(W) − L_S(W)`` for the noisy mean under
    ``ℓ(w, z) = 1 − cos(w − z)``, ``Z_i ~ N(m, 1)``, one entry per ``n`` in ``n_values``."""
    m = checks.real(m, "m")
    tau2 = checks.real(tau2, "tau2", low=0.0)
    draws = checks.integer(draws, "draws", low=2)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    means, ses = [], []
    for n in n_values:
        z = rng.normal(m, 1.0, size=(draws, checks.integer(n, "n_values entry", low=1)))
        w = z.mean(axis=1) + math.sqrt(tau2) * rng.standard_normal(draws)
        gap = (1 - math.exp(-0.5) * np.cos(w - m)) - (1 - np.cos(w[:, None] - z).mean(axis=1))
        means.append(gap.mean())
        ses.append(gap.std(ddof=1) / math.sqrt(draws))
    return np.array(means), np.array(ses)


def memorizer_cmi(k: int, rng: np.random.Generator, *, supersamples: int = 20, m: float = 0.7) -> float:
    """The memorizer's ``I(W; B | Z̃)``: ``W`` is the mean of the ``k`` selected values of ``k`` pairs
    ``Z̃ ~ N(m, 1)``; ``H(W | Z̃)`` enumerated over the ``2^k`` selections, averaged over ``supersamples``."""
    k = checks.integer(k, "k", low=1, high=20)
    supersamples = checks.integer(supersamples, "supersamples", low=1)
    patterns = np.array(np.meshgrid(*[[0, 1]] * k)).reshape(k, -1).T
    ent = []
    for _ in range(supersamples):
        cand = rng.normal(m, 1.0, size=(k, 2))
        values = cand[np.arange(k), patterns].mean(axis=1)
        _, counts = np.unique(values.round(12), return_counts=True)
        ent.append(infotheory.entropy(counts / counts.sum()))
    return float(np.mean(ent))
