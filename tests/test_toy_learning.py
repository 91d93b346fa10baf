"""Tests of poprisk.toy_learning (chapter 4's small problems) against brute force and Monte Carlo."""

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from poprisk import toy_learning as toy


def brute_mi(joint):
    a, b = joint.sum(1), joint.sum(0)
    return sum(joint[i, j] * math.log(joint[i, j] / (a[i] * b[j]))
               for i in range(joint.shape[0]) for j in range(joint.shape[1]) if joint[i, j] > 0)


@pytest.mark.parametrize("n,p,k,rho", [(3, 0.3, 2, 0.0), (4, 0.6, 3, 0.3), (5, 0.2, 4, 0.7)])
def test_bernoulli_compressed_by_enumerating_samples(n, p, k, rho):
    grid = np.linspace(0, 1, k)
    gen, joint = 0.0, np.zeros((n + 1, k))
    for s in itertools.product((0, 1), repeat=n):  # every training sequence
        prob = math.prod(p if z else 1 - p for z in s)
        w = sum(s) / n
        chan = np.full(k, rho / k)
        chan[np.abs(w - grid).argmin()] += 1 - rho
        l_pop = p * (1 - grid) + (1 - p) * grid
        l_emp = np.mean([np.abs(grid - z) for z in s], axis=0)
        gen += prob * float(chan @ (l_pop - l_emp))
        joint[sum(s)] += prob * chan
    got = toy.bernoulli_compressed(n, p, k, rho)
    pk = stats.binom.pmf(np.arange(n + 1), n, p)
    q = joint.sum(0)
    want = (gen, -sum(x * math.log(x) for x in pk), brute_mi(joint), -sum(x * math.log(x) for x in q if x > 0))
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-14)


def test_bernoulli_compressed_rejects_bad_input():
    with pytest.raises(ValueError, match="rho"):
        toy.bernoulli_compressed(5, 0.3, 2, 1.5)
    with pytest.raises(TypeError, match="k"):
        toy.bernoulli_compressed(5, 0.3, 2.0, 0.1)


def test_quantize_angle_midpoints_and_indices():
    w = np.array([-np.pi, -0.1, 0.1, np.pi - 1e-9])
    idx, mid = toy.quantize_angle(w, 4)
    assert idx.tolist() == [0, 1, 2, 3]
    np.testing.assert_allclose(mid, [-3 * np.pi / 4, -np.pi / 4, np.pi / 4, 3 * np.pi / 4])


def test_circular_mean_is_the_erm_of_the_cosine_loss():
    z = np.random.default_rng(0).normal(1.0, 1.0, size=(3, 7))
    grid = np.linspace(-np.pi, np.pi, 200001)
    for row, w in zip(z, toy.circular_mean(z)):
        best = grid[np.argmin((1 - np.cos(grid[:, None] - row)).mean(1))]
        assert abs(w - best) < 1e-4


def test_quantized_circular_erm_against_its_definitions():
    bits = np.array([1, 2, 8])
    out = toy.quantized_circular_erm(bits, 10, 4000, 20000, np.random.default_rng(3), mean=1.0)
    z = np.random.default_rng(3).normal(1.0, 1.0, size=(4000, 10))  # the same training sets
    w = toy.circular_mean(z)
    big = np.random.default_rng(4).normal(1.0, 1.0, size=200_000)
    l_mu = (1 - np.cos(w[:, None] - big[None, :2000])).mean(1)  # Monte Carlo population risk
    l_s = (1 - np.cos(w[:, None] - z)).mean(1)
    assert abs(out["gen_w"] - (l_mu - l_s).mean()) < 4 * out["se_w"] + 0.01
    assert 0.02 < out["gen_w"] < 0.2 and out["se_w"] > 0
    assert np.all(out["rate"] <= bits * math.log(2) + 1e-12)
    rng = np.random.default_rng(3)
    rng.normal(size=(4000, 10))  # the training sets come first, then those of the entropy
    idx = toy.quantize_angle(toy.circular_mean(rng.normal(1.0, 1.0, size=(20000, 10))), 4)[0]
    freq = np.bincount(idx, minlength=4) / idx.size
    assert abs(out["rate"][1] + sum(f * math.log(f) for f in freq if f > 0)) < 1e-12
    assert abs(out["gen_hat"][-1] - out["gen_w"]) < 0.05 * out["gen_w"]
    with pytest.raises(ValueError, match="bits"):
        toy.quantized_circular_erm([0], 10, 10, 10, np.random.default_rng(0))


def test_gaussian_population_error_and_logistic_fit():
    rng = np.random.default_rng(1)
    m_vec = np.full(5, 0.4)
    x, y = toy.gaussian_classes(rng, 200_000, m_vec)
    w = np.array([0.5, -0.2, 1.0, 0.3, 0.0, 0.2])
    exact = toy.gaussian_population_error(w, m_vec)
    assert abs(toy.zero_one(w, x, y) - exact) < 4 * math.sqrt(exact * (1 - exact) / y.size)
    xs, ys = x[:300], y[:300]
    fit = toy.fit_logistic(xs, ys)
    xb = np.hstack([xs, np.ones((300, 1))])
    grad = -(xb * (ys / (1 + np.exp(ys * (xb @ fit))))[:, None]).mean(0) + 1e-2 * fit
    assert np.abs(grad).max() < 1e-4  # a stationary point of the regularized loss


def test_kmeans_versions_have_at_most_k_values():
    w = np.random.default_rng(2).normal(size=50)
    versions = list(toy.kmeans_versions(w, (8, 2)))
    assert [name for name, _ in versions] == ["float32 (no compression)", "K = 8", "K = 2"]
    assert [np.unique(v).size for _, v in versions] == [50, 8, 2]
