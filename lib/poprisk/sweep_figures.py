"""The figures of chapter 9's sweep, drawn with :mod:`poprisk.plotting` (the chapter's cells call one
function each; the chapter's text says what to read off them).

* :func:`quantization_panels` — training CE, test CE, gap and calibrated test CE against the compression
  ratio, one curve per quantizer (means over seeds with their across-seed interval, from
  :func:`poprisk.stats.summarize`).
* :func:`reliability_panels` — reliability diagrams of one seed's networks, as compressed and each divided by
  its own validation temperature.
* :func:`pruning_panels` — test CE and calibrated test CE against the pruned fraction, pruning alone and
  pruning followed by quantization.
"""

from __future__ import annotations

import matplotlib.pyplot as plt

from poprisk import calibration, plotting, train

__all__ = ["LABELS", "quantization_panels", "reliability_panels", "pruning_panels"]

#: How the pages name the quantizers of :data:`poprisk.quantize.METHODS`.
LABELS = {"uniform": "uniform", "kmeans": "K-means", "hw_kmeans": "HW K-means", "hw_exact": "HW exact (DP)",
          "drhw": "DRHW, β on validation", "drhw_linear": "authors' rule, λ = 30"}
_MARKERS = dict(uniform="v", kmeans="o", hw_kmeans="s", hw_exact="D", drhw="^")
_PANELS = (("train_ce", "training CE (nats)"), ("test_ce", "test CE (nats)"),
           ("gap", "gap: test − training CE (nats)"), ("test_ce_cal", "test CE, own temperature (nats)"))


def _references(ax, base, y):
    """Dashed: the uncompressed networks; dotted: the same with their validation temperature."""
    ref = base["test_ce_mean"] if y == "test_ce_cal" else base[f"{y}_mean"]
    ax.axhline(ref, color="0.4", ls="--", lw=1)
    if y in ("test_ce", "test_ce_cal"):
        ax.axhline(base["test_ce_cal_mean"], color="0.2", ls=":", lw=1.2)
    return ref


def quantization_panels(summary, base, *, ratio_ticks=(0.03, 0.05, 0.1, 0.15)):
    """The 2×2 quantization figure. ``summary``: :func:`poprisk.stats.summarize` rows of the quantizers
    (``method``, ``ratio_mean`` and ``{metric}_mean/_lo/_hi`` for the four panel metrics); ``base``: the same
    summary of the uncompressed networks (one row). Cross-entropy axes are cut at 1 nat."""
    fig, axes = plt.subplots(2, 2, figsize=(7, 6.6))
    for ax, (y, label) in zip(axes.ravel(), _PANELS):
        for method, marker in _MARKERS.items():
            rows = summary[summary["method"] == method]
            plotting.interval_plot(ax, rows, "ratio_mean", f"{y}_mean", f"{y}_lo", f"{y}_hi", marker=marker,
                                   label=LABELS[method])
        means = summary.loc[summary["method"].isin(list(_MARKERS)), f"{y}_mean"]
        if y == "train_ce":
            ax.set_yscale("log")
            ax.set_ylim(means.min() / 2, means.max() * 2)
        else:
            ref = _references(ax, base, y)
            low = min(means.min(), ref, base["test_ce_cal_mean"] if "test" in y else 1)
            ax.set_ylim(0.9 * low, min(1.1 * means.max(), 1.0))
        plotting.log_axis(ax, list(ratio_ticks))
        plotting.labelled(ax, "compression ratio", label)
    handles, names = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=3, fontsize=8)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def reliability_panels(nets, split, *, min_count: int = 10):
    """Reliability diagrams on ``split``'s test set of the networks ``nets`` (``{label: model}``), left as
    they are, right each divided by its own temperature fitted on ``split``'s validation set."""
    y_val, y_test = split.y_val.cpu(), split.y_test.cpu()
    fig, axes = plt.subplots(1, 2, figsize=(7, 3.9))
    for ax, own_t in zip(axes, (False, True)):
        curves = {}
        for label, net in nets.items():
            z = train.predict(net, split.x_test)
            T = calibration.fit_temperature(train.predict(net, split.x_val), y_val) if own_t else 1.0
            curves[label] = calibration.reliability_curve(z / T, y_test)
        plotting.reliability_diagram(ax, curves, min_count=min_count)
        ax.set_title("each with its own T" if own_t else "as trained / compressed")
        ax.set_xlabel("confidence")
    axes[0].legend(fontsize=7, loc="upper left")
    axes[1].set_ylabel("")
    fig.tight_layout()
    return fig


def pruning_panels(summary, base):
    """The 2×2 pruning figure: ``summary`` from :func:`poprisk.stats.summarize` by ``experiment, prune,
    method, prune_ratio`` (``"prune"`` rows on top, ``"prune_quantize"`` below), ``base`` as in
    :func:`quantization_panels`; raw test CE left, calibrated right."""
    fig, axes = plt.subplots(2, 2, figsize=(7, 6.2), sharex=True, sharey="row")
    for col, (y, label) in enumerate((("test_ce", "test CE"), ("test_ce_cal", "test CE, own T"))):
        for row, experiment in enumerate(("prune", "prune_quantize")):
            ax = axes[row, col]
            part = summary[summary["experiment"] == experiment]
            for (prune, method), rows in part.groupby(["prune", "method"], dropna=False, sort=False):
                name = prune + ("" if experiment == "prune" else f" + {LABELS[method]}")
                plotting.interval_plot(ax, rows, "prune_ratio", f"{y}_mean", f"{y}_lo", f"{y}_hi", marker="o",
                                       label=name)
            ax.axhline(base["test_ce_mean"], color="0.4", ls="--", lw=1)
            ax.axhline(base["test_ce_cal_mean"], color="0.2", ls=":", lw=1.2)
            ax.set_ylim(0.9 * base["test_ce_cal_mean"], 1.0)
            ax.set_ylabel(f"{label} (nats)" if col == 0 else "")
            ax.set_title(("pruning" if experiment == "prune" else "pruning, then 2 bits")
                         + (", own T" if col else ""), fontsize=9)
        axes[1, col].set_xlabel("fraction of weights pruned")
    axes[0, 0].legend(fontsize=7)
    axes[1, 0].legend(fontsize=7)
    fig.tight_layout()
    return fig
