"""The exact 1-D Hessian-weighted K-means optimum (chapter 7): the SMAWK DP (numba, :mod:`.kernels`), its
NumPy divide-and-conquer fallback, the Lagrangian/LWS search above 16 centres, and brute-force enumeration."""

from __future__ import annotations

import itertools
import math

import numpy as np

from poprisk import checks
from poprisk.quantize import kernels
from poprisk.quantize.base import BACKENDS, LAGRANGIAN_MIN_K, _check_k, _pow2, _scalar_problem

def _cost(j, i, Wc, S1, S2):
    s = S1[i] - S1[j]
    w = Wc[i] - Wc[j]
    # w ≤ 0: importances below the resolution of the prefix sum (see _nb_value)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.maximum((S2[i] - S2[j]) - np.where(w > 0, s * s / np.where(w > 0, w, 1.0), 0.0), 0.0)


def _dp_numpy(Wc, S1, S2, k, back):
    """The same dynamic program with vectorised divide-and-conquer row minima (``O(K n log n)``)."""
    u = Wc.size - 1
    idx = np.arange(1, u + 1)
    D = np.zeros(u + 1)
    D[1:] = _cost(np.zeros_like(idx), idx, Wc, S1, S2)
    for m in range(2, k + 1):
        r1 = u - (k - m)
        Dn = np.full(u + 1, np.inf)
        rlo, rhi = np.array([m]), np.array([r1])
        clo, chi = np.array([m - 1]), np.array([r1 - 1])
        while rlo.size:
            mid = (rlo + rhi) // 2
            jhi = np.minimum(chi, mid - 1)
            lens = jhi - clo + 1
            starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
            seg = np.repeat(np.arange(rlo.size), lens)
            j = clo[seg] + (np.arange(seg.size) - starts[seg])
            vals = D[j] + _cost(j, mid[seg], Wc, S1, S2)
            best = np.minimum.reduceat(vals, starts)
            hit = np.flatnonzero(vals == best[seg])
            first = hit[np.unique(seg[hit], return_index=True)[1]]
            opt = j[first]
            back[m - 1, mid] = opt
            Dn[mid] = best
            left, right = rlo <= mid - 1, mid + 1 <= rhi
            rlo, rhi, clo, chi = (np.concatenate([rlo[left], mid[right] + 1]),
                                  np.concatenate([mid[left] - 1, rhi[right]]),
                                  np.concatenate([clo[left], opt[right]]),
                                  np.concatenate([opt[left], chi[right]]))
        D = Dn
    return D[u]


