"""Exact weighted 1-D K-means (poprisk.quantize.weighted_kmeans_1d) against the anchors of issue 5.

Side by side in one run, for n ∈ {1e4, 1e5, 1e6} weights and K ∈ {4, 32, 256} centres:

* ``ckwrap`` (the C++ Ckmeans.1d.dp exact solver, ``method="linear"``; benchmark-only dependency),
* scikit-learn ``KMeans(sample_weight=h)`` (k-means++ init, one run, its default stopping rule),
* ``poprisk.quantize.hw_kmeans`` (Lloyd, quantile init, 30 iterations: the authors' protocol),

each reported as its CPU time relative to ours (``t/t_dp``: above 1 means we are faster) and its
Hessian-weighted distortion relative to the exact optimum (``excess`` = D/D_opt − 1; ckwrap's should be 0 to
1e-9). Everything runs on one thread (``OMP_NUM_THREADS=1`` is set before numpy is imported) and times are
``time.process_time`` CPU seconds, which stay meaningful on a machine shared with other jobs.

The weights are Laplace-distributed (scale 0.05: peaked at zero with heavier-than-Gaussian tails, like a trained
layer's) and the importances log-normal (σ = 1, skewed like Hessian diagonals), both from a fixed seed. Note
that Lloyd's excess grows quickly with K: 30 steps from quantile centres are far from converged for K ≥ 32. Usage::

    python bench/kmeans1d.py            # the full grid (about 2-3 minutes on one core)
    python bench/kmeans1d.py --quick    # n up to 1e5 only
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from poprisk import quantize  # noqa: E402
from timing import best_of  # noqa: E402

SIZES = (10_000, 100_000, 1_000_000)
KS = (4, 32, 256)
SKLEARN_MAX_WORK = 40_000_000  # n·K above which sklearn's KMeans is skipped (it would take minutes)
TARGETS = {(1_000_000, 32): 2.0, (100_000, 256): 1.5}  # seconds, issue 5


def _timed(fn, repeat):
    return best_of(fn, repeat, clock=time.process_time)


def _objective(w, h, labels, k):
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    mass = np.bincount(labels, weights=h, minlength=k)
    centers = np.bincount(labels, weights=h * w, minlength=k) / np.where(mass > 0, mass, 1.0)
    return quantize.distortion(w, h, centers, labels)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="only n <= 1e5")
    args = parser.parse_args(argv)
    try:
        import ckwrap
    except ImportError:
        ckwrap = None
        print("ckwrap is not installed (pip install ckwrap==1.2.3): its columns are skipped")
    from sklearn.cluster import KMeans

    rng = np.random.default_rng(0)
    quantize.weighted_kmeans_1d(rng.normal(size=100), None, 3)  # load the compiled kernel before timing
    sizes = [n for n in SIZES if not (args.quick and n > 100_000)]
    print(f"weighted 1-D K-means, CPU seconds on one thread; numba kernel: {quantize._numba is not None}")
    head = (f"{'n':>9} {'K':>4} | {'t_dp [s]':>8} | {'ckwrap t/t_dp':>13} {'excess':>9} | "
            f"{'sklearn t/t_dp':>14} {'excess':>8} | {'Lloyd t/t_dp':>12} {'excess':>8}")
    print(head)
    print("-" * len(head))
    skipped, misses = [], []
    total = time.perf_counter()
    for n in sizes:
        w = rng.laplace(0.0, 0.05, size=n)
        h = rng.lognormal(0.0, 1.0, size=n)
        repeat = 2 if n <= 100_000 else 1
        for k in KS:
            t_dp, (c, lab) = _timed(lambda: quantize.weighted_kmeans_1d(w, h, k), repeat)
            d_opt = quantize.distortion(w, h, c, lab)
            cols = []
            if ckwrap is not None:
                t, res = _timed(lambda: ckwrap.ckmeans(w, k, weights=h, method="linear"), repeat)
                cols.append(f"{t / t_dp:13.2f} {_objective(w, h, res.labels, k) / d_opt - 1:9.1e}")
            else:
                cols.append(f"{'—':>13} {'—':>9}")
            if n * k <= SKLEARN_MAX_WORK:
                km = KMeans(n_clusters=k, n_init=1, random_state=0)
                t, fit = _timed(lambda: km.fit(w[:, None], sample_weight=h), 1)
                cols.append(f"{t / t_dp:14.2f} {_objective(w, h, fit.labels_, k) / d_opt - 1:8.2%}")
            else:
                cols.append(f"{'skipped':>14} {'—':>8}")
                skipped.append((n, k))
            t, (cl, ll) = _timed(lambda: quantize.hw_kmeans(w, h, k), repeat)
            cols.append(f"{t / t_dp:12.2f} {quantize.distortion(w, h, cl, ll) / d_opt - 1:8.2%}")
            print(f"{n:>9} {k:>4} | {t_dp:8.3f} | " + " | ".join(cols), flush=True)
            if (n, k) in TARGETS and t_dp > TARGETS[n, k]:
                misses.append(f"n={n}, K={k}: {t_dp:.2f} s > {TARGETS[n, k]} s")
    print("-" * len(head))
    if skipped:
        print("sklearn KMeans skipped at " + ", ".join(f"n={n}, K={k}" for n, k in skipped)
              + f" (n·K > {SKLEARN_MAX_WORK:.0e}: minutes per fit on one core)")
    for (n, k), limit in TARGETS.items():
        if n in sizes:
            print(f"target n={n}, K={k}: exact DP under {limit} s on one core")
    print("targets met" if not misses else "targets MISSED: " + "; ".join(misses))
    print(f"total wall time {time.perf_counter() - total:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
