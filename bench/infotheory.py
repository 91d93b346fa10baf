"""poprisk.infotheory against its anchors (issue 15): reverse water-filling and Blahut–Arimoto.

Prints two tables; each ratio is an anchor's time over poprisk's (above 1: poprisk is faster):

1. ``reverse_water_filling`` on d ∈ {1e4, 1e6} log-normal variances (σ = 1.5), at a distortion (a quarter of
   the total) and at a rate (0.3 nats per component): poprisk's CPU milliseconds; ``brentq/ours``, scipy's
   ``brentq`` on the water level to full precision (log-variances precomputed for the rate) plus the same
   per-component outputs; ``old/ours``, poprisk's old path (sort the variances, closed form on the right piece);
   the relative error of θ against a reference — mpmath at 50 digits for d = 1e4, the closed form of the
   verified piece with ``math.fsum`` for d = 1e6 — and of the achieved distortion or rate. Targets:
   ``brentq/ours ≥ 1`` and errors ≤ 1e-12. Then the float-range case: variances 1e±200 with θ at the small one
   (the ratio overflows), whose total rate must be finite and equal to ½ log(s_max/θ).
2. ``blahut_arimoto`` on a 1,024-point discretized N(0, 1) (grid ±6), 20 slopes −1/(2D) with D geometric in
   [0.02, 0.8], at the default tolerance: total CPU seconds (target ≤ 0.3 s), all converged, max |R − R_gauss(D)|
   (target ≤ 1e-4 nats), max certified gap and iterations; side by side: poprisk's old default rule (stop only
   on the certificate, ``stop="gap"``, ``max_iter=2000``) and dit's ``blahut_arimoto`` (one start, its own
   stopping rule, ``max_iters=10_000``), each with its time ratio, accuracy and convergence.

Times are ``time.process_time`` CPU seconds on one thread (``OMP_NUM_THREADS=1`` before NumPy is imported),
best of 5 (3 for the slow anchors). dit comes from ``bench/requirements.txt`` (``make bench`` installs it).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import math  # noqa: E402
import time  # noqa: E402

import mpmath  # noqa: E402
import numpy as np  # noqa: E402
from scipy.optimize import brentq  # noqa: E402

from poprisk import infotheory as it  # noqa: E402
from timing import best_of  # noqa: E402


def _timed(fn, repeat=5):
    return best_of(fn, repeat, clock=time.process_time)


# ------------------------------------------------------------------------------------------- water-filling

def _outputs(s, theta):
    """The per-component outputs every solver must produce (as reverse_water_filling does)."""
    dists = np.minimum(theta, s)
    with np.errstate(divide="ignore", invalid="ignore"):
        rates = np.where(s > theta, 0.5 * np.log(s / dists), 0.0)
    return theta, dists, rates


def brentq_distortion(s, target):
    theta = brentq(lambda t: float(np.minimum(t, s).sum()) - target, 0.0, float(s.max()), xtol=1e-300,
                   rtol=4 * np.finfo(float).eps, maxiter=500)
    return _outputs(s, theta)


def brentq_rate(s, target):
    logs = np.log(s)
    u = brentq(lambda v: 0.5 * float(np.maximum(logs - v, 0.0).sum()) - target, float(logs.min()) - 2 * target,
               float(logs.max()), xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=500)
    return _outputs(s, math.exp(u))


def old_distortion(s, target):
    """poprisk's old path: sort once, closed form on the piece of the sorted variances."""
    asc = np.sort(s)
    d = asc.size
    csum = np.concatenate([[0.0], np.cumsum(asc)])
    f_at = csum[:-1] + (d - np.arange(d)) * asc
    k = min(int(np.searchsorted(f_at, target, side="right")) - 1, d - 2)
    theta = target / d if k < 0 else (target - float(np.sum(asc[: k + 1]))) / (d - k - 1)
    return _outputs(s, theta)


def old_rate(s, target):
    desc = np.sort(s[s > 0])[::-1]
    logs = np.log(desc)
    kk = np.arange(1, desc.size + 1)
    g = 0.5 * (np.concatenate([[0.0], np.cumsum(logs)[:-1]]) - (kk - 1) * logs)
    m = int(np.searchsorted(g, target, side="right"))
    return _outputs(s, math.exp((float(np.sum(logs[:m])) - 2.0 * target) / m))


def reference_distortion(s, target, theta, digits):
    """θ on the piece that holds it (checked): 50-digit mpmath, or math.fsum (exact sum, one rounding)."""
    below = s[s <= theta]
    count = s.size - below.size
    if digits:
        mpmath.mp.dps = 50
        ref = (mpmath.mpf(target) - mpmath.fsum(mpmath.mpf(float(v)) for v in below)) / count
    else:
        ref = (target - math.fsum(below)) / count
    assert (s[s > theta] >= ref).all() and (below <= ref).all(), "the reference's piece does not hold it"
    return ref


def reference_rate(s, target, theta, digits):
    act = s[s > theta]
    if digits:
        mpmath.mp.dps = 50
        return mpmath.exp((mpmath.fsum(mpmath.log(mpmath.mpf(float(v))) for v in act) - 2 * mpmath.mpf(target))
                          / act.size)
    return math.exp((math.fsum(np.log(act)) - 2 * target) / act.size)


