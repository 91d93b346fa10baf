"""The experiments of chapter 7 (HW K-means, its exact 1-D optimum and DRHW), as functions.

Each function runs one of the chapter's checks or sweeps and returns the numbers its cell prints; the cells keep
the asserts. Randomness comes from the seed or generator passed in, so a cell reproduces its outputs exactly.
"""

import numpy as np

from poprisk.quantize.coding import diameter, distortion
from poprisk.quantize.exact import brute_force_kmeans, weighted_kmeans_1d
from poprisk.quantize.lloyd import drhw_kmeans, drhw_pair_update, farthest_pair, hw_kmeans, kmeans

__all__ = ["drhw_centre_path", "drhw_diameter_trace", "drhw_pair_closed_form", "drhw_sweep", "dp_random_checks",
           "labelling_distortion", "linear_layer_arrays", "solver_excess_rows", "worst_pair_distance_increase",
           "zero_curvature_shares"]


def _run_cost(ws, hs, i, j):
    """HW within-cluster cost of the sorted run ``ws[i:j]`` (0 for an empty run)."""
    if j <= i:
        return 0.0
    return float(hs[i:j] @ (ws[i:j] - hs[i:j] @ ws[i:j] / hs[i:j].sum()) ** 2)


def dp_random_checks(n_trials=300, seed=7):
    """Chapter 7's checks of the exact 1-D optimum on random small problems.

    For each problem (n in 2..8 weights rounded to one decimal so duplicates occur, K in 1..4, importances
    Gamma(1)+0.05): the gap ``|D(DP) - D(enumeration of all K^n labellings)|``, whether the DP labels are
    non-decreasing in ``w``, and whether the run cost violates the quadrangle inequality
    ``cost(a,c) + cost(b,d) <= cost(a,d) + cost(b,c)`` at random ``a <= b <= c <= d``.
    Returns ``(largest gap, all labellings monotone, number of violations)``.
    """
    rng = np.random.default_rng(seed)
    gaps, monotone, violations = [], True, 0
    for _ in range(n_trials):
        n, k = int(rng.integers(2, 9)), int(rng.integers(1, 5))
        w = np.round(rng.normal(size=n), 1)
        h = rng.gamma(1.0, size=n) + 0.05
        k = min(k, n)
        c, lab = weighted_kmeans_1d(w, h, k)
        exact = 0.0 if k >= np.unique(w).size else brute_force_kmeans(w, h, k, contiguous=False)
        gaps.append(abs(distortion(w, h, c, lab) - exact))
        order = np.argsort(w, kind="stable")
        monotone &= bool(np.all(np.diff(lab[order]) >= 0))
        ws, hs = w[order], h[order]
        a, b, cc, d = np.sort(rng.integers(0, n + 1, size=4))
        violations += (_run_cost(ws, hs, a, cc) + _run_cost(ws, hs, b, d)
                       > _run_cost(ws, hs, a, d) + _run_cost(ws, hs, b, cc) + 1e-12)
    return max(gaps), monotone, int(violations)


def linear_layer_arrays(net, importances):
    """``{name: (w, h)}`` for every ``nn.Linear`` of ``net``: flat float64 weights and their importances
    (chapter 7 quantizes each layer of the MLP separately)."""
    from torch import nn

    return {name: (m.weight.detach().double().cpu().numpy().ravel(),
                   importances[name].double().cpu().numpy().ravel())
            for name, m in net.named_modules() if isinstance(m, nn.Linear)}


def zero_curvature_shares(layers, h_raw):
    """Rows ``(layer, number of weights, share of entries of h_raw that are exactly 0)`` (chapter 7: the GGN
    diagonal of a ReLU net is exactly zero on dead units, hence the positive floor)."""
    return [(name, w.size, (h_raw[name] == 0).float().mean().item()) for name, (w, _) in layers.items()]


def labelling_distortion(w, h, labels, k):
    """HW distortion of a given labelling with each centre at the HW mean ``Σ h w / Σ h`` of its cluster
    (chapter 7 scores sklearn's weighted K-means this way; an empty cluster gets centre 0)."""
    labels = np.asarray(labels, dtype=np.int64)
    mass = np.bincount(labels, weights=h, minlength=k)
    sums = np.bincount(labels, weights=h * w, minlength=k)
    return distortion(w, h, sums / np.where(mass > 0, mass, 1.0), labels)


