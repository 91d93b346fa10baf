"""Input validation and the shared building blocks of the quantizers: centre initialisation and nearest-centre
assignment (scalar and vector; chapters 3, 7, 9)."""

from __future__ import annotations

import math

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


