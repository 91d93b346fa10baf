"""Weight sharing: uniform, (Hessian-weighted) K-means, the exact 1-D optimum and DRHW (chapters 1, 3, 7, 9).

A layer's weights ``w_1..w_n`` are replaced by ``K`` shared values (the *codebook* or centres ``c``) and a label
per weight. Hessian-weighted (HW) K-means :cite:`choi2017towards` chooses them to minimise the quadratic model
of the loss increase (chapter 5)

.. math:: D(c, \\ell) = \\sum_j (w_j - c_{\\ell_j})^\\top H_j (w_j - c_{\\ell_j}),

with importances ``H_j`` — positive scalars ``h_j`` for scalar weights (a Hessian-diagonal estimate; ``h ≡ 1`` is
plain K-means) or symmetric positive definite ``m×m`` blocks for vector weights ``w_j ∈ ℝ^m``.

What is here
------------
* :func:`hw_kmeans` — Lloyd's iteration: nearest-centre assignment, then the HW-mean update
  ``c_k = (Σ_{C_k} H_j)^{-1} Σ_{C_k} H_j w_j`` (scalar: ``Σ h w / Σ h``). A local optimum. Scalar weights are
  sorted once, so a step costs ``O(K log n)`` (prefix sums over runs of the sorted weights).
* :func:`weighted_kmeans_1d` — the **exact** global optimum for scalar weights. Because every optimal cluster is
  a run of consecutive sorted weights (chapter 7 proves it), the optimum is a shortest path through
  ``K`` layers of prefix costs, ``D_m(i) = min_j D_{m-1}(j) + cost(j, i)`` :cite:`wang2011ckmeans`. The cost
  matrix is Monge, so each layer's row minima are found by SMAWK in ``O(n)`` :cite:`gronlund2017fast`: total
  ``O(n log n + K n)`` time (the sort dominates) and ``O(K n)`` memory for the back-pointers (int32).
  The kernel is compiled with numba when it is installed, else a vectorised NumPy divide-and-conquer
  (``O(K n log n)``, same result) is used. Above 16 centres the Lagrangian search replaces the DP: the optimal
  cost is convex in K, so a price per cluster turns the problem into a least-weight subsequence, ``O(n log n)``
  per price whatever K, with the DP as the fallback where cluster counts tie.
* :func:`drhw_kmeans` — Algorithm 1 of :cite:`bu2021population` (diameter-regularized HW K-means), scalar and
  vector: Euclidean assignment; the farthest pair of current centres ``(k1, k2)`` is updated jointly by
  ``(A_1 + βI) c_1 − β c_2 = B_1``, ``−β c_1 + (A_2 + βI) c_2 = B_2`` (``A = Σ_C H``, ``B = Σ_C H w``); every
  other centre takes its HW mean. ``beta = 0`` is :func:`hw_kmeans`. :func:`drhw_pair_update` (the joint
  update alone) and :func:`farthest_pair` expose its two building blocks.
* :func:`drhw_linear` — the authors' released diameter regularizer (github.com/wgao9/weight-quant): HW K-means
  whose two end centres are moved inwards by ``λ/(4A)``, a penalty linear in the diameter (chapter 9).
* :func:`brute_force_kmeans` — the optimum by enumeration, for tiny problems (the reference of the tests).
* :func:`uniform_quantize` — ``K`` evenly spaced levels (cell mid-points of ``[min w, max w]``).
* :func:`distortion`, :func:`diameter`, :func:`label_entropy_bits`, :func:`entropy_coded_bits` and
  :func:`quantize_model` (every Linear/Conv weight of a model, per layer, biases untouched), with the
  quantizers registered by name in :data:`METHODS`; :func:`check_importances` validates a ``{layer: h}`` dict.

Conventions shared by every quantizer
-------------------------------------
* It returns ``(centers, labels)``: ``centers`` a float64 array (``(K,)`` ascending for scalar weights,
  ``(K, m)`` for vector weights) and ``labels`` int64 indices into it; ``centers[labels]`` is the quantized
  weight, so the output uses exactly the codebook values.
* Shapes: a 1-D ``w`` is scalar weights with ``h`` of shape ``(n,)`` (``None``: all ones); a 2-D ``w`` of shape
  ``(d, m)`` is the vector case with ``h`` of shape ``(d, m, m)`` (SPD blocks), ``(d, m)`` (diagonal blocks) or
  ``None`` (identity). :func:`kmeans`, :func:`weighted_kmeans_1d` and :func:`uniform_quantize` are scalar-only
  and flatten any input.
* Empty clusters (Lloyd and DRHW): an empty cluster keeps its previous centre, so no NaN can appear; if it is
  a member of DRHW's farthest pair it is held fixed and its partner solves its half of the joint system,
  ``(A_2 + βI) c_2 = B_2 + β c_1`` (for ``β = 0`` that is the HW mean, as in :func:`hw_kmeans`).
* Scale: every problem here is invariant to multiplying ``h`` by a constant (and ``w`` and the centres by
  another; DRHW's ``beta`` scales with ``h``), so each quantizer first rescales ``h`` and ``w`` by powers of two
  (exact in floating point: results are bit-for-bit those of the unscaled problem wherever that one does not
  overflow or underflow) — importances of 1e-200 or 1e160, or spanning 17 orders of magnitude, give the same
  answers as importances near 1.
* Bad input raises, before any work, ``TypeError`` for a wrong kind of value (a string, ``None``, a bool where a
  number is expected, a ragged list, a complex or boolean array) and ``ValueError`` for a wrong value —
  mismatched shapes (a per-weight ``h`` must have ``w``'s shape, or be its flat ``(n,)`` form: a transposed
  ``h`` of the same size is refused), non-positive or non-finite ``h``, non-finite ``w`` or centres, ``k < 1``,
  ``beta < 0``, a negative seed, a block of ``h`` that is not symmetric positive definite — each naming the
  argument. :func:`check_importances` is the same check for a whole model's ``{layer: h}`` dict.
* Seeds are non-negative integers (``None`` is refused: every random draw of the book is reproducible).
* ``import poprisk.quantize`` imports neither torch nor numba: torch is imported by :func:`quantize_model` and
  :func:`check_importances`, numba (whose compiled kernel is cached on disk, or recompiled quietly where no cache
  directory is writable) on the first call of :func:`weighted_kmeans_1d`.
"""

