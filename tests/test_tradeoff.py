"""Tests of poprisk.tradeoff (chapter 5's machinery) and poprisk.tradeoff_figures (chapters 5 and 6)."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy import special  # noqa: E402

from poprisk import linreg, tradeoff, tradeoff_figures  # noqa: E402


@pytest.mark.parametrize("prior_var", [0.02, 0.3])
def test_shrinkage_improvement_matches_t_times_gap(prior_var):
    rng = np.random.default_rng(0)
    measured, se = tradeoff.shrinkage_improvement(prior_var, 0.5, 10, 100_000, rng)
    predicted = math.exp(-1.0) * (0.1 - prior_var)
    assert abs(measured - predicted) < 4.5 * se and se < abs(predicted) / 8


def test_shrinkage_improvement_refuses_bad_input():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="prior_var"):
        tradeoff.shrinkage_improvement(0.0, 0.5, 10, 100, rng)
    with pytest.raises(TypeError, match="n"):
        tradeoff.shrinkage_improvement(0.1, 0.5, 2.5, 100, rng)


def test_logistic_problem_is_stationary_and_quadratic_model_is_best():
    problem = tradeoff.logistic_problem(True, 0, n=300, d=20)
    eps = 1e-5
    e0 = np.zeros(20)
    e0[0] = eps
    # the Hessian is the second derivative of the loss (central difference along a coordinate)
    second = (problem.loss(problem.w_opt + e0) - 2 * problem.loss(problem.w_opt)
              + problem.loss(problem.w_opt - e0)) / eps**2
    assert second == pytest.approx(problem.hessian[0, 0], rel=1e-3)
    rise, pred, err = tradeoff.quadratic_prediction_errors(problem)
    assert rise.shape == (7,) and pred.shape == (7, 3) and (rise > 0).all()
    assert np.median(err[:, 0]) < 0.1 and np.median(err[:, 0]) < np.median(err[:, 1])
    assert 0.0 < problem.off_diagonal_share < 1.0
    assert tradeoff.logistic_problem(False, 0, n=300, d=20).off_diagonal_share < problem.off_diagonal_share


def test_noisy_mean_source_is_a_distribution_with_d_bar_zero_on_the_diagonal():
    src = tradeoff.noisy_mean_source(10, 0.1, 1.0, cells=40)
    assert src.p_cell.sum() == pytest.approx(1.0) and (src.p_cell > 0).all()
    assert src.d_bar.shape == (40, 40)
    # the population risk of the cosine loss under N(m, 1) is 1 - e^{-1/2} cos(w - m)
    assert src.pop_rep.min() == pytest.approx(1 - math.exp(-0.5), abs=1e-2)
    # E L_S(W) < L_mu(m): training loss is optimistic; A = exp(-(n-1)/(2n) - v/2) sets it
    assert 0.3 < src.train < 1 - math.exp(-0.5)


def test_rise_simulation_agrees_with_d_bar_and_sees_a_doubled_d_bar():
    src = tradeoff.noisy_mean_source(10, 0.1, 1.0, cells=40)
    sim = tradeoff.RiseSimulation(src, draws=20_000, seed=1)
    channel = np.roll(np.eye(40), 3, axis=1)  # move every cell three cells up
    rise, z = sim.rise(channel)
    assert abs(z) < 4.5 and rise > 0
    doubled = tradeoff.NoisyMeanSource(**{**src.__dict__, "d_bar": 2 * src.d_bar})
    assert abs(tradeoff.RiseSimulation(doubled, draws=20_000, seed=1).rise(channel)[1]) > 10


def test_bound_curve_and_grid_minimizer_agree_with_lambert_w():
    s, sigma, n = 1.0, 1.0, 1_000
    r_lam = float(np.real(-special.lambertw(-sigma**2 / (2 * n * s**2), -1) / 4))
    assert tradeoff.grid_minimizer(s, sigma, n) == pytest.approx(r_lam, abs=1e-4)
    assert tradeoff.bound_curve(0.0, s, sigma, n) == pytest.approx(s)
    assert tradeoff.bound_curve(0.5, 2.0, 1.0, 4) == pytest.approx(2 * math.exp(-1) + 0.5)
    assert tradeoff.grid_minimizer(0.1, 1.0, 10) == 0.0  # no real root: R = 0


def test_figures_draw():
    def r_star(s, sigma, n):
        return -special.lambertw(-(sigma**2) / (2 * n * s**2), -1) / 4

    figs = [tradeoff_figures.optimal_rate_figure(r_star, np.linspace(0, 6, 50), [10, 1000],
                                                 np.geomspace(2, 1e5, 20))]
    model = linreg.LinearModel([10.0] * 2 + [0.01] * 3, n=20, noise_var=1.0, prior_var=0.05)
    rates = np.linspace(0.0, 20.0, 11)
    sims = [model.monte_carlo(2.0, draws=50, seed=0)]
    figs.append(tradeoff_figures.risk_curves_figure([(model, "a")], rates, mc={0: ([2.0], sims)}))
    figs.append(tradeoff_figures.improvement_map_figure([1.5, 3.0], [0.1, 1.0], np.ones((2, 2)), [0.5, 0.3]))
    exact = model.risk_curve(rates=rates)
    figs.append(tradeoff_figures.bound_figure(model, rates, exact, exact["gen"] * 2, exact["gen"] * 3))
    assert all(len(f.axes) >= 1 for f in figs)
    for f in figs:
        plt.close(f)