def _lagrangian_bounds(Wc, S1, S2, k: int, max_steps: int = 100):
    """Run boundaries ``[0, …, u]`` of the exact K-cluster optimum by the Lagrangian search, or ``None``.

    Each step solves the LWS at a price λ (:func:`_nb_lws`) and gets the optimum's cost F and count c. Until
    λ is bracketed, the next price is the slope 2F c²/K³ of the model F(c) ≈ F·(c/K)⁻²; then the chord of the
    two bracketing lines (the λ where both counts are equally good, a cutting-plane step on the concave dual).
    ``None`` (the caller runs the DP) when a chord makes no progress — F is linear across K, so several counts
    tie and no price isolates exactly K — or after ``max_steps`` prices.
    """
    lws = kernels._KERNEL["lws"]
    u = Wc.size - 1
    A = np.stack([Wc, S1], axis=1)
    Eh, cnt, opt = np.empty(u + 1), np.empty(u + 1, np.int64), np.empty(u + 1, np.int64)
    cand, start = np.empty(u + 1, np.int64), np.empty(u + 1, np.int64)
    total = max(float(S2[u] - S1[u] ** 2 / Wc[u]), 0.0)
    if not total > 0:
        return None
    lo, hi = (0.0, 0.0, u), (math.inf, total, 1)  # (λ, F, c) with c > K and with c < K
    lam = max(2.0 * total / k**3, total * 1e-300)
    rule, last_gap = "model", u
    for _ in range(max_steps):
        e_u, c = lws(A, S2, lam, Eh, cnt, opt, cand, start)
        c = int(c)
        f = float(e_u) - lam * c
        if c == k:
            bounds = np.empty(k + 1, np.int64)
            bounds[k] = end = u
            for m in range(k, 0, -1):
                end = int(opt[end])
                bounds[m - 1] = end
            return bounds
        if c > k:
            lo = (lam, f, c)
        else:
            hi = (lam, f, c)
        # a step that halved the distance in counts earns another model step; otherwise the chord, then bisection
        gap = lo[2] - hi[2]
        rule = "model" if gap <= last_gap // 2 else {"model": "chord", "chord": "bisect"}.get(rule, "bisect")
        last_gap = gap
        if lo[0] > 0 and math.isfinite(hi[0]):
            chord = (hi[1] - lo[1]) / (lo[2] - hi[2])
            if not lo[0] < chord < hi[0]:  # F is linear across K: several counts tie at this price
                return None
            lam = chord if rule == "chord" else 0.5 * (lo[0] + hi[0])
            if rule == "model" and lo[1] > 0 and hi[1] > lo[1]:
                # the power law F(c) = A c^-p through both brackets, and its slope at K
                p = math.log(hi[1] / lo[1]) / math.log(lo[2] / hi[2])
                model = p * lo[1] * math.exp(p * math.log(lo[2]) - (p + 1) * math.log(k))
                lam = model if lo[0] < model < hi[0] else chord
        elif rule == "model":  # one side only: the slope of F(c) ≈ F·(c/K)^-2 from the last point
            new = 2.0 * max(f, 0.0) * c * c / k**3
            lam = new if (c > k and new > lam) or (c < k and 0 < new < lam) else (2.0 * lam if c > k else lam / 2)
        else:
            lam = 2.0 * lam if c > k else lam / 2
    return None


def weighted_kmeans_1d(w, h, k: int, *, backend: str = "auto"):
    """The exact global minimiser of ``Σ_j h_j (w_j − c_{label_j})²`` over ``K`` centres (scalar weights).

    Dynamic programming over the sorted distinct weights (optimal clusters are contiguous runs; chapter 7
    proves it), each layer's row minima by SMAWK. ``w`` is flattened; ``h=None`` means all ones.

    Rules: equal weights are merged first (their importances added), so equal weights always share a label
    and labels are non-decreasing in ``w``. Weights that are exactly zero (e.g. pruned ones) are ordinary
    values: they share one label, whose centre is in general not exactly 0 — quantize only the survivors to
    keep pruned weights at zero. If ``k`` is at least the number ``u`` of distinct weights the optimum is
    lossless and ``u`` centres (the distinct weights) are returned, i.e. fewer than ``k``. Otherwise exactly
    ``k`` distinct centres, each the HW mean of its (non-empty) cluster.

    ``backend``: ``"numba"`` (SMAWK, ``O(K n)`` after the sort, memory ``O(K n)`` int32 back-pointers),
    ``"numpy"`` (divide-and-conquer, ``O(K n log n)``), ``"lagrangian"`` (numba; a search over a price per
    cluster, each step an ``O(n log n)`` least-weight-subsequence solve, independent of K; memory ``O(n)``; it
    falls back to the DP where several cluster counts tie at the price of K) or ``"auto"``: numba's DP up to
    16 centres, the Lagrangian search above (:data:`LAGRANGIAN_MIN_K`), NumPy without numba. All give the
    optimal cost; where several partitions are optimal they may return different ones.
    Returns ``(centers, labels)``, centres ascending.
    """
    w, h = _scalar_problem(w, h)
    k = _check_k(k)
    if not isinstance(backend, str):
        raise TypeError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    x, inverse = np.unique(w, return_inverse=True)
    inverse = inverse.reshape(-1)
    u = x.size
    if k >= u:
        return x.copy(), inverse.astype(np.int64)
    kernel = None if backend == "numpy" else kernels._numba_dp()
    if backend in ("numba", "lagrangian") and kernel is None:
        raise ValueError(f"backend={backend!r} was asked for but numba is not installed")
    lagrangian = kernel is not None and (backend == "lagrangian" or (backend == "auto" and k >= LAGRANGIAN_MIN_K))
    # exact power-of-two rescaling (module docstring): no overflow of S1² or S2, no underflow of tiny h
    sx = _pow2(float(np.abs(x).max()))
    xs = x * sx
    a = np.bincount(inverse, weights=h * _pow2(float(h.max())), minlength=u)
    # prefix sums of the centred values (centring keeps the cancellation in S2 − S1²/W small)
    shift = float(a @ xs / a.sum())
    xc = xs - shift
    Wc = np.concatenate([[0.0], np.cumsum(a)])
    S1 = np.concatenate([[0.0], np.cumsum(a * xc)])
    S2 = np.concatenate([[0.0], np.cumsum(a * xc * xc)])
    bounds = _lagrangian_bounds(Wc, S1, S2, k) if lagrangian else None
    if bounds is None:  # the DP (also where ties in K leave the Lagrangian without an exactly-K optimum)
        back = np.zeros((k, u + 1), np.int32 if u < 2**31 - 1 else np.int64)
        if kernel is not None:
            kernel(np.stack([Wc, S1, S2], axis=1), S2, k, back)
        else:
            _dp_numpy(Wc, S1, S2, k, back)
        # walk the back-pointers: cluster m-1 is the run [start, end) of sorted distinct values
        bounds = np.empty(k + 1, np.int64)
        bounds[k] = u
        end = u
        for m in range(k, 0, -1):
            end = int(back[m - 1, end]) if m > 1 else 0
            bounds[m - 1] = end
    starts = bounds[:-1]
    mass = np.add.reduceat(a, starts)
    moment = np.add.reduceat(a * xs, starts)
    # a run of importances that all underflowed (span beyond the float range) takes its plain mean
    plain = np.add.reduceat(xs, starts) / np.diff(bounds)
    centers = np.where(mass > 0, moment / np.where(mass > 0, mass, 1.0), plain) / sx
    run_label = np.repeat(np.arange(k), np.diff(bounds))
    return centers, run_label[inverse].astype(np.int64)


