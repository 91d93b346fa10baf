"""Chapter 6's studies of the exact linear-regression model (:class:`poprisk.linreg.LinearModel`).

* :func:`criterion_check` — the improvement criterion ``κ > ½`` (theorem ``ch06-thm-criterion``) against a
  numerical minimization of ``P(θ) = E L_μ(Ŵ)`` over the water level, on random settings.
* :func:`improvement_map` — ``1 − min_R E L_μ(Ŵ) / E L_μ(W)`` over a grid of ``n/d`` and
  ``SNR = dσ_w²/σ_ε²`` for nested Gaussian designs, with the criterion's boundary.
* :func:`bound_minimum` — the minimum over the rate of ``E L_S(Ŵ) + bound`` (either information).
* :func:`ridge_risk` and :func:`ridge_monte_carlo` — the Bayes (ridge) estimator's population risk,
  ``σ_ε² + Σ_i ν(s_i − ν)/s_i`` with ``ν = σ_ε²/n``, exactly and by simulation (exercise 1).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize

from poprisk import checks
from poprisk.linreg import LinearModel, criterion_threshold

__all__ = ["criterion_check", "improvement_map", "bound_minimum", "ridge_risk", "ridge_monte_carlo"]


def _numeric_minimum(model: LinearModel) -> float:
    """``min_θ P(θ)`` by a logarithmic grid of 200 levels in ``[1e-9, 1]·max s_i`` refined by a bounded
    scalar minimizer on ``log θ``; uses neither the criterion nor the breakpoints."""
    grid = np.geomspace(1e-9, 1.0, 200) * model.variances.max()
    pops = model.risk_curve(thetas=grid)["population"]
    j = int(np.argmin(pops))
    res = optimize.minimize_scalar(lambda lt: model.risks(theta=math.exp(lt)).population, method="bounded",
                                   bounds=(math.log(grid[max(j - 1, 0)]), math.log(grid[min(j + 1, grid.size - 1)])))
    return min(float(pops[j]), float(res.fun))


def criterion_check(n_settings: int, seed: int = 6) -> dict:
    """Chapter 6: draw ``n_settings`` random problems and compare the criterion with a numerical minimum.

    Setting ``k``: ``2 ≤ d ≤ 40``, ``d + 2 ≤ n ≤ 10d``, ``σ_ε²`` log-uniform in ``[0.1, 10]``; even ``k`` a
    Gaussian design (seed ``1000 + k``), odd ``k`` a log-uniform spectrum in ``[1e-3, 1e2]``; ``σ_w²`` such
    that ``nλ̄σ_w²/σ_ε²`` is log-uniform in ``[0.03, 30]``. Returns arrays ``kappa``, ``numeric_helps``
    (the numerical minimum beats ``P(0)`` by a relative ``1e-12``), ``criterion_helps`` (``κ > ½``) and
    ``optimal_gap`` (``LinearModel.optimal`` minus the numerical minimum; ``≤ 0`` if the exact optimum is
    never worse).
    """
    n_settings = checks.integer(n_settings, "n_settings", low=1)
    rng = np.random.default_rng(checks.seed(seed))
    records = []
    for k in range(n_settings):
        d = int(rng.integers(2, 41))
        n = int(rng.integers(d + 2, 10 * d + 1))
        noise = float(np.exp(rng.uniform(np.log(0.1), np.log(10.0))))
        lam = None if k % 2 == 0 else np.exp(rng.uniform(np.log(1e-3), np.log(1e2), size=d))
        snr = float(np.exp(rng.uniform(np.log(0.03), np.log(30.0))))
        if lam is None:
            lam = LinearModel.gaussian_design(d, n, noise_var=noise, prior_var=1.0, seed=1000 + k).eigenvalues
        model = LinearModel(lam, n, noise_var=noise, prior_var=snr * noise / (n * float(np.mean(lam))))
        numeric = _numeric_minimum(model)
        records.append((model.criterion(), numeric < model.uncompressed().population * (1 - 1e-12),
                        model.helps(), model.optimal().population - numeric))
    kappa, numeric_helps, criterion_helps, gap = map(np.array, zip(*records))
    return {"kappa": kappa, "numeric_helps": numeric_helps, "criterion_helps": criterion_helps,
            "optimal_gap": gap}


def improvement_map(d: int, ratios, snrs, seed: int = 20) -> dict:
    """Chapter 6's map: nested Gaussian designs (the first ``n = round(ratio·d)`` rows of one seeded
    ``(max n) × d`` matrix), ``σ_ε² = 1``, ``σ_w² = SNR/d``. Returns ``improvement`` (rows: ``snrs``,
    columns: ``ratios``), ``boundary`` (:func:`poprisk.linreg.criterion_threshold` per ratio) and
    ``mismatch``, the number of grid points where ``min P < P(0)`` disagrees with ``LinearModel.helps``.
    """
    d = checks.integer(d, "d", low=1)
    ratios, snrs = np.asarray(ratios, dtype=float), np.asarray(snrs, dtype=float)
    big = np.random.default_rng(checks.seed(seed)).standard_normal((int(round(ratios.max() * d)), d))
    improvement, boundary, mismatch = np.zeros((snrs.size, ratios.size)), np.zeros(ratios.size), 0
    for j, ratio in enumerate(ratios):
        n = int(round(ratio * d))
        base = LinearModel.from_design(big[:n], noise_var=1.0, prior_var=1.0)
        for i, snr in enumerate(snrs):
            model = LinearModel(base.eigenvalues, n, noise_var=1.0, prior_var=snr / d)
            best, p0 = model.optimal().population, model.uncompressed().population
            improvement[i, j] = 1 - best / p0
            mismatch += int((best < p0) != model.helps())
        boundary[j] = criterion_threshold(base.eigenvalues, n)
    return {"improvement": improvement, "boundary": boundary, "mismatch": mismatch}


def bound_minimum(model: LinearModel, information: str = "rate", bounds=(0.5, 30.0)) -> tuple[float, float]:
    """Chapter 6: ``(R, value)`` minimizing ``E L_S(Ŵ) + gen_bound(R)`` over rates in ``bounds`` (nats),
    ``information`` as in :meth:`poprisk.linreg.LinearModel.gen_bound`."""
    def upper(r):
        return model.risks(rate=r).empirical + model.gen_bound(rate=r, information=information)

    res = optimize.minimize_scalar(upper, bounds=bounds, method="bounded", options={"xatol": 1e-6})
    return float(res.x), float(res.fun)


def ridge_risk(model: LinearModel) -> float:
    """The Bayes estimator's population risk ``σ_ε² + Σ_i ν(s_i − ν)/s_i`` (chapter 6, exercise 1): in the
    whitened coordinates the posterior mean shrinks ``V_i`` by ``1 − ν/s_i``, leaving ``ν(s_i − ν)/s_i``."""
    s, c = model.variances, model.c
    return model.noise_var + float(np.sum(c * (s - c) / s))


def ridge_monte_carlo(model: LinearModel, reps: int, seed: int) -> tuple[float, float]:
    """Simulated population risk of ridge regression with penalty ``σ_ε²/σ_w²`` on the model's design
    (prior, noise, fit, fresh noise at the same inputs); returns ``(mean, SE)`` over ``reps`` draws."""
    reps = checks.integer(reps, "reps", low=2)
    rng = np.random.default_rng(checks.seed(seed))
    x, d = model.design, model.d
    sn = math.sqrt(model.noise_var)
    w_true = math.sqrt(model.prior_var) * rng.standard_normal((reps, d))
    y = w_true @ x.T + sn * rng.standard_normal((reps, model.n))
    fit = np.linalg.solve(x.T @ x + model.noise_var / model.prior_var * np.eye(d), x.T)
    y_test = w_true @ x.T + sn * rng.standard_normal((reps, model.n))
    losses = np.mean((y_test - (y @ fit.T) @ x.T) ** 2, axis=1)
    return float(losses.mean()), float(losses.std(ddof=1) / math.sqrt(reps))
