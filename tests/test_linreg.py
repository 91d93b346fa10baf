"""Tests of poprisk.linreg: closed forms, the improvement criterion, the bound, and the Monte Carlo (chapter 6)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from poprisk.infotheory import reverse_water_filling
from poprisk.linreg import LinearModel, canonical_design, criterion_threshold, threshold_survey


def u_shaped():
    return LinearModel([10.0] * 5 + [0.01] * 15, 50, 1.0, 0.05)


@st.composite
def models(draw, max_d=12):
    d = draw(st.integers(1, max_d))
    n = draw(st.integers(d + 1, 8 * d + 10))
    lam = draw(st.lists(st.floats(1e-3, 1e2), min_size=d, max_size=d))
    noise = draw(st.floats(0.05, 20.0))
    prior = draw(st.floats(1e-3, 10.0))
    return LinearModel(lam, n, noise, prior)


# ---------------------------------------------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args, word",
    [
        (([1.0, -1.0], 5, 1.0, 1.0), "eigenvalues"),
        (([1.0, 0.0], 5, 1.0, 1.0), "eigenvalues"),
        (([], 5, 1.0, 1.0), "eigenvalues"),
        (([[1.0, 2.0]], 5, 1.0, 1.0), "eigenvalues"),
        (([1.0, np.nan], 5, 1.0, 1.0), "eigenvalues"),
        (([1.0, 2.0], 2, 1.0, 1.0), "n"),
        (([1.0, 2.0], 2.5, 1.0, 1.0), "n"),
        (([1.0, 2.0], 5, 0.0, 1.0), "noise_var"),
        (([1.0, 2.0], 5, 1.0, -1.0), "prior_var"),
        (([1.0, 2.0], 5, 1.0, math.inf), "prior_var"),
        (([1.0, 2.0], 5, True, 1.0), "noise_var"),
    ],
)
def test_constructor_validation(args, word):
    with pytest.raises((TypeError, ValueError), match=word):
        LinearModel(*args)


def test_method_validation():
    m = u_shaped()
    with pytest.raises(ValueError, match="exactly one"):
        m.risks()
    with pytest.raises(ValueError, match="exactly one"):
        m.risks(rate=1.0, theta=0.1)
    with pytest.raises(ValueError, match="rate"):
        m.risks(rate=-1.0)
    with pytest.raises(TypeError, match="rate"):
        m.risks(rate="1")
    with pytest.raises(ValueError, match="theta"):
        m.risks(theta=-0.1)
    with pytest.raises(ValueError, match="draws"):
        m.monte_carlo(1.0, draws=1)
    with pytest.raises(ValueError, match="seed"):
        m.monte_carlo(1.0, draws=10, seed=-1)
    with pytest.raises(ValueError, match="information"):
        m.gen_bound(rate=1.0, information="mutual")
    with pytest.raises(ValueError, match="eta"):
        m.cgf(-1.0, rate=1.0)
    with pytest.raises(ValueError, match="design"):
        LinearModel.from_design(np.ones((5, 2)), 1.0, 1.0)  # rank one
    with pytest.raises(ValueError, match="design"):
        LinearModel.from_design(np.ones((2, 3)), 1.0, 1.0)
    with pytest.raises(ValueError, match="design"):
        LinearModel([1.0, 2.0], 5, 1.0, 1.0, design=np.eye(5, 2))  # wrong spectrum
    with pytest.raises(ValueError, match="n"):
        LinearModel.gaussian_design(5, 5, 1.0, 1.0)


# ---------------------------------------------------------------------------------------------------------------
# closed forms
# ---------------------------------------------------------------------------------------------------------------
def test_paper_notes_example():
    m = u_shaped()
    unc, opt, zero = m.uncompressed(), m.optimal(), m.risks(rate=0.0)
    assert unc.population == pytest.approx(1.40) and unc.empirical == pytest.approx(0.60)
    assert unc.gen == pytest.approx(0.80) and unc.rate == math.inf
    assert opt.population == pytest.approx(1.2021153846, abs=1e-9)
    assert opt.rate == pytest.approx(2.5 * math.log(0.52 / 0.0205), rel=1e-12)
    assert zero.population == pytest.approx(3.5075) and zero.gen == pytest.approx(0.0, abs=1e-15)
    assert m.helps() and m.criterion() == pytest.approx((5 / 26 + 15 / 1.025) / 20)


@settings(max_examples=60, deadline=None)
@given(models())
def test_uncompressed_is_classical(m):
    r = m.uncompressed()
    s2, d, n = m.noise_var, m.d, m.n
    assert r.empirical == pytest.approx(s2 * (1 - d / n), rel=1e-12)
    assert r.population == pytest.approx(s2 * (1 + d / n), rel=1e-12)
    assert r.gen == pytest.approx(2 * s2 * d / n, rel=1e-12)


@settings(max_examples=60, deadline=None)
@given(models(), st.floats(0.0, 30.0))
def test_risks_consistent(m, rate):
    r = m.risks(rate=rate)
    wf = reverse_water_filling(m.variances, rate=rate)
    assert r.rate == pytest.approx(rate, abs=1e-9)
    assert r.distortion == pytest.approx(wf.distortion, rel=1e-12)
    assert r.gen == pytest.approx(r.population - r.empirical, abs=1e-10)
    assert r.empirical == pytest.approx(m.uncompressed().empirical + r.distortion, rel=1e-12)
    assert 0 <= r.gen <= m.uncompressed().gen + 1e-12
    # the same operating point by its water level
    again = m.risks(theta=r.theta)
    assert again.population == pytest.approx(r.population, rel=1e-9)


@settings(max_examples=40, deadline=None)
@given(models())
def test_rate_zero_is_the_zero_model(m):
    r = m.risks(rate=0.0)
    assert r.population == pytest.approx(m.noise_var + m.prior_var * m.eigenvalues.sum(), rel=1e-12)
    assert r.gen == pytest.approx(0.0, abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(models())
def test_gen_decreases_as_rate_falls_and_population_is_unimodal_in_theta(m):
    thetas = np.linspace(0.0, 1.2 * m.variances.max(), 61)
    curve = m.risk_curve(thetas=thetas)
    assert np.all(np.diff(curve["gen"]) <= 1e-12)
    assert np.all(np.diff(curve["rate"]) <= 1e-12)
    step = np.diff(curve["population"])
    tol = 1e-12 * curve["population"].max()
    first_up = np.argmax(step > tol) if (step > tol).any() else step.size
    assert np.all(step[first_up:] >= -tol)  # once it rises it never falls again
    # convex on [0, 2c]
    inner = m.risk_curve(thetas=np.linspace(0.0, 2 * m.c, 41))["population"]
    assert np.all(inner[2:] - 2 * inner[1:-1] + inner[:-2] >= -1e-12 * inner.max())


@settings(max_examples=60, deadline=None)
@given(models())
def test_optimal_beats_a_fine_grid_and_criterion_agrees(m):
    opt, unc = m.optimal(), m.uncompressed()
    thetas = np.concatenate([np.geomspace(1e-9, 1.0, 200) * m.variances.max(), m.variances])
    grid_min = m.risk_curve(thetas=thetas)["population"].min()
    assert opt.population <= grid_min + 1e-10
    assert opt.population <= unc.population + 1e-12
    if abs(m.criterion() - 0.5) > 1e-9:
        assert m.helps() == (grid_min < unc.population - 1e-13)
        assert m.helps() == (opt.population < unc.population)


def test_designs():
    lam = np.array([3.0, 1.0, 0.2])
    x = canonical_design(lam, 7, seed=3)
    np.testing.assert_allclose(x.T @ x / 7, np.diag(lam), atol=1e-12)
    g = LinearModel.gaussian_design(4, 9, 1.0, 0.5, seed=11)
    g2 = LinearModel.gaussian_design(4, 9, 1.0, 0.5, seed=11)
    np.testing.assert_array_equal(g.design, g2.design)
    u, lam_g = g.eigenvectors, g.eigenvalues
    np.testing.assert_allclose(u @ np.diag(lam_g) @ u.T, g.design.T @ g.design / 9, atol=1e-12)
    m = LinearModel(lam[::-1], 7, 1.0, 1.0, design=x[:, ::-1])
    np.testing.assert_allclose(m.eigenvectors @ np.diag(m.eigenvalues) @ m.eigenvectors.T,
                               x[:, ::-1].T @ x[:, ::-1] / 7, atol=1e-12)


# ---------------------------------------------------------------------------------------------------------------
# the information-theoretic bound
# ---------------------------------------------------------------------------------------------------------------
@settings(max_examples=25, deadline=None)
@given(models(max_d=8), st.floats(0.01, 25.0))
def test_bound_above_exact_gen(m, rate):
    r = m.risks(rate=rate)
    b_rate = m.gen_bound(rate=rate)
    b_cond = m.gen_bound(rate=rate, information="conditional")
    assert m.conditional_information(rate=rate) <= r.rate + 1e-9
    assert b_cond <= b_rate * (1 + 1e-9)
    assert r.gen <= b_cond * (1 + 1e-9)


def test_bound_limits_and_cgf():
    m = u_shaped()
    assert m.gen_bound(rate=math.inf) == math.inf
    assert m.gen_bound(rate=0.0) == 0.0
    assert m.cgf(0.0, rate=2.0) == pytest.approx(0.0, abs=1e-15)
    etas = np.linspace(0, 3, 31)
    psi = np.array([m.cgf(e, rate=2.0) for e in etas])
    assert np.all(psi >= -1e-15) and np.all(np.diff(psi, 2) >= -1e-12)  # a CGF of a mean-zero variable


def test_cgf_matches_simulation():
    """Ψ(η) against a nested simulation: independent (S, Ŵ') given w*, log-mean-exp, averaged over w*."""
    m = LinearModel([2.0, 0.5, 0.1], 8, 1.0, 0.3)
    wf = m.water_filling(rate=1.0)
    x, u, lam, s = m.design, m.eigenvectors, m.eigenvalues, m.variances
    a = 1 - wf.distortions / s
    sd = np.sqrt(a * wf.distortions)
    pinv = np.linalg.solve(x.T @ x, x.T)
    rng = np.random.default_rng(0)
    eta, outer, inner = 1.0, 300, 3000
    vals = []
    for _ in range(outer):
        ws = rng.standard_normal(3) * math.sqrt(m.prior_var)
        y = ws @ x.T + rng.standard_normal((inner, 8))
        y2 = ws @ x.T + rng.standard_normal((inner, 8))
        v2 = (y2 @ pinv.T @ u) * np.sqrt(lam)
        wh = ((a * v2 + sd * rng.standard_normal((inner, 3))) / np.sqrt(lam)) @ u.T
        ls = np.mean((y - wh @ x.T) ** 2, axis=1)
        diff = wh - ws
        lmu = m.noise_var + np.einsum("ij,jk,ik->i", diff, x.T @ x / 8, diff)
        vals.append(np.log(np.mean(np.exp(eta * (lmu - ls)))))
    assert np.mean(vals) == pytest.approx(m.cgf(eta, rate=1.0), rel=0.05)


# ---------------------------------------------------------------------------------------------------------------
# Monte Carlo
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "model, rate",
    [
        (u_shaped(), 8.0),
        (u_shaped(), 1.0),
        (LinearModel.gaussian_design(6, 15, 2.0, 0.3, seed=1), 2.0),
        (LinearModel([4.0, 1.0, 0.25], 6, 0.5, 1.0), math.inf),
    ],
)
def test_monte_carlo_agrees_with_closed_forms(model, rate):
    exact = model.risks(rate=rate)
    mc = model.monte_carlo(rate, draws=20_000, seed=7)
    for key in ("distortion", "empirical", "population", "gen"):
        se = getattr(mc, f"{key}_se")
        assert abs(getattr(mc, key) - getattr(exact, key)) <= 4 * se + 1e-10, key


