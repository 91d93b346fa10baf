"""The figures of chapters 5 and 6 (the compression trade-off), drawn with :mod:`poprisk.plotting`; each
chapter cell calls one function and the chapter's text says what to read off the figure.

* :func:`optimal_rate_figure` — chapter 5: ``s e^{−2R} + √(2σ²R/n)`` against ``R`` for several ``n`` with the
  Lambert-W optimum marked where it beats ``R = 0``, and the optimal rate against ``n`` beside ``¼ log n``.
* :func:`risk_curves_figure` — chapter 6: the expected empirical risk, generalization error and population
  risk against the rate for two :class:`poprisk.linreg.LinearModel` examples, with Monte Carlo points.
* :func:`improvement_map_figure` — chapter 6: the relative improvement of optimal compression over the
  (samples per parameter, SNR) plane with the criterion's boundary.
* :func:`bound_figure` — chapter 6: the information bounds on ``gen(Ŵ)`` and on ``E L_μ(Ŵ)`` beside the exact
  values.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import ticker

from poprisk import plotting
from poprisk.tradeoff import bound_curve

__all__ = ["optimal_rate_figure", "risk_curves_figure", "improvement_map_figure", "bound_figure"]


def optimal_rate_figure(r_star, rates, ns, n_range):
    """Chapter 5 (``s = σ = 1``): left, the bound minus the training loss over ``rates`` for each ``n`` in
    ``ns``, a dot at ``r_star(1, 1, n)`` where it beats ``R = 0``; right, the optimal rate over ``n_range``
    (0 where ``R = 0`` wins) beside ``¼ log n``. ``r_star(s, σ, n)`` is the chapter's Lambert-W root."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(7.0, 3.4))
    for i, n in enumerate(ns):
        ax1.plot(rates, bound_curve(rates, 1.0, 1.0, n), color=plotting.PALETTE[i], label=f"n = {n:,}")
        r_opt = float(np.real(r_star(1.0, 1.0, n)))
        if bound_curve(r_opt, 1.0, 1.0, n) < bound_curve(0.0, 1.0, 1.0, n):
            ax1.plot(r_opt, bound_curve(r_opt, 1.0, 1.0, n), "o", color=plotting.PALETTE[i])
    ax1.set_ylim(0, 1.6)
    plotting.labelled(ax1, "rate R (nats)", r"$D(R) + \sqrt{2\sigma^2R/n}$ (loss units)",
                      r"Bound minus training loss, $s = \sigma = 1$")
    ax1.legend()
    r_opt_curve = np.real(r_star(1.0, 1.0, n_range))
    better = bound_curve(r_opt_curve, 1.0, 1.0, n_range) < 1.0
    ax2.semilogx(n_range, np.where(better, r_opt_curve, 0.0), "-")
    ax2.semilogx(n_range, 0.25 * np.log(n_range), "k:", lw=1.0, label=r"$\frac{1}{4}\log n$")
    plotting.labelled(ax2, "training-set size n", "optimal rate R* (nats)", "The optimal rate grows with n")
    ax2.legend()
    fig.tight_layout()
    return fig


def risk_curves_figure(examples, rates, mc=None):
    """Chapter 6: one panel per ``(model, title)`` of ``examples``: the expected empirical risk, gen and
    population risk over ``rates``, the uncompressed population risk (dashed) and the optimum (star).
    ``mc`` maps a panel index to ``(rates, sims)``: Monte Carlo population risks drawn with ±3 SE."""
    fig, axes = plt.subplots(1, len(examples), figsize=(7.0, 3.6))
    for k, (ax, (model, title)) in enumerate(zip(np.atleast_1d(axes), examples)):
        curve, opt = model.risk_curve(rates=rates), model.optimal()
        ax.plot(rates, curve["empirical"], label=r"empirical risk $\mathbb{E}\,L_S(\hat W)$")
        ax.plot(rates, curve["gen"], label=r"generalization error")
        ax.plot(rates, curve["population"], label=r"population risk $\mathbb{E}\,L_\mu(\hat W)$")
        ax.axhline(model.uncompressed().population, ls="--", color="0.35", lw=1.2,
                   label="population risk, uncompressed")
        if math.isfinite(opt.rate):
            ax.plot([opt.rate], [opt.population], "k*", ms=11, label=f"optimum, R = {opt.rate:.2f} nats")
        if mc and k in mc:
            mc_rates, sims = mc[k]
            ax.errorbar(mc_rates, [m.population for m in sims], yerr=[3 * m.population_se for m in sims],
                        fmt="o", color=plotting.PALETTE[2], mfc="white", capsize=3,
                        label="Monte Carlo (±3 SE)")
        ax.set_ylim(0, 3.8)
        plotting.labelled(ax, "rate R = I(S; Ŵ)  (nats)", "expected risk (squared loss)", title)
        ax.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    return fig