def brute_force_kmeans(w, h, k: int, *, contiguous: bool = True):
    """Reference optimum by enumeration, for tiny problems (tests and chapter 7).

    ``contiguous=True`` tries every split of the sorted weights into ``k`` non-empty runs (``C(n−1, k−1)``
    partitions); ``contiguous=False`` tries every labelling in ``{0..k−1}^n`` (no contiguity assumed), so it
    checks the theorem that the contiguous optimum is the optimum. Returns the optimal distortion (float).
    """
    w, h = _scalar_problem(w, h)
    k = _check_k(k, w.size)
    contiguous = checks.boolean(contiguous, "contiguous")
    n = w.size
    total = math.comb(n - 1, k - 1) if contiguous else k ** n
    if total > 2_000_000:
        raise ValueError(f"w is too large to enumerate ({total} partitions); use weighted_kmeans_1d")
    order = np.argsort(w, kind="stable")
    ws, hs = w[order], h[order]
    if contiguous:
        best = math.inf
        for cuts in itertools.combinations(range(1, n), k - 1):
            b = (0, *cuts, n)
            val = 0.0
            for s, e in zip(b[:-1], b[1:]):
                c = hs[s:e] @ ws[s:e] / hs[s:e].sum()
                val += float(hs[s:e] @ (ws[s:e] - c) ** 2)
            best = min(best, val)
        return best
    labels = np.array(list(itertools.product(range(k), repeat=n)), dtype=np.int64)  # (k^n, n)
    onehot = labels[:, :, None] == np.arange(k)  # (P, n, k)
    a = np.einsum("pnk,n->pk", onehot, hs)
    b = np.einsum("pnk,n->pk", onehot, hs * ws)
    with np.errstate(invalid="ignore", divide="ignore"):
        explained = np.where(a > 0, b * b / np.where(a > 0, a, 1.0), 0.0).sum(1)
    return float(max(hs @ ws**2 - explained.max(), 0.0))

