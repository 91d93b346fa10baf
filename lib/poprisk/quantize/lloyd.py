"""The Lloyd family (chapters 7, 9): Hessian-weighted K-means, DRHW = Algorithm 1 (its joint farthest-pair
update), the authors' linear diameter rule, plain K-means, uniform levels; scalar and vector weights."""

from __future__ import annotations

import math

import numpy as np

from poprisk import checks
from poprisk.quantize.base import (_as_vector_problem, _as_weights, _assign_vec, _centers, _check_beta, _check_init,
                                   _check_iters, _check_k, _init_scalar, _is_vector, _nearest_upper, _pow2,
                                   _scalar_problem, _to_numpy, _weighted_quantiles, assign)

# --------------------------------------------------------------------------------- Lloyd and DRHW (Algorithm 1)

def _pair_solve_scalar(a1, b1, c1, a2, b2, c2, beta):
    """Joint update (37) of the farthest pair, with the empty-cluster rule of the module docstring."""
    if a1 > 0 and a2 > 0:
        det = a1 * a2 + beta * (a1 + a2)
        return ((a2 + beta) * b1 + beta * b2) / det, (beta * b1 + (a1 + beta) * b2) / det
    if a1 > 0:
        return (b1 + beta * c2) / (a1 + beta), c2
    if a2 > 0:
        return c1, (b2 + beta * c1) / (a2 + beta)
    return c1, c2


