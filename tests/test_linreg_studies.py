"""Tests of poprisk.linreg_studies (chapter 6's studies of the exact model)."""

from __future__ import annotations

import numpy as np
import pytest

from poprisk import linreg, linreg_studies


def test_criterion_check_agrees_and_exact_optimum_is_never_worse():
    out = linreg_studies.criterion_check(12, seed=6)
    assert out["kappa"].shape == (12,)
    assert (out["numeric_helps"] == out["criterion_helps"]).all()
    assert out["optimal_gap"].max() <= 1e-12
    assert out["criterion_helps"].any() and not out["criterion_helps"].all()


def test_improvement_map_boundary_separates_the_grid():
    ratios, snrs = np.array([1.5, 5.0]), np.geomspace(0.01, 10.0, 7)
    out = linreg_studies.improvement_map(20, ratios, snrs, seed=20)
    assert out["mismatch"] == 0 and out["improvement"].shape == (7, 2)
    for j, b in enumerate(out["boundary"]):
        assert ((out["improvement"][:, j] > 0) == (snrs < b)).all()


def test_bound_minimum_is_above_the_exact_risk_there():
    model = linreg.LinearModel([10.0] * 5 + [0.01] * 15, n=50, noise_var=1.0, prior_var=0.05)
    for information in ("rate", "conditional"):
        r, value = linreg_studies.bound_minimum(model, information)
        assert 0.5 <= r <= 30.0 and model.risks(rate=r).population <= value
    assert linreg_studies.bound_minimum(model, "rate")[1] > linreg_studies.bound_minimum(model, "conditional")[1]


def test_ridge_risk_is_the_bayes_risk():
    model = linreg.LinearModel([10.0] * 5 + [0.01] * 15, n=50, noise_var=1.0, prior_var=0.05)
    exact = linreg_studies.ridge_risk(model)
    s, c = model.variances, model.c
    assert exact == pytest.approx(1.0 + np.sum(c - c**2 / s))
    assert exact < model.optimal().population
    mean, se = linreg_studies.ridge_monte_carlo(model, reps=4_000, seed=2)
    assert abs(mean - exact) <= 4 * se and se < 0.02 * exact


def test_ridge_monte_carlo_refuses_bad_reps():
    model = linreg.LinearModel([1.0, 2.0], n=5, noise_var=1.0, prior_var=1.0)
    with pytest.raises(ValueError, match="reps"):
        linreg_studies.ridge_monte_carlo(model, reps=1, seed=0)
