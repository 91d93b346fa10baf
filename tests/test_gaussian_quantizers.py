"""Tests of poprisk.gaussian_quantizers (chapter 3): exact MSE/entropy against quadrature and known tables."""

import math

import numpy as np
import pytest
from scipy import integrate, stats

from poprisk import gaussian_quantizers as gq


def test_mse_and_entropy_match_quadrature_for_arbitrary_cells():
    rng = np.random.default_rng(0)
    for _ in range(5):
        k = int(rng.integers(2, 6))
        edges = np.sort(rng.normal(0.0, 1.5, size=k - 1))
        levels = rng.normal(size=k)
        mse, ent, mass, first = gq.gaussian_quantizer(levels, edges)
        cuts = np.concatenate([[-np.inf], edges, [np.inf]])
        pieces = [integrate.quad(lambda x, c=c: (x - c) ** 2 * stats.norm.pdf(x), lo, hi)[0]
                  for lo, hi, c in zip(cuts[:-1], cuts[1:], levels)]
        assert mse == pytest.approx(sum(pieces), rel=1e-8)
        assert ent == pytest.approx(-np.sum(mass * np.log(mass)), rel=1e-12)
        means = [integrate.quad(lambda x: x * stats.norm.pdf(x), lo, hi)[0] for lo, hi in zip(cuts[:-1], cuts[1:])]
        np.testing.assert_allclose(first, means, atol=1e-10)


def test_lloyd_max_reproduces_the_classical_tables():
    two = gq.lloyd_max(2)
    np.testing.assert_allclose(two, [-math.sqrt(2 / math.pi), math.sqrt(2 / math.pi)], atol=1e-10)
    assert gq.gaussian_quantizer(two)[0] == pytest.approx(1 - 2 / math.pi, abs=1e-12)
    four = gq.lloyd_max(4)  # Max (1960): levels 0.4528, 1.510; MSE 0.1175
    np.testing.assert_allclose(four[2:], [0.4528, 1.5104], atol=1e-4)
    assert gq.gaussian_quantizer(four)[0] == pytest.approx(0.11748, abs=1e-5)


def test_uniform_levels_are_the_best_step():
    levels = gq.uniform_levels(4)  # Max (1960): step 0.9957, MSE 0.1188
    assert levels[1] - levels[0] == pytest.approx(0.9957, abs=1e-4)
    best = gq.gaussian_quantizer(levels)[0]
    assert best == pytest.approx(0.11885, abs=1e-4)
    for f in (0.98, 1.02):
        assert gq.gaussian_quantizer(f * levels)[0] > best
    np.testing.assert_allclose(gq.uniform_levels(2), gq.lloyd_max(2), atol=1e-6)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="edges must be 2"):
        gq.gaussian_quantizer([0.0, 1.0, 2.0], [0.5])
    with pytest.raises(TypeError, match="k must be an integer"):
        gq.lloyd_max(2.0)
