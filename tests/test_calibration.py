"""poprisk.calibration against independent implementations (torch's cross-entropy, a per-bin loop for the
ECE, a dense grid for the temperature), with hypothesis-generated logits."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays

from poprisk import calibration as cal


def _problem(n, c, seed, scale=3.0):
    rng = np.random.default_rng(seed)
    z = rng.normal(0, scale, (n, c))
    y = rng.integers(0, c, n)
    return z, y


def _ece_loop(z, y, bins):
    p = torch.softmax(torch.as_tensor(z, dtype=torch.float64), 1).numpy()
    conf, pred = p.max(1), p.argmax(1)
    total = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        inside = [i for i in range(len(y)) if (lo < conf[i] <= hi) or (b == 0 and conf[i] <= lo)]
        if inside:
            acc = np.mean([pred[i] == y[i] for i in inside])
            total += len(inside) / len(y) * abs(acc - np.mean(conf[inside]))
    return total


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 60), st.integers(2, 6), st.integers(0, 10_000), st.integers(1, 20))
def test_ece_matches_a_per_bin_loop(n, c, seed, bins):
    z, y = _problem(n, c, seed)
    assert cal.expected_calibration_error(z, y, bins) == pytest.approx(_ece_loop(z, y, bins), abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 50), st.integers(2, 6), st.integers(0, 10_000),
       st.floats(0.1, 10.0))
def test_per_example_ce_matches_torch(n, c, seed, T):
    z, y = _problem(n, c, seed)
    ref = torch.nn.functional.cross_entropy(torch.as_tensor(z / T), torch.as_tensor(y), reduction="none")
    assert np.allclose(cal.per_example_ce(z, y, T), ref.numpy(), atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(st.integers(5, 80), st.integers(2, 5), st.integers(0, 10_000), st.floats(0.3, 6.0))
def test_fitted_temperature_beats_a_dense_grid(n, c, seed, scale):
    z, y = _problem(n, c, seed, scale)
    T = cal.fit_temperature(z, y)
    assert cal.T_MIN <= T <= cal.T_MAX
    grid = np.exp(np.linspace(math.log(cal.T_MIN), math.log(cal.T_MAX), 2001))
    best = min(cal.cross_entropy(z, y, t) for t in grid)
    assert cal.cross_entropy(z, y, T) <= best + 1e-9


def test_temperature_recovers_an_overconfident_model():
    # Labels drawn from softmax(z); the logits handed over are 4 z: the calibrating temperature is ~4.
    rng = np.random.default_rng(0)
    z = rng.normal(0, 1.5, (20_000, 10))
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    y = np.array([rng.choice(10, p=row) for row in p])
    T = cal.fit_temperature(4 * z, y)
    assert T == pytest.approx(4.0, rel=0.05)
    assert cal.expected_calibration_error(4 * z, y) > 5 * cal.expected_calibration_error(z, y)


def test_scaling_keeps_predictions_and_type():
    z, y = _problem(30, 4, 1)
    t = torch.as_tensor(z)
    scaled = cal.temperature_scale(t, 2.0)
    assert isinstance(scaled, torch.Tensor) and torch.equal(scaled.argmax(1), t.argmax(1))
    assert np.allclose(cal.temperature_scale(z, 2.0), z / 2)


def test_reliability_curve_adds_up_to_the_ece():
    z, y = _problem(500, 10, 3)
    curve = cal.reliability_curve(z, y, bins=10)
    assert list(curve.columns) == ["lower", "upper", "confidence", "accuracy", "count"]
    assert curve["count"].sum() == 500 and len(curve) == 10
    full = curve.dropna()
    ece = float((full["count"] / 500 * (full["accuracy"] - full["confidence"]).abs()).sum())
    assert ece == pytest.approx(cal.expected_calibration_error(z, y, 10), abs=1e-12)


def test_monotone_objective_ends_at_the_bound():
    # Every example right with a margin: sharper is always better, so T goes to the lower end (until the
    # loss underflows to 0 in float64) and never to the upper one.
    z = np.array([[1.0, 0.0], [0.0, 1.0]] * 10)
    y = np.array([0, 1] * 10)
    assert cal.fit_temperature(z, y) == pytest.approx(cal.T_MIN, rel=1e-6)
    assert cal.fit_temperature(-z, y) == pytest.approx(cal.T_MAX, rel=1e-6)  # every example wrong


@pytest.mark.parametrize("logits, labels, match", [
    (np.array([[0.0, np.nan]]), np.array([0]), "logits"),
    (np.array([[0.0, np.inf]]), np.array([0]), "logits"),
    (np.zeros((3, 2)), np.array([0, 1]), "labels"),
    (np.zeros((2, 2)), np.array([0, 2]), "labels"),
    (np.zeros((2, 2)), np.array([-1, 0]), "labels"),
    (np.zeros((2, 2)), np.array([0.5, 1.0]), "labels"),
    (np.zeros(4), np.array([0]), "logits"),
    (np.zeros((0, 3)), np.zeros(0, int), "logits"),
    (np.zeros((2, 1)), np.array([0, 0]), "logits"),
])
def test_bad_input_names_the_argument(logits, labels, match):
    with pytest.raises(ValueError, match=match):
        cal.fit_temperature(logits, labels)
    with pytest.raises(ValueError, match=match):
        cal.expected_calibration_error(logits, labels)


@pytest.mark.parametrize("bins", [0, -3, 1.5, True, "15"])
def test_bins_must_be_a_positive_integer(bins):
    z, y = _problem(5, 3, 0)
    with pytest.raises(ValueError, match="bins"):
        cal.expected_calibration_error(z, y, bins)
    with pytest.raises(ValueError, match="bins"):
        cal.reliability_curve(z, y, bins)


@pytest.mark.parametrize("T", [0, -1.0, math.nan, math.inf, True, "2"])
def test_temperature_must_be_positive_and_finite(T):
    with pytest.raises(ValueError, match="T must"):
        cal.temperature_scale(np.zeros((2, 2)), T)


@pytest.mark.parametrize("bad", ["abc", None, [[1.0, 2.0], [3.0]]])
def test_non_arrays_are_type_errors(bad):
    with pytest.raises(TypeError, match="logits"):
        cal.expected_calibration_error(bad, [0])


@given(arrays(np.float64, (7, 3), elements=st.floats(-50, 50)))
@settings(max_examples=30, deadline=None)
def test_ece_is_in_the_unit_interval(z):
    y = np.arange(7) % 3
    assert 0.0 <= cal.expected_calibration_error(z, y) <= 1.0


@pytest.mark.parametrize("scale, T", [(1e300, 1e-10), (1e307, 0.5), (1e200, 1e-200), (1.0, 1e-300)])
def test_cross_entropy_survives_huge_logits_and_tiny_temperatures(scale, T):
    z = np.array([[1.0, 0.0, -1.0], [0.0, 2.0, 1.0]]) * scale
    ce = cal.per_example_ce(z, np.array([0, 1]), T=T)
    assert np.all(ce == 0.0)  # the right class has by far the largest logit: no nan, no inf
    wrong = cal.per_example_ce(z, np.array([1, 0]), T=T)
    assert not np.isnan(wrong).any() and (wrong > 0).all()


def test_ece_with_many_bins_uses_only_the_occupied_ones():
    rng = np.random.default_rng(0)
    z, y = rng.normal(size=(200, 4)), rng.integers(0, 4, 200)
    few = cal.expected_calibration_error(z, y, bins=15)
    curve = cal.reliability_curve(z, y, bins=15)
    n = curve["count"].sum()
    manual = float((curve["count"] / n * (curve["accuracy"] - curve["confidence"]).abs()).fillna(0).sum())
    assert abs(few - manual) < 1e-12
    assert 0.0 <= cal.expected_calibration_error(z, y, bins=10**12) <= 1.0  # no 8 TB bincount