def improvement_map_figure(ratios, snrs, improvement, boundary):
    """Chapter 6: ``100·improvement`` (rows: ``snrs``, columns: ``ratios``; white where ``≤ 0``) with the
    criterion's boundary SNR per ratio (solid) and its large-sample limit ``d/n`` (dashed)."""
    fig, ax = plt.subplots(figsize=(7.0, 4.6))
    shown = np.ma.masked_less_equal(100 * np.asarray(improvement), 0.0)
    mesh = ax.pcolormesh(ratios, snrs, shown, shading="nearest", cmap="viridis")
    fig.colorbar(mesh, ax=ax, label="risk reduction by optimal compression (%)")
    ax.plot(ratios, boundary, color="black", lw=2.2, label=r"criterion boundary $\kappa = 1/2$")
    ax.plot(ratios, 1 / np.asarray(ratios), color="black", ls="--", lw=1.2,
            label=r"large-$n$ limit SNR $= d/n$")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(min(ratios), max(ratios))
    ax.set_xticks([1.25, 2, 3, 5, 10, 20])
    ax.xaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())
    ax.set_ylim(min(snrs), max(snrs))
    ax.grid(False)
    ax.text(1.5, 0.02, "compression helps", color="white", fontsize=10)
    ax.text(6.0, 3.0, "compression does not help", color="black", fontsize=10)
    plotting.labelled(ax, "samples per parameter n/d", r"signal-to-noise ratio $d\sigma_w^2/\sigma^2$",
                      "Where optimal compression helps (Gaussian design, d = 20)")
    ax.legend(loc="upper right", frameon=True)
    fig.tight_layout()
    return fig


def bound_figure(model, rates, exact, bound_c, bound_r):
    """Chapter 6: left, the exact ``gen`` (``exact["gen"]``) with the conditional bound ``bound_c`` and the
    rate bound ``bound_r`` over ``rates``; right, ``E L_S(Ŵ)`` plus each bound beside the exact population
    risk. ``exact`` is ``model.risk_curve(rates=rates)``."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(7.0, 3.6))
    unc = model.uncompressed()
    ax1.plot(rates, exact["gen"], color=plotting.PALETTE[1], label="exact generalization error")
    ax1.plot(rates, bound_c, color=plotting.PALETTE[0], label=r"bound with $I(S;\hat W\,|\,w^*)$")
    ax1.plot(rates, bound_r, color=plotting.PALETTE[0], ls="--", label=r"bound with $I(S;\hat W) = R$")
    ax1.axhline(unc.gen, color="0.35", ls=":", lw=1.2, label="exact, uncompressed (bound: ∞)")
    plotting.labelled(ax1, "rate R  (nats)", "generalization error", "Bound vs exact value")
    ax1.legend(loc="upper left", fontsize=7)
    ax2.plot(rates, exact["population"], color=plotting.PALETTE[2], label=r"exact $\mathbb{E}\,L_\mu(\hat W)$")
    ax2.plot(rates, exact["empirical"] + bound_c, color=plotting.PALETTE[0],
             label=r"$\mathbb{E}\,L_S(\hat W)$ + conditional bound")
    ax2.plot(rates, exact["empirical"] + bound_r, color=plotting.PALETTE[0], ls="--",
             label=r"$\mathbb{E}\,L_S(\hat W)$ + bound with $R$")
    ax2.axhline(unc.population, color="0.35", ls=":", lw=1.2, label="exact, uncompressed")
    ax2.set_ylim(0, 4.0)
    plotting.labelled(ax2, "rate R  (nats)", "population risk", "Population risk and its upper bound")
    ax2.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    return fig
