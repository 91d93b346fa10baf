"""Tests of the figure helpers of chapters 1 and 9 in poprisk.plotting."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from poprisk import calibration, plotting  # noqa: E402


@pytest.fixture
def ax():
    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


def test_log_axis_labels_only_the_given_ticks(ax):
    ax.plot([0.03, 1.0], [1, 2])
    plotting.log_axis(ax, [0.03, 0.1, 0.3, 1.0])
    ax.figure.canvas.draw()
    assert ax.get_xscale() == "log"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.03", "0.1", "0.3", "1"]
    assert all(not t.get_text() for t in ax.get_xticklabels(minor=True))


@pytest.mark.parametrize("ticks", [[], [0.0, 1.0], [np.nan], [-1.0]])
def test_log_axis_rejects_bad_ticks(ax, ticks):
    with pytest.raises(ValueError):
        plotting.log_axis(ax, ticks)


def test_log_axis_rejects_bad_axis(ax):
    with pytest.raises(ValueError, match="axis"):
        plotting.log_axis(ax, [1.0], axis="z")


def test_interval_plot_draws_sorted_points_with_their_bars(ax):
    f = pd.DataFrame({"x": [3.0, 1.0, 2.0], "m": [0.3, 0.1, 0.2], "lo": [0.25, 0.0, 0.2],
                      "hi": [0.4, 0.15, 0.2]})
    bars = plotting.interval_plot(ax, f, "x", "m", "lo", "hi", marker="o")
    line = bars.lines[0]
    np.testing.assert_allclose(line.get_xdata(), [1.0, 2.0, 3.0])
    np.testing.assert_allclose(line.get_ydata(), [0.1, 0.2, 0.3])
    # the vertical bar of the point at x = 1 spans its interval [0.0, 0.15]
    segments = bars.lines[2][0].get_segments()
    np.testing.assert_allclose(segments[0][:, 1], [0.0, 0.15])


def test_interval_plot_rejects_bad_frames(ax):
    f = pd.DataFrame({"x": [1.0], "m": [0.5], "lo": [0.6], "hi": [0.7]})
    with pytest.raises(ValueError, match="does not contain"):
        plotting.interval_plot(ax, f, "x", "m", "lo", "hi")
    with pytest.raises(ValueError, match="lacks"):
        plotting.interval_plot(ax, f, "x", "mean", "lo", "hi")
    with pytest.raises(ValueError, match="no rows"):
        plotting.interval_plot(ax, f.iloc[:0], "x", "m", "lo", "hi")


def test_reliability_diagram_plots_the_bins_of_each_curve(ax):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(400, 3)) * 3
    labels = rng.integers(0, 3, 400)
    curve = calibration.reliability_curve(logits, labels, bins=10)
    plotting.reliability_diagram(ax, {"model": curve}, min_count=5)
    diagonal, line = ax.get_lines()
    assert np.allclose(diagonal.get_xdata(), [0, 1])
    kept = curve[curve["count"] >= 5]
    np.testing.assert_allclose(line.get_xdata(), kept["confidence"])
    np.testing.assert_allclose(line.get_ydata(), kept["accuracy"])
    assert line.get_label() == "model"


def test_reliability_diagram_rejects_bad_input(ax):
    with pytest.raises(ValueError):
        plotting.reliability_diagram(ax, {})
    with pytest.raises(ValueError, match="lacks"):
        plotting.reliability_diagram(ax, {"m": pd.DataFrame({"confidence": [0.5]})})
    curve = calibration.reliability_curve(np.eye(3) * 4, np.arange(3), bins=5)
    with pytest.raises(ValueError, match="min_count"):
        plotting.reliability_diagram(ax, {"m": curve}, min_count=0)