class _Prefix:
    """Exclusive prefix sums ``P[i] = Σ_{j<i} x_j`` (``0 ≤ i ≤ n``) read at a few indices at a time, accurate
    for short runs anywhere: float64 running sums within blocks of 1,024 values plus extended-precision
    (np.longdouble) sums of the blocks — a plain float64 cumsum would lose the digits of a small cluster late
    in the order, and an extended-precision cumsum of all n values costs ten times more."""

    B = 1024

    def __init__(self, x: np.ndarray):
        nb = x.size // self.B + 1  # room for the index n itself
        pad = np.zeros(nb * self.B)
        pad[:x.size] = x
        blocks = pad.reshape(nb, self.B)
        inner = np.cumsum(blocks, axis=1)
        self.local = (inner - blocks).reshape(-1)  # sums within the block, before the index
        self.base = np.concatenate([[0.0], np.cumsum(inner[:, -1], dtype=np.longdouble)])

    def runs(self, edges: np.ndarray) -> np.ndarray:
        """Σ of x over each run ``[edges[j], edges[j+1])``, float64."""
        at = self.base[edges // self.B] + self.local[edges]
        return (at[1:] - at[:-1]).astype(np.float64)


def _lloyd_scalar(w, h, centers, iters, beta, order=None):
    # Sorted once: each cluster is then a run [b_j, b_{j+1}) of the sorted weights, found by searching the K−1
    # mid-points (ties to the lower centre, as in assign), and its mass and moment are differences of prefix
    # sums (_Prefix). One step costs O(K log n) instead of O(n log K).
    n, k = w.size, centers.size
    order = np.argsort(w) if order is None else order
    ws, hs = w[order], h[order]
    mass_sum, moment_sum = _Prefix(hs), _Prefix(hs * ws)
    edges = np.empty(k + 1, np.int64)
    edges[0], edges[-1] = 0, n
    for _ in range(iters):
        edges[1:-1] = np.searchsorted(ws, 0.5 * centers[1:] + 0.5 * centers[:-1], side="right")
        mass, moment = mass_sum.runs(edges), moment_sum.runs(edges)
        # An empty cluster keeps its centre: it may be re-populated later and never produces NaN.
        new = np.where(mass > 0, moment / np.where(mass > 0, mass, 1.0), centers)
        if beta > 0 and k > 1:
            # centres are ascending, so the farthest pair is (first, last)
            new[0], new[-1] = _pair_solve_scalar(mass[0], moment[0], centers[0], mass[-1], moment[-1],
                                                 centers[-1], beta)
        new.sort()
        if np.array_equal(new, centers):
            break
        centers = new
    return centers, assign(w, centers)


def _farthest_pair(C: np.ndarray) -> tuple[int, int]:
    diff = C[:, None, :] - C[None, :, :]
    dist = np.einsum("abm,abm->ab", diff, diff)
    dist[np.tril_indices(C.shape[0])] = -1.0
    i, j = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return int(i), int(j)


def _pair_solve_vector(A1, B1, c1, A2, B2, c2, beta):
    """Joint update (37) in ℝ^m: ``[[A1+βI, −βI], [−βI, A2+βI]] [c1; c2] = [B1; B2]`` (SPD for β ≥ 0).
    ``A = None`` marks an empty cluster, whose centre is held fixed (module docstring)."""
    m = c1.size
    eye = np.eye(m)
    if A1 is not None and A2 is not None:
        system = np.block([[A1 + beta * eye, -beta * eye], [-beta * eye, A2 + beta * eye]])
        sol = np.linalg.solve(system, np.concatenate([B1, B2]))
        return sol[:m], sol[m:]
    if A1 is not None:
        return np.linalg.solve(A1 + beta * eye, B1 + beta * c2), c2
    if A2 is not None:
        return c1, np.linalg.solve(A2 + beta * eye, B2 + beta * c1)
    return c1, c2


def drhw_pair_update(A1, B1, A2, B2, beta: float):
    """The joint update (37) of Algorithm 1 for one pair of non-empty clusters: returns ``(c1, c2)``.

    Scalar: ``A = Σ_C h`` and ``B = Σ_C h w`` are numbers and the closed form
    ``c1 = ((a2+β) b1 + β b2) / det``, ``c2 = (β b1 + (a1+β) b2) / det``, ``det = a1 a2 + β (a1 + a2)`` is used.
    Vector: ``A = Σ_C H`` (m×m SPD) and ``B = Σ_C H w`` (m,), and the ``2m × 2m`` system
    ``[[A1+βI, −βI], [−βI, A2+βI]] [c1; c2] = [B1; B2]`` is solved. It is the exact minimiser of the two
    clusters' HW distortion plus ``β |c1 − c2|²`` (chapter 7).
    """
    beta = _check_beta(beta)
    A1, B1, A2, B2 = (_to_numpy(x, name) for x, name in ((A1, "A1"), (B1, "B1"), (A2, "A2"), (B2, "B2")))
    if A1.ndim == 0:
        a1, a2, b1, b2 = (float(x) if x.ndim == 0 else _scalar_expected(name)
                          for x, name in ((A1, "A1"), (A2, "A2"), (B1, "B1"), (B2, "B2")))
        if not (a1 > 0 and a2 > 0) or not all(map(math.isfinite, (a1, a2, b1, b2))):
            raise ValueError("A1 and A2 must be positive cluster masses (and B1, B2 finite)")
        # the update is invariant under scaling A, B and β together; scaled first, a1·a2 cannot overflow
        s = max(a1, a2, beta)
        return _pair_solve_scalar(a1 / s, b1 / s, 0.0, a2 / s, b2 / s, 0.0, beta / s)
    if not (np.isfinite(B1).all() and np.isfinite(B2).all()):
        raise ValueError("B1 and B2 must be finite")
    m = B1.shape[0] if B1.ndim == 1 else -1
    if m < 1 or A1.shape != (m, m) or A2.shape != (m, m) or B2.shape != (m,):
        raise ValueError(f"A1, A2 must be (m, m) and B1, B2 (m,) arrays, got {A1.shape}, {A2.shape}, "
                         f"{B1.shape}, {B2.shape}")
    for name, A in (("A1", A1), ("A2", A2)):
        if not np.isfinite(A).all() or not np.allclose(A, A.T) or np.linalg.eigvalsh(A)[0] <= 0:
            raise ValueError(f"{name} must be symmetric positive definite")
    return _pair_solve_vector(A1, B1, np.zeros(m), A2, B2, np.zeros(m), beta)


def _scalar_expected(name: str):
    raise ValueError(f"{name} must be a number like A1 (scalar weights), got an array")


def farthest_pair(centers) -> tuple[int, int]:
    """Indices ``(k1, k2)``, ``k1 < k2``, of the two centres farthest apart (Euclidean; first pair on ties)."""
    c = _centers(centers, min_k=2)
    if c.ndim == 1:
        c = c[:, None]
    return _farthest_pair(c)


def _lloyd_vector(W, H, C, iters, beta):
    d, m = W.shape
    k = C.shape[0]
    HW = np.einsum("dij,dj->di", H, W)
    Hf = H.reshape(d, m * m)
    for _ in range(iters):
        labels = _assign_vec(W, C)
        A = np.stack([np.bincount(labels, weights=Hf[:, e], minlength=k) for e in range(m * m)], 1)
        A = A.reshape(k, m, m)
        B = np.stack([np.bincount(labels, weights=HW[:, e], minlength=k) for e in range(m)], 1)
        full = np.bincount(labels, minlength=k) > 0
        new = C.copy()
        if full.any():
            new[full] = np.linalg.solve(A[full], B[full][..., None])[..., 0]
        if beta > 0 and k > 1:
            k1, k2 = _farthest_pair(C)
            new[k1], new[k2] = _pair_solve_vector(A[k1] if full[k1] else None, B[k1], C[k1],
                                                  A[k2] if full[k2] else None, B[k2], C[k2], beta)
        if np.array_equal(new, C):
            break
        C = new
    return C, _assign_vec(W, C)


def _init_vector(W, H, k, init, seed):
    d, m = W.shape
    if init == "random":
        uniq = np.unique(W, axis=0)
        rng = np.random.default_rng(seed)
        pick = uniq[rng.choice(uniq.shape[0], size=min(k, uniq.shape[0]), replace=False)]
        return np.concatenate([pick, np.repeat(pick[:1], k - pick.shape[0], axis=0)])
    if init == "authors":
        raise ValueError("init='authors' (plain quantiles) is defined for scalar weights only")
    # project on the principal axis of the (trace-)weighted cloud, then place centres along it
    weight = np.trace(H, axis1=1, axis2=2)
    mean = weight @ W / weight.sum()
    X = W - mean
    cov = (X * weight[:, None]).T @ X
    axis = np.linalg.eigh(cov)[1][:, -1]
    axis = axis * (1.0 if axis[np.argmax(np.abs(axis))] > 0 else -1.0)
    t = X @ axis
    if init == "linear":
        return mean + np.linspace(t.min(), t.max(), k)[:, None] * axis
    q = _weighted_quantiles(t, weight, (np.arange(k) + 0.5) / k)
    order = np.argsort(t, kind="stable")
    idx = np.clip(np.searchsorted(t[order], q), 0, d - 1)
    return W[order[idx]].copy()


def _run(w, h, k, beta, iters, init, seed):
    iters = _check_iters(iters)
    init = _check_init(init)
    seed = checks.seed(seed)
    if _is_vector(w):
        W, H = _as_vector_problem(w, h)
        k = _check_k(k, W.shape[0])
        # exact power-of-two rescaling (module docstring): β scales like H; the centres like w
        sw, sh = _pow2(float(np.abs(W).max())), _pow2(float(np.abs(H).max()), even=True)
        W, H = W * sw, H * sh
        C, labels = _lloyd_vector(W, H, _init_vector(W, H, k, init, seed), iters, beta * sh)
        return C / sw, labels
    w, h = _scalar_problem(w, h)
    k = _check_k(k, w.size)
    sw, sh = _pow2(float(np.abs(w).max())), _pow2(float(h.max()))
    w, h = w * sw, h * sh
    order = np.argsort(w)
    centers, labels = _lloyd_scalar(w, h, _init_scalar(w, h, k, init, seed, order), iters, beta * sh, order)
    return centers / sw, labels


def hw_kmeans(w, h, k: int, *, iters: int = 30, init: str = "quantile", seed: int = 0):
    """Hessian-weighted K-means by Lloyd's iteration, scalar or vector (``h=None`` gives plain K-means).

    Each of at most ``iters`` steps assigns every weight to the nearest centre (Euclidean — for scalar weights
    the same as the HW-nearest) and moves every non-empty centre to the HW mean of its cluster; it stops early at
    a fixed point. Scalar centres start from :func:`init_centers` and are kept ascending. Vector centres start
    from weighted quantiles along the principal axis (``"quantile"``), evenly spaced points on it
    (``"linear"``) or K distinct weights drawn with ``seed`` (``"random"``). A local optimum only — for scalar
    weights :func:`weighted_kmeans_1d` gives the global one. Returns ``(centers, labels)``.
    """
    return _run(w, h, k, 0.0, iters, init, seed)


def drhw_kmeans(w, h, k: int, beta: float, *, iters: int = 30, init: str = "quantile", seed: int = 0):
    """Diameter-regularized HW K-means: Algorithm 1 of :cite:`bu2021population`, scalar or vector.

    Each of at most ``iters`` steps: (36) assign every weight to the nearest centre in Euclidean distance;
    find the farthest pair ``(k1, k2)`` of the current centres (in 1-D the smallest and the largest); (37)
    update that pair jointly, ``c_1 = (A_1 + βI)^{-1}(B_1 + β c_2)`` and ``c_2 = (A_2 + βI)^{-1}(B_2 + β c_1)``
    solved as one ``2m × 2m`` system (``A = Σ_C H``, ``B = Σ_C H w``); (38) every other centre takes its HW
    mean. Stops early at a fixed point. Same initialisation as :func:`hw_kmeans`, and ``beta = 0`` returns
    exactly what :func:`hw_kmeans` returns. Empty clusters: see the module docstring. Returns
    ``(centers, labels)`` (scalar centres ascending).

    For fixed labels and a fixed pair, (37) is the exact minimiser of the HW distortion plus
    ``β |c_k1 − c_k2|²``, so that pair's distance shrinks as ``β`` grows. The whole iteration is a heuristic,
    though: in the vector case with ``K ≥ 3`` the farthest pair can alternate between iterations, and the run
    then ends after ``iters`` steps without a fixed point (chapter 7 shows it).
    """
    return _run(w, h, k, _check_beta(beta), iters, init, seed)


def drhw_linear(w, h, k: int, diameter_reg: float, *, iters: int = 30, init: str = "authors"):
    """The authors' diameter regularizer, as their released code runs it (scalar weights only).

    This is ``weighted_k_means_cpu(..., diameter_reg=λ)`` of github.com/wgao9/weight-quant
    (``utils/quantize_utils.py``), re-implemented from a reading of it; ``diameter_reg`` is their λ
    (``--diameter_reg``; their only script uses 30). Each of at most ``iters`` steps (they run 30):

    1. ``h`` has been divided by its mean (their importances are normalised to mean 1 per layer when they are
       computed, in ``retrain.py``; doing it here makes λ mean the same for any scale of ``h``);
    2. assign every weight to the nearest centre (ties to the upper centre, as their ``criteria < 0`` test);
    3. every non-empty cluster takes its HW mean ``Σ h w / Σ h``; an empty one keeps its centre;
    4. the two **end** centres are then shifted inwards by ``λ / (4 A)`` (``A = Σ_C h`` of that end cluster):
       ``c_min += λ/(4 A_min)``, ``c_max −= λ/(4 A_max)``, each clamped to stay ``1e-8`` short of its
       neighbour (an empty end cluster is put there directly; the ``1e-8`` is absolute, as in their code).

    The shift of step 4 is the exact minimiser, over that end centre alone, of the end cluster's HW distortion
    plus ``(λ/2)(c_max − c_min)``: a penalty **linear** in the diameter. It differs from Algorithm 1
    (:func:`drhw_kmeans`, ``drhw``) in three ways: the penalty is ``λ/2 · diameter``, not ``β · diameter²``; each
    end centre moves by a fixed amount ``λ/(4A)`` away from its own HW mean, whatever the other end does (no
    joint 2×2 solve, so the diameter can shrink by at most ``λ/(4A_min) + λ/(4A_max)``, and λ is in units of
    HW distortion per unit of weight); and the initialisation is the plain (not ``h``-weighted) quantiles
    (``init="authors"``; the other scalar inits of :func:`init_centers` may be asked for, ``"random"`` with seed
    0). ``diameter_reg = 0`` is HW K-means: :func:`hw_kmeans` with the same ``init`` (up to ties).

    As in their code the returned labels are those of the last assignment (step 2), computed before the last
    centre update; at a fixed point (the run stops early there) they are the nearest-centre labels of the
    returned centres. Returns ``(centers, labels)``, centres ascending. Used in chapter 9 beside ``drhw``.
    """
    w, h = _scalar_problem(w, h)
    k = _check_k(k, w.size)
    iters = _check_iters(iters)
    lam = _check_beta(diameter_reg, name="diameter_reg")
    init = _check_init(init)
    h = (h * _pow2(float(h.max()))) / np.mean(h * _pow2(float(h.max())))  # mean 1, without overflow
    centers = _init_scalar(w, h, k, init, 0)
    hw = h * w
    labels = _nearest_upper(w, centers)
    for _ in range(iters):
        labels = _nearest_upper(w, centers)
        mass = np.bincount(labels, weights=h, minlength=k)
        moment = np.bincount(labels, weights=hw, minlength=k)
        new = np.where(mass > 0, moment / np.where(mass > 0, mass, 1.0), centers)
        if lam > 0 and k > 1:
            new[0] = new[1] - 1e-8 if mass[0] == 0 else new[0] + lam / (4.0 * mass[0])
            if new[0] > new[1]:
                new[0] = new[1] - 1e-8
            new[-1] = new[-2] + 1e-8 if mass[-1] == 0 else new[-1] - lam / (4.0 * mass[-1])
            if new[-1] < new[-2]:
                new[-1] = new[-2] + 1e-8
        if np.array_equal(new, centers):
            break
        centers = new
    return centers, labels


def kmeans(w, k: int, *, iters: int = 30, init: str = "quantile", seed: int = 0):
    """Plain (unweighted) scalar K-means of the flattened ``w``: :func:`hw_kmeans` with ``h ≡ 1``."""
    return hw_kmeans(_as_weights(w), None, k, iters=iters, init=init, seed=seed)


def uniform_quantize(w, k: int):
    """``K`` evenly spaced levels: the cell mid-points ``min w + (i + ½)(max w − min w)/K`` of ``[min w, max w]``,
    each weight sent to the nearest level. Scalar only (``w`` is flattened). Returns ``(centers, labels)``."""
    w = _as_weights(w)
    k = _check_k(k)
    if k > max(w.size, 65_536):
        raise ValueError(f"k={k} levels for {w.size} weights: at most max(n, 65536) (more only add empty codes)")
    lo, hi = float(w.min()), float(w.max())
    centers = lo + (np.arange(k) + 0.5) * ((hi - lo) / k)
    return centers, assign(w, centers)