def solver_excess_rows(layers, ks):
    """Chapter 7's solver comparison: per layer and K, the exact optimum ``D*`` and the relative excess
    ``D/D* - 1`` of Lloyd HW K-means, sklearn's weighted K-means (one init, seed 0) and plain K-means."""
    from sklearn.cluster import KMeans

    rows = []
    for name, (w, h) in layers.items():
        for k in ks:
            d_opt = distortion(w, h, *weighted_kmeans_1d(w, h, k))
            fit = KMeans(n_clusters=k, n_init=1, random_state=0).fit(w[:, None], sample_weight=h)
            rows.append({"layer": name, "K": k, "D* (exact)": d_opt,
                         "Lloyd HW": distortion(w, h, *hw_kmeans(w, h, k)) / d_opt - 1,
                         "sklearn": labelling_distortion(w, h, fit.labels_, k) / d_opt - 1,
                         "plain K-means": distortion(w, h, *kmeans(w, k)) / d_opt - 1})
    return rows


def drhw_pair_closed_form(a1, b1, a2, b2, beta):
    """Chapter 7's closed form of the scalar DRHW pair update: with ``det = a1 a2 + β (a1 + a2)``,
    ``c1 = ((a2 + β) b1 + β b2) / det`` and ``c2 = (β b1 + (a1 + β) b2) / det``."""
    det = a1 * a2 + beta * (a1 + a2)
    return ((a2 + beta) * b1 + beta * b2) / det, (beta * b1 + (a1 + beta) * b2) / det


def worst_pair_distance_increase(rng, n_trials=200):
    """Largest increase of ``||c1 - c2||`` between neighbouring β of a log grid (1e-3..1e3, 13 points) over
    ``n_trials`` random vector pairs (SPD ``A`` in 1..3 dimensions, ``B ~ 3 N(0, I)``); chapter 7 claims the
    DRHW pair distance is non-increasing in β, i.e. the result is <= 0 up to rounding."""
    worst = -np.inf
    for _ in range(n_trials):
        m = int(rng.integers(1, 4))
        L = rng.normal(size=(2, m, m))
        A = L @ L.transpose(0, 2, 1) + 0.1 * np.eye(m)
        B = rng.normal(size=(2, m)) * 3
        dist = [np.linalg.norm(np.subtract(*drhw_pair_update(A[0], B[0], A[1], B[1], beta)))
                for beta in np.geomspace(1e-3, 1e3, 13)]
        worst = max(worst, np.max(np.diff(dist)))
    return worst


def drhw_sweep(w, h, k, gammas, iters=30):
    """DRHW on one layer along ``β = γ Σh / K`` (chapter 7's γ sweep). Returns the centres (one row per γ),
    their diameters, the HW distortions, and how many runs sat at a fixed point (one more iteration changes
    nothing)."""
    centres, diameters, distortions, settled = [], [], [], 0
    for g in gammas:
        beta = g * h.sum() / k
        c, lab = drhw_kmeans(w, h, k, beta, iters=iters)
        centres.append(c)
        diameters.append(diameter(c))
        distortions.append(distortion(w, h, c, lab))
        settled += np.array_equal(c, drhw_kmeans(w, h, k, beta, iters=iters + 1)[0])
    return np.array(centres), np.array(diameters), np.array(distortions), int(settled)


def drhw_centre_path(W, H, k, betas):
    """Centres of vector DRHW for each β (array ``len(betas) × k × m``): the path chapter 7 draws."""
    return np.array([drhw_kmeans(W, H, k, beta)[0] for beta in betas])


def drhw_diameter_trace(W, H, k, beta, n_iters=40):
    """Codebook diameter and farthest pair after ``t = 1..n_iters`` iterations of Algorithm 1 (chapter 7)."""
    runs = [drhw_kmeans(W, H, k, beta, iters=t)[0] for t in range(1, n_iters + 1)]
    return [diameter(c) for c in runs], [farthest_pair(c) for c in runs]