def test_monte_carlo_reproducible_and_chunk_independent():
    m = u_shaped()
    a = m.monte_carlo(3.0, draws=500, seed=5)
    b = m.monte_carlo(3.0, draws=500, seed=5)
    c = m.monte_carlo(3.0, draws=500, seed=6)
    assert a == b and a != c
    assert m.monte_carlo(theta=0.0, draws=100, seed=1).distortion == pytest.approx(0.0, abs=1e-12)


def test_monte_carlo_is_vectorized_over_draws(monkeypatch):
    """The issue's cost claim in machine-independent units: 10⁴ draws at d = 20, n = 50 take one chunk, i.e.
    four calls of the generator (w*, ε, the channel noise, ε'), not four per draw. Seconds: bench/."""
    m = u_shaped()
    m.design  # built (from its own generator) before the count starts
    calls = []
    make = np.random.default_rng

    def counting_rng(seed):
        rng = make(seed)
        normal = rng.standard_normal

        class Counting:
            def standard_normal(self, size):
                calls.append(size)
                return normal(size)
        return Counting()
    monkeypatch.setattr(np.random, "default_rng", counting_rng)
    m.monte_carlo(8.0, draws=10_000, seed=0)
    assert [size[0] for size in calls] == [10_000] * 4


# ---------------------------------------------------------------------------------------------------------------
# reliability: every argument of every public entry fails clearly (TypeError/ValueError naming it)
# ---------------------------------------------------------------------------------------------------------------
HOSTILE = [None, "abc", True, 1 + 2j, [[1.0], [1.0, 2.0]], {"a": 1}, float("nan"), -1.0]
MODEL = dict(eigenvalues=[1.0, 2.0], n=5, noise_var=1.0, prior_var=1.0)


