"""Benchmark of poprisk.infotheory against the targets of issue 3 (run: ``python bench/infotheory.py``).

* Reverse water-filling on 10⁴ variances: error against the closed form (θ recomputed in 50-digit arithmetic
  with mpmath) must be ≤ 1e-12 relative, time ≤ 10 ms. Side by side: a bisection solver of the same equation.
* Blahut–Arimoto on a 1,024-point discretized N(0,1), 20 slopes in one call: every point within 1e-3 nats of
  the Gaussian R(D), total time ≤ 1 s.

Each line prints the measured value, the target and their ratio (ratio ≤ 1 means the target is met).
"""

from __future__ import annotations


import mpmath
import numpy as np

from poprisk import infotheory as it
from timing import best_of


def line(name, value, target, unit):
    print(f"{name:<52s} {value:12.3e} {unit:<5s} target {target:9.1e}  ratio {value / target:7.3f}")


def reference_theta_distortion(s, target):
    """θ with Σ min(θ, s_i) = target, in 50-digit arithmetic (active set from the float solution, re-verified)."""
    mpmath.mp.dps = 50
    s_mp = [mpmath.mpf(float(v)) for v in np.sort(s)]
    total = mpmath.mpf(target)
    for k in range(len(s_mp) + 1):  # θ in [s_(k), s_(k+1)): Σ_{i<k} s_i + (d−k) θ = target
        below = mpmath.fsum(s_mp[:k])
        theta = (total - below) / (len(s_mp) - k)
        if (k == 0 or theta >= s_mp[k - 1]) and (k == len(s_mp) or theta <= s_mp[k]):
            return theta
    raise RuntimeError("no piece of the water-filling equation matched")


def reference_theta_rate(s, rate, theta_guess):
    mpmath.mp.dps = 50
    act = [mpmath.mpf(float(v)) for v in s if v > theta_guess]
    return mpmath.exp((mpmath.fsum(mpmath.log(v) for v in act) - 2 * mpmath.mpf(rate)) / len(act))


def bisection_theta(s, target, iters=100):
    lo, hi = 0.0, float(s.max())
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if np.minimum(mid, s).sum() < target else (lo, mid)
    return 0.5 * (lo + hi)


def main():
    rng = np.random.default_rng(0)
    s = rng.lognormal(0.0, 1.5, size=10_000)
    target_d = 0.25 * s.sum()
    target_r = 3000.0

    print("== reverse water-filling, 10^4 variances (nats) ==")
    t_d, wf_d = best_of(lambda: it.reverse_water_filling(s, distortion=target_d), 7)
    t_r, wf_r = best_of(lambda: it.reverse_water_filling(s, rate=target_r), 7)
    t_bis, theta_bis = best_of(lambda: bisection_theta(s, target_d), 3)
    ref_d = reference_theta_distortion(s, target_d)
    ref_r = reference_theta_rate(s, target_r, wf_r.theta)
    err_d = float(abs(mpmath.mpf(wf_d.theta) / ref_d - 1))
    err_r = float(abs(mpmath.mpf(wf_r.theta) / ref_r - 1))
    line("time, distortion given", t_d * 1e3, 10.0, "ms")
    line("time, rate given", t_r * 1e3, 10.0, "ms")
    line("rel. error of theta vs 50-digit closed form (D given)", err_d, 1e-12, "")
    line("rel. error of theta vs 50-digit closed form (R given)", err_r, 1e-12, "")
    line("rel. error of achieved distortion", abs(wf_d.distortion / target_d - 1), 1e-12, "")
    line("rel. error of achieved rate", abs(wf_r.rate / target_r - 1), 1e-12, "")
    print(f"{'side by side: bisection (100 halvings), time':<52s} {t_bis * 1e3:12.3e} ms    "
          f"sorting is {t_bis / t_d:5.1f}x faster; bisection rel. error "
          f"{float(abs(mpmath.mpf(theta_bis) / ref_d - 1)):.1e}")

    print("== Blahut-Arimoto, 1,024-point discretized N(0,1), 20 slopes in one call ==")
    x = np.linspace(-6.0, 6.0, 1024)
    p = np.exp(-0.5 * x**2)
    p /= p.sum()
    dmat = (x[:, None] - x[None, :]) ** 2
    targets = np.geomspace(0.02, 0.8, 20)
    slopes = -1.0 / (2.0 * targets)  # the Gaussian R(D) has slope −1/(2D)
    t_ba, res = best_of(lambda: it.blahut_arimoto(p, dmat, slopes, tol=1e-3), 3)
    err_ba = np.abs(res.rate - it.gaussian_rd(1.0, res.distortion))
    line("total time, 20 slopes", t_ba, 1.0, "s")
    line("max |R_BA(D) - R_gauss(D)|", float(err_ba.max()), 1e-3, "nats")
    line("max certified gap (R_BA - R_discrete(D))", float(res.gap.max()), 1e-3, "nats")
    print(f"{'iterations per slope':<52s} {int(res.iterations.min())}..{int(res.iterations.max())} "
          f"(total {int(res.iterations.sum())}); D range {res.distortion.min():.3f}..{res.distortion.max():.3f}")


if __name__ == "__main__":
    main()
