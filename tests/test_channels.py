"""Tests of poprisk.channels (chapter 3): I(p, Q), d(p, Q) and R(D) by direct optimization."""

import math

import numpy as np
import pytest

from poprisk import channels, infotheory


def test_channel_mi_extremes_and_distortion():
    p = np.array([0.2, 0.3, 0.5])
    assert channels.channel_mi(p, np.eye(3)) == pytest.approx(infotheory.entropy(p))
    assert channels.channel_mi(p, np.tile([0.1, 0.6, 0.3], (3, 1))) == pytest.approx(0.0, abs=1e-15)
    d = 1 - np.eye(3)
    assert channels.channel_distortion(p, np.full((3, 3), 1 / 3), d) == pytest.approx(2 / 3)


def _h2(x):
    return -x * math.log(x) - (1 - x) * math.log(1 - x)


def test_rate_by_slsqp_is_the_binary_rate_distortion_function():
    p, d = np.array([0.3, 0.7]), 1 - np.eye(2)
    for target in (0.05, 0.1, 0.2):
        assert channels.rate_by_slsqp(p, d, target) == pytest.approx(_h2(0.3) - _h2(target), abs=1e-6)
    assert channels.rate_by_slsqp(p, d, 0.35) == pytest.approx(0.0, abs=1e-8)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="channel must be a"):
        channels.channel_mi([0.5, 0.5], np.eye(3))
    with pytest.raises(ValueError, match="d must be a"):
        channels.rate_by_slsqp([0.5, 0.5], np.eye(3), 0.1)
