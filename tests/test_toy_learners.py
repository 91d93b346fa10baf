"""Tests of poprisk.toy_learners (chapter 2): each closed form against brute-force enumeration or Monte Carlo."""

import itertools
import math

import numpy as np
import pytest

from poprisk import infotheory, toy_learners as tl


def _maj_p1(bits, rho):
    k, n = sum(bits), len(bits)
    return rho + (1 - 2 * rho) * (1.0 if 2 * k > n else 0.5 if 2 * k == n else 0.0)


@pytest.mark.parametrize("n, rho", [(1, 0.0), (4, 0.1), (5, 0.3)])
def test_noisy_majority_matches_enumeration_of_every_sample(n, rho):
    p, gen, joint_sw, joint_wz = 0.3, 0.0, [], np.zeros((2, 2))
    for bits in itertools.product((0, 1), repeat=n):
        ps = math.prod(p if b else 1 - p for b in bits)
        p1 = _maj_p1(bits, rho)
        for w, pw in ((0, 1 - p1), (1, p1)):
            pop = p if w == 0 else 1 - p  # P(Z != w)
            gen += ps * pw * (pop - np.mean([b != w for b in bits]))
            joint_wz[bits[0], w] += ps * pw
        joint_sw.append([ps * (1 - p1), ps * p1])
    got = tl.noisy_majority(n, p, rho)
    expect = (gen, infotheory.mutual_information(np.array(joint_sw)), infotheory.mutual_information(joint_wz))
    np.testing.assert_allclose(got, expect, rtol=1e-12, atol=1e-15)
    if n == 1 and rho == 0:  # W = Z_1: gen = 2p(1 - p), I = H(p)
        h = infotheory.entropy([p, 1 - p])
        np.testing.assert_allclose(got, (2 * p * (1 - p), h, h), rtol=1e-12)


@pytest.mark.parametrize("n, rho", [(1, 0.0), (2, 0.1), (3, 0.1)])
def test_majority_cmi_matches_enumeration_of_supersamples(n, rho):
    p, total = 0.3, 0.0
    for zt in itertools.product((0, 1), repeat=2 * n):  # pairs (zt[2i], zt[2i+1])
        pz = math.prod(p if b else 1 - p for b in zt)
        joint = [[2.0**-n * (1 - q), 2.0**-n * q] for sel in itertools.product((0, 1), repeat=n)
                 for q in [_maj_p1([zt[2 * i + s] for i, s in enumerate(sel)], rho)]]
        total += pz * infotheory.mutual_information(np.array(joint))
    assert tl.majority_cmi(n, p, rho) == pytest.approx(total, rel=1e-10, abs=1e-14)


def test_squared_loss_cgf_matches_monte_carlo_of_the_decoupled_gap():
    rng = np.random.default_rng(0)
    n, tau2, draws = 5, 0.5, 400_000
    zs = rng.normal(size=(draws, n))
    w = rng.normal(0.0, math.sqrt(1 / n + tau2), size=draws)
    gap = (1 + w**2) - ((w[:, None] - zs) ** 2).mean(axis=1)
    for eta in (0.1, 0.3, 0.5):
        assert tl.squared_loss_cgf(eta, n, tau2) == pytest.approx(math.log(np.mean(np.exp(eta * gap))), abs=0.01)
    assert tl.squared_loss_cgf(50.0, n, tau2) == math.inf


def test_cgf_bound_is_the_minimum_over_eta():
    for n, tau2 in ((2, 0.01), (10, 0.1), (200, 1.0)):
        info = infotheory.gaussian_mi(1 / n, tau2)
        a = 1 / n + tau2
        etas = np.geomspace(1e-4, 0.999 * (1 + math.sqrt(1 + 4 * a * n)) / (4 * a), 20_000)
        grid = min((info + tl.squared_loss_cgf(e, n, tau2)) / e for e in etas)
        assert 2 / n <= tl.cgf_bound(n, tau2) <= grid + 1e-9
        assert tl.cgf_bound(n, tau2) == pytest.approx(grid, rel=1e-3)


def test_cosine_monte_carlo_agrees_with_the_closed_form():
    n_values, tau2 = np.array([1, 4, 16]), 1.0
    mean, se = tl.cosine_gen_monte_carlo(0.7, tau2, n_values, 40_000, np.random.default_rng(1))
    closed = 2 * np.sinh(1 / (2 * n_values)) * np.exp(-(1 + tau2) / 2)
    assert np.all(np.abs(mean - closed) < 4.5 * se) and np.all(se < 0.1 * closed)


def test_memorizer_reveals_k_bits():
    rng = np.random.default_rng(2)
    for k in (1, 3, 6):
        assert tl.memorizer_cmi(k, rng, supersamples=3) == pytest.approx(k * math.log(2), abs=1e-12)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="p must"):
        tl.noisy_majority(3, 1.5, 0.1)
    with pytest.raises(TypeError, match="n must be an integer"):
        tl.majority_cmi(2.5, 0.3, 0.1)
    with pytest.raises(TypeError, match="rng must be"):
        tl.cosine_gen_monte_carlo(0.0, 1.0, [1], 10, 0)
