"""The numba kernels of the exact 1-D optimum (chapter 7): the SMAWK dynamic programme and the least-weight
subsequence of the Lagrangian search, compiled on first use and cached on disk."""

from __future__ import annotations

import numpy as np

# The O(K n) SMAWK kernel, compiled with numba on the first call of weighted_kmeans_1d (so that importing this
# module stays cheap) and cached on disk; without numba the NumPy divide-and-conquer below is used.
# A[t] = (Σh, Σhx, E(t)) over the first t sorted points, with E(t) = D_{m-1}(t) − Σhx² (one row per
# prefix: one value touches at most two cache lines). The layer's value of "cluster j..i-1 after m-1
# clusters on the first j points", minus the row constant Σ_{<i} hx², is E(j) − (ΔΣhx)²/ΔΣh.

def _nb_value(i, j, A):
    if j >= i:  # empty cluster
        return np.inf
    w = A[i, 0] - A[j, 0]
    if w <= 0.0:  # a run whose importances are below the resolution of the prefix sum: it costs nothing
        return A[j, 2]
    s = A[i, 1] - A[j, 1]
    return A[j, 2] - s * s / w

def _nb_less(i, j, bound, A):
    # _nb_value(i, j, A) < bound without a division (the mass difference is positive)
    if j >= i:
        return False
    w = A[i, 0] - A[j, 0]
    if w <= 0.0:
        return A[j, 2] < bound
    s = A[i, 1] - A[j, 1]
    return A[j, 2] * w - s * s < bound * w

def _nb_smawk(r0, nrows, c0, ncols, A, res, resv, colbuf, sv, offs, lens):
    # Row minima of the totally monotone matrix _nb_value(r0 + t, c0 + s): res[t] = argmin column,
    # resv[t] = the minimum. Iterative SMAWK: level L holds rows r0 + 2^L - 1 + t 2^L; REDUCE walks down
    # the levels, INTERPOLATE walks back up (each row is interpolated at exactly one level).
    level = 0
    off = 0
    while (nrows >> level) > 0:
        nr = nrows >> level
        step = 1 << level
        first = r0 + step - 1
        n_in = ncols if level == 0 else lens[level - 1]
        if n_in <= 32 * nr:
            # REDUCE only has to bring the columns down to O(rows); skipping it while there are at most 32
            # columns per row keeps the layer O(n) and is faster in practice (its pops are branchy)
            if level == 0:
                for q in range(n_in):
                    colbuf[off + q] = c0 + q
                offs[0] = off
                off += n_in
            else:
                offs[level] = offs[level - 1]
            lens[level] = n_in
            level += 1
            continue
        top = 0
        for q in range(n_in):
            col = c0 + q if level == 0 else colbuf[offs[level - 1] + q]
            while top > 0:
                if _nb_less(first + (top - 1) * step, col, sv[top - 1], A):
                    top -= 1
                else:
                    break
            if top < nr:
                colbuf[off + top] = col
                sv[top] = _nb_value(first + top * step, col, A)
                top += 1
        offs[level] = off
        lens[level] = top
        off += top
        level += 1
    for lev in range(level - 1, -1, -1):
        nr = nrows >> lev
        step = 1 << lev
        first = r0 + step - 1
        base = offs[lev]
        ncol = lens[lev]
        ci = 0
        for t in range(0, nr, 2):
            row = first + t * step
            if t + 1 < nr:
                cend = res[first + (t + 1) * step - r0]
            else:
                cend = colbuf[base + ncol - 1]
            best = colbuf[base + ci]
            bv = _nb_value(row, best, A)
            while ci < ncol - 1 and colbuf[base + ci] < cend:
                ci += 1
                if _nb_less(row, colbuf[base + ci], bv, A):
                    best = colbuf[base + ci]
                    bv = _nb_value(row, best, A)
            res[row - r0] = best
            resv[row - r0] = bv


def _nb_dp(A, S2, k, back):
    # A[:, 2] holds S2 on entry; E_1(i) = D_1(i) − S2(i) = −S1(i)²/W(i)
    u = A.shape[0] - 1
    A[0, 2] = 0.0
    for i in range(1, u + 1):
        A[i, 2] = -A[i, 1] * A[i, 1] / A[i, 0] if A[i, 0] > 0.0 else 0.0
    res = np.empty(u + 1, np.int64)
    resv = np.empty(u + 1)
    colbuf = np.empty(2 * (u + 2), np.int64)
    sv = np.empty(u + 2)
    offs = np.empty(64, np.int64)
    lens = np.empty(64, np.int64)
    for m in range(2, k + 1):
        r0 = m
        r1 = u - (k - m)
        c0 = m - 1
        _nb_smawk(r0, r1 - r0 + 1, c0, r1 - c0, A, res, resv, colbuf, sv, offs, lens)
        for t in range(r1 - r0 + 1):
            back[m - 1, r0 + t] = res[t]
            A[r0 + t, 2] = resv[t]
    return A[u, 2] + S2[u]