def water_filling_table():
    rng = np.random.default_rng(0)
    print("== 1. reverse water-filling (CPU ms, one thread) ==")
    head = (f"{'d':>8} {'given':>10} | {'ours [ms]':>9} | {'brentq/ours':>11} | {'old/ours':>8} | "
            f"{'rel err θ':>9} | {'rel err D or R':>14}")
    print(head)
    print("-" * len(head))
    worst_ratio, worst_err = np.inf, 0.0
    for d in (10_000, 1_000_000):
        s = rng.lognormal(0.0, 1.5, size=d)
        cases = (("distortion", 0.25 * float(s.sum()), brentq_distortion, old_distortion, reference_distortion),
                 ("rate", 0.3 * d, brentq_rate, old_rate, reference_rate))
        for given, target, anchor, old, reference in cases:
            t_ours, wf = _timed(lambda: it.reverse_water_filling(s, **{given: target}))
            t_b, (theta_b, _, _) = _timed(lambda: anchor(s, target), 3)
            t_old, _ = _timed(lambda: old(s, target), 3)
            ref = reference(s, target, wf.theta, digits=d <= 10_000)
            err = float(abs(mpmath.mpf(wf.theta) / ref - 1))
            achieved = wf.distortion if given == "distortion" else wf.rate
            err_a = abs(achieved / target - 1)
            worst_ratio, worst_err = min(worst_ratio, t_b / t_ours), max(worst_err, err, err_a)
            print(f"{d:>8} {given:>10} | {t_ours * 1e3:9.2f} | {t_b / t_ours:11.2f} | {t_old / t_ours:8.2f} | "
                  f"{err:9.1e} | {err_a:14.1e}   (brentq's θ rel. err "
                  f"{float(abs(mpmath.mpf(theta_b) / ref - 1)):.0e})", flush=True)
    print("-" * len(head))
    print(f"targets: brentq/ours >= 1 (worst {worst_ratio:.2f}) -> {'met' if worst_ratio >= 1 else 'MISSED'}; "
          f"errors <= 1e-12 (worst {worst_err:.1e}) -> {'met' if worst_err <= 1e-12 else 'MISSED'}")
    s = np.array([1e200, 1e-200, 1e-200])
    wf = it.reverse_water_filling(s, distortion=3e-200)
    expect = 0.5 * (math.log(1e200) - math.log(wf.theta))
    print(f"float range: variances 1e±200, θ = {wf.theta:.3g}: total rate {wf.rate:.6g} nats (finite: "
          f"{math.isfinite(wf.rate)}; ½ log(s_max/θ) = {expect:.6g})")


# --------------------------------------------------------------------------------------------- Blahut–Arimoto

def dit_points(p, dmat, slopes):
    """dit's Blahut–Arimoto at each slope (its β is in bits: e^{s d} = 2^{−β d}); rates back in nats."""
    from dit.rate_distortion.blahut_arimoto import blahut_arimoto

    rates, dists = [], []
    for s in slopes:
        res, _ = blahut_arimoto(p, -s / math.log(2.0), distortion=lambda p_x, q: dmat, max_iters=10_000,
                                restarts=1)
        rates.append(res.rate * math.log(2.0))
        dists.append(res.distortion)
    return np.array(rates), np.array(dists)


def blahut_arimoto_table():
    x = np.linspace(-6.0, 6.0, 1024)
    p = np.exp(-0.5 * x**2)
    p /= p.sum()
    var = float(p @ x**2)
    dmat = (x[:, None] - x[None, :]) ** 2
    slopes = -1.0 / (2.0 * np.geomspace(0.02, 0.8, 20))  # the Gaussian R(D) has slope −1/(2D)
    print("\n== 2. Blahut-Arimoto, 1,024-point discretized N(0,1), 20 slopes, default tolerance 1e-4 ==")
    head = (f"{'solver':<36} | {'CPU [s]':>7} | {'t/t_ours':>8} | {'max |R - R_gauss|':>17} | {'converged':>9} | "
            f"{'max gap':>8} | {'iterations':>10}")
    print(head)
    print("-" * len(head))
    t_ours, res = _timed(lambda: it.blahut_arimoto(p, dmat, slopes))
    err = float(np.max(np.abs(res.rate - it.gaussian_rd(var, res.distortion))))
    print(f"{'poprisk (stop on a stall)':<36} | {t_ours:7.3f} | {1.0:8.2f} | {err:17.1e} | "
          f"{int(res.converged.sum()):>6}/20 | {float(res.gap.max()):8.1e} | {int(res.iterations.sum()):>10}")
    t_old, old = _timed(lambda: it.blahut_arimoto(p, dmat, slopes, stop="gap"), 3)
    err_old = float(np.max(np.abs(old.rate - it.gaussian_rd(var, old.distortion))))
    print(f"{'poprisk old rule (certificate only)':<36} | {t_old:7.3f} | {t_old / t_ours:8.2f} | {err_old:17.1e} | "
          f"{int(old.converged.sum()):>6}/20 | {float(old.gap.max()):8.1e} | {int(old.iterations.sum()):>10}")
    try:
        t_dit, (r_dit, d_dit) = _timed(lambda: dit_points(p, dmat, slopes), 1)
        err_dit = float(np.max(np.abs(r_dit - it.gaussian_rd(var, d_dit))))
        print(f"{'dit (one start, its own rule)':<36} | {t_dit:7.3f} | {t_dit / t_ours:8.2f} | {err_dit:17.1e} | "
              f"{'—':>9} | {'—':>8} | {'—':>10}")
    except ImportError:
        print(f"{'dit':<36} | not installed (pip install -r bench/requirements.txt)")
    print("-" * len(head))
    ok = t_ours <= 0.3 and res.converged.all() and err <= 1e-4
    print(f"targets: <= 0.3 s ({t_ours:.3f}), all converged ({bool(res.converged.all())}), within 1e-4 nats of the "
          f"closed form ({err:.1e}) -> {'met' if ok else 'MISSED'}")


if __name__ == "__main__":
    water_filling_table()
    blahut_arimoto_table()