from __future__ import annotations

import copy
import itertools
import math
from dataclasses import dataclass

import numpy as np

from poprisk import checks

INITS = ("quantile", "linear", "random", "authors")
BACKENDS = ("auto", "numba", "numpy", "lagrangian")
LAGRANGIAN_MIN_K = 17  # "auto" switches from the O(K n) DP to the Lagrangian search above 16 centres


# ----------------------------------------------------------------------------------------------- validation

def _to_numpy(x, name: str, kinds: str = "iuf") -> np.ndarray:
    """``x`` (array-like or tensor, on any device) as a NumPy array whose dtype kind is in ``kinds``; floats and
    integers come back as float64. Anything else — ``None``, strings, bools, dicts, ragged lists, complex or
    boolean arrays — is a ``TypeError`` naming ``name``."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor, without importing torch
        t = x.detach().cpu()
        try:
            x = t.numpy()
        except TypeError:  # bfloat16 and other dtypes NumPy lacks
            x = t.double().numpy()
    if x is None or isinstance(x, (str, bytes, dict, set, bool, np.bool_)):
        raise TypeError(f"{name} must be a real numeric array, got {type(x).__name__}")
    try:
        arr = np.asarray(x)
    except (ValueError, TypeError) as exc:
        raise TypeError(f"{name} must be a rectangular real numeric array ({exc})") from None
    if arr.dtype.kind not in kinds:
        raise TypeError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    return arr.astype(np.float64, copy=False) if arr.dtype.kind in "iuf" and "f" in kinds else arr


def _as_weights(w, name: str = "w") -> np.ndarray:
    """Scalar weights: any shape, flattened to 1-D float64; finite and non-empty."""
    arr = _to_numpy(w, name).reshape(-1)
    if arr.size == 0:
        raise ValueError(f"{name} must contain at least one weight")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains non-finite values (NaN or inf)")
    return arr


def _shape(x) -> tuple:
    return tuple(x.shape) if hasattr(x, "shape") else np.shape(x)


def _as_importance(h, n: int, name: str = "h", *, like=None) -> np.ndarray:
    """One strictly positive, finite importance per weight, flattened. ``like`` is the weights' original
    shape: ``h`` must have that shape or be its flat ``(n,)`` form (a transposed ``h`` pairs the wrong numbers)."""
    if h is None:
        return np.ones(n)
    arr = _to_numpy(h, name)
    if like is not None and arr.shape != tuple(like) and arr.ndim != 1 and len(like) != 1:
        raise ValueError(f"{name} must have the weights' shape {tuple(like)} (or be flat, ({n},)), got {arr.shape}")
    arr = arr.reshape(-1)
    if arr.size != n:
        raise ValueError(f"{name} must have one importance per weight: expected {n}, got {arr.size}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains non-finite values (NaN or inf)")
    if (arr <= 0).any():
        raise ValueError(f"{name} must be strictly positive (clip or shift a Hessian estimate first)")
    return arr


def _scalar_problem(w, h, wname: str = "w", hname: str = "h") -> tuple[np.ndarray, np.ndarray]:
    return _as_weights(w, wname), _as_importance(h, int(np.prod(_shape(w))), hname, like=_shape(w))


def _pow2(value: float, *, even: bool = False) -> float:
    """The power of two ``2^-e`` that brings ``value > 0`` into ``[0.5, 1)`` (``[0.25, 1)`` with an even ``e``,
    so that square roots of rescaled quantities stay exact); 1 for 0. Multiplying by it is exact."""
    if not value > 0 or not math.isfinite(value):
        return 1.0
    e = math.frexp(value)[1]
    if even and e % 2:
        e += 1
    return math.ldexp(1.0, -e)


def _check_init(init) -> str:
    if not isinstance(init, str):
        raise TypeError(f"init must be one of {INITS}, got {init!r}")
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    return init


def _check_k(k, n: int | None = None) -> int:
    k = checks.integer(k, "k", low=1)
    if n is not None and k > n:
        raise ValueError(f"k={k} is larger than the number of weights ({n})")
    return k


def _check_iters(iters) -> int:
    return checks.integer(iters, "iters", low=0)


def _check_beta(beta, name: str = "beta") -> float:
    if isinstance(beta, bool) or not isinstance(beta, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a finite non-negative number, got {beta!r}")
    beta = float(beta)
    if not math.isfinite(beta) or beta < 0:
        raise ValueError(f"{name} must be a finite non-negative number, got {beta!r}")
    return beta


def _as_vector_problem(w, h) -> tuple[np.ndarray, np.ndarray]:
    """Vector case: ``w`` (d, m) and ``h`` (d, m, m) SPD blocks, (d, m) positive diagonals, or None."""
    W = _to_numpy(w, "w")
    if W.ndim != 2 or W.shape[0] == 0 or W.shape[1] == 0:
        raise ValueError(f"w must be a non-empty (d, m) array in the vector case, got shape {W.shape}")
    if not np.isfinite(W).all():
        raise ValueError("w contains non-finite values (NaN or inf)")
    d, m = W.shape
    if h is None:
        return W, np.broadcast_to(np.eye(m), (d, m, m)).copy()
    H = _to_numpy(h, "h")
    if not np.isfinite(H).all():
        raise ValueError("h contains non-finite values (NaN or inf)")
    if H.shape == (d, m):
        if (H <= 0).any():
            raise ValueError("h must be strictly positive (diagonal blocks given as a (d, m) array)")
        out = np.zeros((d, m, m))
        out[:, np.arange(m), np.arange(m)] = H
        return W, out
    if H.shape != (d, m, m):
        raise ValueError(f"h must have shape (d, m, m) = {(d, m, m)} (or (d, m) for diagonal blocks) to match "
                         f"w of shape {(d, m)}, got {H.shape}")
    scale = np.abs(H).max(axis=(1, 2))
    asym = np.abs(H - H.transpose(0, 2, 1)).max(axis=(1, 2))
    bad = np.flatnonzero(asym > 1e-10 * np.maximum(scale, 1e-300))
    if bad.size:
        raise ValueError(f"h must hold symmetric positive definite blocks; h[{bad[0]}] is not symmetric")
    H = 0.5 * (H + H.transpose(0, 2, 1))
    try:
        np.linalg.cholesky(H)
    except np.linalg.LinAlgError:
        j = int(np.argmin(np.linalg.eigvalsh(H)[:, 0]))
        raise ValueError(f"h must hold symmetric positive definite blocks; h[{j}] is not positive definite") \
            from None
    return W, H


def _is_vector(w) -> bool:
    try:
        shape = _shape(w)
    except ValueError:  # a ragged list: _to_numpy names it
        _to_numpy(w, "w")
        raise
    if len(shape) > 2:
        raise ValueError(f"w must be 1-D (scalar weights) or 2-D (d, m) (vector weights), got shape {shape}; "
                         "flatten a layer's weight tensor with .reshape(-1) for scalar weight sharing")
    return len(shape) == 2


# ---------------------------------------------------------------------------------------- scalar building blocks

def _weighted_quantiles(w: np.ndarray, h: np.ndarray, q: np.ndarray) -> np.ndarray:
    order = np.argsort(w, kind="stable")
    return _weighted_quantiles_sorted(w[order], h[order], q)


def _weighted_quantiles_sorted(ws: np.ndarray, hs: np.ndarray, q: np.ndarray) -> np.ndarray:
    cum = np.cumsum(hs)
    cum = (cum - 0.5 * hs) / cum[-1]
    return np.interp(q, cum, ws)


def init_centers(w, k: int, *, h=None, init: str = "quantile", seed: int = 0) -> np.ndarray:
    """Initial codebook of scalar weights, ascending: ``"quantile"`` (the (i+½)/K quantiles of the weights
    weighted by ``h``), ``"authors"`` (the (i+½)/K quantiles of the weights alone, ``np.quantile`` with its
    linear interpolation — the initialisation of the authors' released code, which ignores ``h`` here),
    ``"linear"`` (evenly spaced over [min w, max w]) or ``"random"`` (K distinct weights drawn with ``seed``;
    repeated if there are fewer distinct weights)."""
    w, h = _scalar_problem(w, h)
    k = _check_k(k, w.size)
    return _init_scalar(w, h, k, _check_init(init), checks.seed(seed))


def _init_scalar(w, h, k, init, seed, order=None):
    # ``order``: an argsort of w, when the caller has one (the quantiles then need no second sort)
    if init == "quantile":
        q = (np.arange(k) + 0.5) / k
        c = _weighted_quantiles(w, h, q) if order is None else _weighted_quantiles_sorted(w[order], h[order], q)
    elif init == "authors":
        c = np.quantile(w, (np.arange(k) + 0.5) / k)
    elif init == "linear":
        c = np.linspace(w.min(), w.max(), k)
    else:
        uniq = np.unique(w)
        c = np.random.default_rng(seed).choice(uniq, size=min(k, uniq.size), replace=False)
        c = np.concatenate([c, np.full(k - c.size, c[0])])
    return np.sort(c)


def assign(w, centers) -> np.ndarray:
    """Index of the nearest centre (Euclidean) for each weight; ties go to the lower index.

    Scalar: ``centers`` ascending ``(K,)``, ``w`` any shape (flattened). Vector: ``centers`` ``(K, m)`` and ``w``
    ``(d, m)``.
    """
    c = _centers(centers)
    if c.ndim == 2:
        W = _to_numpy(w, "w")
        if W.ndim != 2 or W.shape[0] == 0 or W.shape[1] != c.shape[1]:
            raise ValueError(f"w must be (d, {c.shape[1]}) with d >= 1 to match centers of shape {c.shape}, got "
                             f"{W.shape}")
        if not np.isfinite(W).all():
            raise ValueError("w contains non-finite values (NaN or inf)")
        return _assign_vec(W, c)
    w = _as_weights(w)
    if (np.diff(c) < 0).any():
        raise ValueError("centers must be ascending in the scalar case (sort them)")
    return np.searchsorted(0.5 * c[1:] + 0.5 * c[:-1], w, side="left").astype(np.int64)


def _centers(centers, min_k: int = 1) -> np.ndarray:
    """A finite ``(K,)`` or ``(K, m)`` codebook with ``K ≥ min_k``."""
    c = _to_numpy(centers, "centers")
    if c.ndim not in (1, 2) or c.shape[0] < min_k or (c.ndim == 2 and c.shape[1] == 0):
        raise ValueError(f"centers must be (K,) or (K, m) with K >= {min_k}, got shape {c.shape}")
    if not np.isfinite(c).all():
        raise ValueError("centers contains non-finite values (NaN or inf)")
    return c


def _nearest_upper(w: np.ndarray, c: np.ndarray) -> np.ndarray:
    # nearest ascending centre, a weight on a mid-point going to the upper one (the authors' tie rule)
    return np.searchsorted(0.5 * c[1:] + 0.5 * c[:-1], w, side="right").astype(np.int64)


def _assign_vec(W: np.ndarray, C: np.ndarray) -> np.ndarray:
    d, k = W.shape[0], C.shape[0]
    out = np.empty(d, np.int64)
    step = max(1, 2_000_000 // max(1, k * W.shape[1]))
    for s in range(0, d, step):
        diff = W[s:s + step, None, :] - C[None, :, :]
        out[s:s + step] = np.argmin(np.einsum("dkm,dkm->dk", diff, diff), axis=1)
    return out


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
        return _pair_solve_scalar(a1, b1, 0.0, a2, b2, 0.0, beta)
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


# ------------------------------------------------------------------------------------------ exact 1-D optimum

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
    lws = _KERNEL["lws"]
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
    kernel = None if backend == "numpy" else _numba_dp()
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


# ------------------------------------------------------------------------------------------------- measures

def distortion(w, h, centers, labels) -> float:
    """HW distortion ``Σ_j (w_j − c_{labels_j})ᵀ H_j (w_j − c_{labels_j})``.

    Scalar (``centers`` 1-D): ``w`` flattened, ``h`` (n,) or ``None`` (squared error). Vector (``centers``
    ``(K, m)``): ``w`` ``(d, m)``, ``h`` ``(d, m, m)``, ``(d, m)`` or ``None`` (identity blocks).
    """
    c = _centers(centers)
    if c.ndim == 2:
        W, H = _as_vector_problem(w, h)
        if c.shape[1] != W.shape[1]:
            raise ValueError(f"centers must be (K, {W.shape[1]}) to match w, got {c.shape}")
        lab = _check_labels(labels, W.shape[0], c.shape[0])
        r = W - c[lab]
        return float(np.einsum("di,dij,dj->", r, H, r))
    w, h = _scalar_problem(w, h)
    lab = _check_labels(labels, w.size, c.shape[0])
    return float(np.sum(h * (w - c[lab]) ** 2))


def _check_labels(labels, n: int | None, k: int | None) -> np.ndarray:
    """Integer labels (any shape, flattened), one per weight when ``n`` is given, in ``[0, k)``."""
    lab = _to_numpy(labels, "labels", kinds="iu").reshape(-1)
    if lab.size == 0 or (n is not None and lab.size != n):
        raise ValueError(f"labels must hold one integer index per weight ({n if n is not None else '>= 1'}), got "
                         f"{lab.size}")
    if lab.min() < 0 or (k is not None and lab.max() >= k):
        raise ValueError(f"labels must be indices into the {k} centres: in [0, {k}), got [{lab.min()}, {lab.max()}]")
    return lab.astype(np.int64, copy=False)


def diameter(centers) -> float:
    """Largest Euclidean distance between two centres (``max c − min c`` for scalar centres)."""
    c = _centers(centers)
    if c.ndim == 1:
        c = c[:, None]
    if c.shape[0] == 1:
        return 0.0
    i, j = _farthest_pair(c)
    return float(np.linalg.norm(c[i] - c[j]))


def label_entropy_bits(labels, k: int) -> float:
    """Empirical entropy (bits per weight) of the labels: the size an entropy coder needs per weight."""
    k = checks.integer(k, "k", low=1)
    lab = _check_labels(labels, None, k)
    counts = np.bincount(lab).astype(np.float64)  # codes above the largest label are empty: no padding
    p = counts[counts > 0] / lab.size
    return float(-(p * np.log2(p)).sum())


def entropy_coded_bits(labels, k: int, *, codebook_bits: int = 32) -> float:
    """Bits to store a quantized layer: ``n · Ĥ(labels) + codebook_bits · K`` (paper notes §6)."""
    k = checks.integer(k, "k", low=1)
    codebook_bits = checks.real(codebook_bits, "codebook_bits", low=0.0)
    lab = _check_labels(labels, None, k)
    return lab.size * label_entropy_bits(lab, k) + codebook_bits * k


# ----------------------------------------------------------------------------------------------- models

@dataclass(frozen=True)
class LayerReport:
    """What quantizing one layer did: its size, codebook, distortion and entropy-coded size."""

    name: str
    n_weights: int
    k: int
    centers: np.ndarray
    distortion: float
    entropy_bits: float
    coded_bits: float


@dataclass(frozen=True)
class QuantizationReport:
    layers: list[LayerReport]

    def __post_init__(self):
        if not self.layers or not all(isinstance(layer, LayerReport) for layer in self.layers):
            raise ValueError("layers must be a non-empty list of LayerReport")

    @property
    def compression_ratio(self) -> float:
        """Entropy-coded size over the 32-bit float size of the quantized weights (biases excluded)."""
        coded = sum(layer.coded_bits for layer in self.layers)
        return coded / (32.0 * sum(layer.n_weights for layer in self.layers))


def _no_lloyd(fn):
    # the non-iterative quantizers accept (and ignore) the Lloyd keywords, so a sweep can pass them to every method
    def call(w, h, k, *, iters=None, init=None, seed=None):
        return fn(w, h, k)
    return call


def _drhw(w, h, k, *, beta=None, **kw):
    if beta is None:
        raise ValueError("method 'drhw' needs beta=... (the diameter penalty)")
    return drhw_kmeans(w, h, k, beta, **kw)


def _drhw_linear(w, h, k, *, beta=None, iters=30, init="authors", seed=None):
    # ``beta`` carries the authors' λ (diameter_reg) so that a sweep passes one keyword to both DRHW methods;
    # the method draws no random numbers, so ``seed`` is accepted and has no effect
    if beta is None:
        raise ValueError("method 'drhw_linear' needs beta=... (the authors' diameter_reg λ)")
    return drhw_linear(w, h, k, beta, iters=iters, init=init)


#: Scalar quantizers by name: each maps ``(w, h, k, **kw)`` to ``(centers, labels)``. ``"uniform"`` and
#: ``"kmeans"`` ignore ``h``; ``"drhw"`` needs ``beta`` (Algorithm 1's β); ``"drhw_linear"`` needs ``beta`` too,
#: there the authors' linear weight λ (:func:`drhw_linear`); ``"hw_exact"`` is :func:`weighted_kmeans_1d`.
METHODS = {
    "uniform": _no_lloyd(lambda w, h, k: uniform_quantize(w, k)),
    "kmeans": lambda w, h, k, **kw: kmeans(w, k, **kw),
    "hw_kmeans": lambda w, h, k, **kw: hw_kmeans(*_scalar_problem(w, h), k, **kw),
    "hw_exact": _no_lloyd(weighted_kmeans_1d),
    "drhw": lambda w, h, k, **kw: _drhw(*_scalar_problem(w, h), k, **kw),
    "drhw_linear": _drhw_linear,
}

SIGNS = ("positive", "nonnegative", "any")


def check_importances(h, model, *, name: str = "h", sign: str = "positive") -> dict[str, np.ndarray]:
    """Validate a per-weight dict ``{layer name: values}`` against ``model``; return float64 NumPy arrays.

    ``model``'s compressible layers (:func:`poprisk.models.compressible_layers`) must each have an entry (extra
    entries are ignored) holding a real array or tensor (any device) of **exactly** that layer's weight shape — a
    transposed array of the same size would pair each weight with another weight's importance and is refused —
    with finite values that are ``sign="positive"`` (what the HW quantizers need), ``"nonnegative"`` (a
    curvature for pruning) or ``"any"`` (a saliency). Raises ``TypeError``/``ValueError`` naming
    ``name[layer]``. The one check of the library for such dicts: :func:`quantize_model` and
    :mod:`poprisk.prune` use it, and so can every caller that receives one.
    """
    from poprisk.models import compressible_layers

    if not isinstance(sign, str) or sign not in SIGNS:
        raise ValueError(f"sign must be one of {SIGNS}, got {sign!r}")
    if not isinstance(name, str):
        raise TypeError(f"name must be a string, got {type(name).__name__}")
    layers = compressible_layers(model)
    if not isinstance(h, dict):
        raise TypeError(f"{name} must be a dict {{layer name: array shaped like its weight}}, got {type(h).__name__}")
    missing = [n for n, _ in layers if n not in h]
    if missing:
        raise ValueError(f"{name} has no entry for layers {missing}")
    out = {}
    for layer, module in layers:
        arg = f"{name}[{layer!r}]"
        arr = _to_numpy(h[layer], arg)
        want = tuple(module.weight.shape)
        if arr.shape != want:
            raise ValueError(f"{arg} has shape {arr.shape}, expected the weight's shape {want}")
        if not np.isfinite(arr).all():
            raise ValueError(f"{arg} contains non-finite values (NaN or inf)")
        if (sign == "positive" and (arr <= 0).any()) or (sign == "nonnegative" and (arr < 0).any()):
            raise ValueError(f"{arg} must be {'strictly positive' if sign == 'positive' else 'non-negative'}")
        out[layer] = arr
    return out


def quantize_model(model, method: str = "kmeans", k: int = 4, h: dict | None = None, **kw):
    """Quantize every Linear/Conv weight of a copy of ``model`` per layer; biases are left untouched.

    Parameters
    ----------
    method : a key of :data:`METHODS` (``"uniform"``, ``"kmeans"``, ``"hw_kmeans"``, ``"hw_exact"``, ``"drhw"``,
        ``"drhw_linear"``).
    k : codebook size per layer (``2**bits``).
    h : importances per layer, ``{module_name: tensor shaped exactly like its weight}`` (checked by
        :func:`check_importances`); ``None`` means all ones.
    kw : passed to the quantizer (``iters``, ``init``, ``seed``, ``beta`` …).

    Returns ``(compressed_model, QuantizationReport)``; the original model is not modified.
    """
    import torch

    from poprisk.models import compressible_layers

    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}, got {method!r}")
    layers = compressible_layers(model)
    k = _check_k(k)
    hs = None if h is None else check_importances(h, model)
    out = copy.deepcopy(model)
    modules = dict(out.named_modules())
    reports = []
    for name, m in layers:
        w = m.weight.detach().cpu().double().numpy().reshape(-1)
        if not np.isfinite(w).all():
            raise ValueError(f"model has non-finite weights in layer {name!r}")
        hl = None if hs is None else hs[name].reshape(-1)
        centers, labels = METHODS[method](w, hl, k, **kw)
        target = modules[name].weight
        with torch.no_grad():
            target.copy_(torch.as_tensor(centers[labels], dtype=target.dtype).reshape(target.shape))
        reports.append(LayerReport(
            name=name, n_weights=w.size, k=k, centers=np.asarray(centers),
            distortion=distortion(w, hl, centers, labels),
            entropy_bits=label_entropy_bits(labels, k),
            coded_bits=entropy_coded_bits(labels, k),
        ))
    return out, QuantizationReport(reports)