# The Lagrangian ("WQS", "alien's trick") route for large K :cite:`gronlund2017fast`: the optimal cost F(K) is
# convex in K, so for a price λ per cluster the unconstrained problem min_partitions F + λ·#clusters — a
# least-weight subsequence (LWS) over the prefixes, whose cost is concave Monge — has an optimum with exactly K
# clusters for λ between the slopes of F at K; that optimum is the K-cluster optimum. Each LWS solve keeps a
# queue of candidate split points (decision monotonicity: a later candidate, once better, stays better) and
# finds where a new candidate overtakes by binary search: O(u log u) per λ, independent of K.

def _nb_beats(i, l, p, A, Eh, cnt):
    # split point i gives prefix p a smaller value than split point l (ties: fewer clusters); the values are
    # formed as in _nb_value (a product form without the division would lose digits to cancellation)
    wi = A[p, 0] - A[i, 0]
    wl = A[p, 0] - A[l, 0]
    si = A[p, 1] - A[i, 1]
    sl = A[p, 1] - A[l, 1]
    vi = Eh[i] - (si * si / wi if wi > 0.0 else 0.0)  # a run below the resolution of the sums costs nothing
    vl = Eh[l] - (sl * sl / wl if wl > 0.0 else 0.0)
    return vi < vl or (vi == vl and cnt[i] < cnt[l])


def _nb_lws(A, S2, lam, Eh, cnt, opt, cand, start):
    # Eh[i] = E(i) − S2(i), E(i) = min_j E(j) + cost(j, i) + λ over the first i points; returns (E(u), #clusters)
    u = A.shape[0] - 1
    Eh[0] = 0.0
    cnt[0] = 0
    head = 0
    tail = 1
    cand[0] = 0
    start[0] = 1
    for i in range(1, u + 1):
        while tail - head >= 2 and start[head + 1] <= i:
            head += 1
        j = cand[head]
        w = A[i, 0] - A[j, 0]
        s = A[i, 1] - A[j, 1]
        Eh[i] = Eh[j] - (s * s / w if w > 0.0 else 0.0) + lam
        cnt[i] = cnt[j] + 1
        opt[i] = j
        if i == u:
            break
        # candidate i serves prefixes p > i: drop the queued candidates it beats where their range begins
        while tail > head:
            p = start[tail - 1]
            if p <= i:
                p = i + 1
            if _nb_beats(i, cand[tail - 1], p, A, Eh, cnt):
                tail -= 1
            else:
                break
        if tail == head:
            cand[tail] = i
            start[tail] = i + 1
            tail += 1
            continue
        last = cand[tail - 1]
        if not _nb_beats(i, last, u, A, Eh, cnt):
            continue
        lo = start[tail - 1]
        if lo <= i:
            lo = i + 1
        # gallop from lo (the crossing is usually about one cluster ahead), then bisect the last gap
        hi = u
        step = 64
        while lo + step < u:
            if _nb_beats(i, last, lo + step, A, Eh, cnt):
                hi = lo + step
                break
            lo += step
            step *= 2
        while hi - lo > 1:
            mid = (lo + hi) >> 1
            if _nb_beats(i, last, mid, A, Eh, cnt):
                hi = mid
            else:
                lo = mid
        cand[tail] = i
        start[tail] = hi
        tail += 1
    return Eh[u] + S2[u], cnt[u]


_NB_PYTHON = {"_nb_value": _nb_value, "_nb_less": _nb_less, "_nb_smawk": _nb_smawk, "_nb_dp": _nb_dp,
              "_nb_beats": _nb_beats, "_nb_lws": _nb_lws}
_INLINE = ("_nb_value", "_nb_less", "_nb_beats")
_KERNEL: dict = {}


def _numba_dp():
    """The compiled :func:`_nb_dp`, or ``None`` when numba is not installed.

    ``cache=True`` keeps the machine code on disk, so a later process loads it instead of compiling (~1.4 s);
    where numba finds no writable cache directory it refuses ``cache=True``, and the kernel is then compiled
    without a cache, quietly, once per process."""
    if "dp" not in _KERNEL:
        try:
            import numba
        except ImportError:  # pragma: no cover - exercised only where numba is absent
            _KERNEL["dp"] = None
            return None

        def jit(fn, **kw):
            try:
                return numba.njit(cache=True, nogil=True, **kw)(fn)
            except RuntimeError:  # "cannot cache function ...: no locator available"
                return numba.njit(nogil=True, **kw)(fn)

        # the callees must be dispatchers (module globals) by the time their callers compile
        g = globals()
        for name, fn in _NB_PYTHON.items():
            g[name] = jit(fn, inline="always") if name in _INLINE else jit(fn)
        _KERNEL["dp"] = g["_nb_dp"]
        _KERNEL["lws"] = g["_nb_lws"]
    return _KERNEL["dp"]