@pytest.mark.parametrize("arg", list(MODEL))
@pytest.mark.parametrize("bad", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_model_arguments(arg, bad):
    with pytest.raises((TypeError, ValueError), match=arg):
        LinearModel(**{**MODEL, arg: bad})


@pytest.mark.parametrize("bad", HOSTILE, ids=range(len(HOSTILE)))
@pytest.mark.parametrize("call, arg", [
    (lambda m, v: m.risks(rate=v), "rate"),
    (lambda m, v: m.risks(theta=v), "theta"),
    (lambda m, v: m.risk_curve(rates=v), "rates"),
    (lambda m, v: m.risk_curve(thetas=v), "thetas"),
    (lambda m, v: m.cgf(v, rate=1.0), "eta"),
    (lambda m, v: m.gen_bound(rate=1.0, information=v), "information"),
    (lambda m, v: m.monte_carlo(1.0, draws=v), "draws"),
    (lambda m, v: m.monte_carlo(1.0, draws=20, seed=v), "seed"),
    (lambda m, v: m.conditional_information(rate=v), "rate"),
])
def test_hostile_method_arguments(call, arg, bad):
    m = u_shaped()
    with pytest.raises((TypeError, ValueError), match=arg):
        call(m, bad)


@pytest.mark.parametrize("seed", [None, -1, 1.5, True, "0"])
def test_seeds_are_non_negative_integers(seed):
    with pytest.raises((TypeError, ValueError), match="seed"):
        LinearModel.gaussian_design(2, 10, 1.0, 1.0, seed=seed)
    with pytest.raises((TypeError, ValueError), match="seed"):
        canonical_design([1.0, 2.0], 10, seed=seed)


def test_design_and_constructor_arguments():
    for bad in (None, "x", [[1.0, 2.0], [3.0]], np.full((5, 2), np.nan)):
        with pytest.raises((TypeError, ValueError), match="design"):
            LinearModel.from_design(bad, 1.0, 1.0)
    for arg, bad in (("d", 0), ("d", 2.0), ("n", 2), ("noise_var", 0.0), ("prior_var", "1")):
        kw = {"d": 2, "n": 10, "noise_var": 1.0, "prior_var": 1.0, arg: bad}
        with pytest.raises((TypeError, ValueError), match=arg):
            LinearModel.gaussian_design(**kw)


def test_cgf_monte_carlo_agrees_and_sees_a_wrong_term():
    """The chapter-6 simulation of Ψ matches the closed form and is far from Ψ without its noncentral term."""
    m = u_shaped()
    rate = m.optimal().rate
    est, se = m.cgf_monte_carlo(6.0, rate=rate, outer=60, inner=1_000, seed=3)
    psi = m.cgf(6.0, rate=rate)
    assert abs(est - psi) < 4 * se + 0.01 * psi
    u = 6.0 * m.noise_var / m.n
    central = m.n * (u - 0.5 * math.log1p(2 * u))  # the first term alone
    assert abs(est - central) > 20 * se
    with pytest.raises(ValueError, match="eta"):
        m.cgf_monte_carlo(-1.0, rate=rate)


def test_criterion_threshold_is_where_helps_switches():
    m = LinearModel.gaussian_design(8, 20, 1.0, 1.0, seed=4)
    snr = criterion_threshold(m.eigenvalues, m.n)
    below = LinearModel(m.eigenvalues, m.n, 1.0, 0.999 * snr / m.d)
    above = LinearModel(m.eigenvalues, m.n, 1.0, 1.001 * snr / m.d)
    assert below.helps() and not above.helps()
    # a flat spectrum: κ = 1/(1 + (n/d) SNR) = ½ at SNR = d/n exactly
    assert criterion_threshold(np.ones(5), 50) == pytest.approx(5 / 50, rel=1e-12)
    with pytest.raises(ValueError, match="eigenvalues"):
        criterion_threshold([1.0, -1.0], 10)


def test_threshold_survey_jensen_holds_and_flat_reference_fails():
    rows = threshold_survey(20, (5, 20), designs=60)
    assert all(r["min jensen"] >= 1 - 1e-12 for r in rows)  # SNR* >= d/(n λ̄) on every design
    assert rows[-1]["below d/n"] > 0  # "always above d/n" is false at n/d = 20
    with pytest.raises(ValueError, match="ratio"):
        threshold_survey(20, (1.0,), designs=2)
