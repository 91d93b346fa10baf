"""Information theory for the book: rate–distortion functions and generalization bounds (chapters 2–6).

Everything is in **nats** (natural logarithms).

Rate–distortion (chapter 3, used again in chapters 5 and 6)
    * Scalar Gaussian source ``X ~ N(0, s)`` under squared error:

      .. math:: R(D) = \\max\\{0, \\tfrac12 \\log(s/D)\\}, \\qquad D(R) = s\\, e^{-2R}.

      (:func:`gaussian_rd`, :func:`gaussian_dr`.)
    * Independent Gaussian components with variances ``s_i``, total squared error: **reverse water-filling**
      :cite:`cover2006elements`

      .. math:: D_i = \\min(\\theta, s_i), \\qquad R_i = \\tfrac12 \\log(s_i / D_i),
                \\qquad D = \\sum_i D_i, \\qquad R = \\sum_i R_i,

      with the water level ``θ`` fixed by the target rate or distortion (:func:`reverse_water_filling`; exact,
      by sorting the variances once — no bisection).
    * A discrete source with an arbitrary distortion matrix: the **Blahut–Arimoto** algorithm
      :cite:`blahut1972computation,arimoto1972algorithm` (:func:`blahut_arimoto`), which traces R(D) by its slope.

Generalization bounds (chapters 2 and 4)
    * Xu–Raginsky :cite:`xu2017information`: if ``ℓ(w, Z)`` is ``σ``-sub-Gaussian for every ``w``,
      ``|gen| ≤ sqrt(2σ² I(S;W)/n)`` (:func:`mi_bound`).
    * Individual-sample bound :cite:`bu2020tightening`: ``|gen| ≤ (1/n) Σ_i sqrt(2σ² I(W;Z_i))``
      (:func:`individual_sample_bound`).

Helpers: :func:`entropy` of a discrete distribution, :func:`gaussian_mi` for jointly Gaussian pairs.

Inputs are validated: bad values raise ``ValueError`` naming the argument.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

__all__ = [
    "gaussian_rd",
    "gaussian_dr",
    "WaterFilling",
    "reverse_water_filling",
    "BlahutArimoto",
    "blahut_arimoto",
    "mi_bound",
    "individual_sample_bound",
    "entropy",
    "gaussian_mi",
]


# --------------------------------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------------------------------
def _as_float_array(x, name: str) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensors
        x = x.detach().cpu().numpy()
    if isinstance(x, bool):
        raise ValueError(f"{name} must be a real number or array, got a bool")
    arr = np.asarray(x)
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"{name} must be real-valued, got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    if np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN")
    return arr


def _scalar_or_array(out: np.ndarray):
    return float(out) if np.ndim(out) == 0 else out


# --------------------------------------------------------------------------------------------------------------
# Gaussian rate–distortion
# --------------------------------------------------------------------------------------------------------------
def gaussian_rd(variance, distortion):
    """Rate–distortion function of a ``N(0, variance)`` source under squared error, in nats.

    ``R(D) = ½ log(variance / D)`` for ``D < variance`` and ``0`` otherwise; ``R(0) = ∞`` (for a positive
    variance). Broadcasts over arrays; returns a float for scalar inputs.
    """
    s = _as_float_array(variance, "variance")
    d = _as_float_array(distortion, "distortion")
    if (s < 0).any() or np.isinf(s).any():
        raise ValueError("variance must be finite and non-negative")
    if (d < 0).any():
        raise ValueError("distortion must be non-negative")
    s, d = np.broadcast_arrays(s, d)
    with np.errstate(divide="ignore"):
        out = np.where(d < s, 0.5 * np.log(np.where(d < s, s, 1.0) / np.where(d < s, d, 1.0)), 0.0)
    return _scalar_or_array(out)


def gaussian_dr(variance, rate):
    """Distortion–rate function of a ``N(0, variance)`` source under squared error: ``variance · e^{-2R}``.

    ``rate`` in nats, non-negative (``inf`` gives 0). Broadcasts; returns a float for scalar inputs.
    """
    s = _as_float_array(variance, "variance")
    r = _as_float_array(rate, "rate")
    if (s < 0).any() or np.isinf(s).any():
        raise ValueError("variance must be finite and non-negative")
    if (r < 0).any():
        raise ValueError("rate must be non-negative")
    return _scalar_or_array(s * np.exp(-2.0 * r))


# --------------------------------------------------------------------------------------------------------------
# reverse water-filling
# --------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WaterFilling:
    """Result of :func:`reverse_water_filling` (nats; per-component arrays in the input order).

    Attributes
    ----------
    theta : the water level ``θ``.
    distortions : ``D_i = min(θ, s_i)``.
    rates : ``R_i = ½ log(s_i / D_i)`` (0 for components at or below the water level).
    rate : ``Σ R_i``.
    distortion : ``Σ D_i``.
    """

    theta: float
    distortions: np.ndarray
    rates: np.ndarray
    rate: float
    distortion: float

    @property
    def active(self) -> np.ndarray:
        """Mask of the components that are described (``s_i > θ``, positive rate)."""
        return self.rates > 0


def _variances(variances) -> np.ndarray:
    s = _as_float_array(variances, "variances")
    if s.ndim != 1:
        s = s.reshape(-1)
    if s.size == 0:
        raise ValueError("variances must contain at least one component")
    if not np.isfinite(s).all():
        raise ValueError("variances must be finite")
    if (s < 0).any():
        raise ValueError("variances must be non-negative")
    return s


def _theta_for_distortion(s: np.ndarray, target: float) -> float:
    """Water level with Σ min(θ, s_i) = target, for 0 ≤ target < Σ s_i (closed form on the sorted variances)."""
    asc = np.sort(s)
    d = asc.size
    csum = np.concatenate([[0.0], np.cumsum(asc)])  # csum[k] = sum of the k smallest
    k_idx = np.arange(d)
    # f(asc[k]) = csum[k] + (d - k) * asc[k]: distortion when the level sits at the k-th smallest variance.
    f_at = csum[:-1] + (d - k_idx) * asc
    k = int(np.searchsorted(f_at, target, side="right")) - 1  # last k with f(asc[k]) <= target
    k = min(k, d - 2)  # target < Σ s_i, so the level lies below the largest variance (guards rounding)
    if k < 0:  # target below d * min(s): every component is active
        return target / d
    below = float(np.sum(asc[: k + 1]))  # pairwise summation; the components at or below the level contribute their variance
    # on [asc[k], asc[k+1]): f(θ) = below + (d - k - 1) θ
    return (target - below) / (d - k - 1)


def _theta_for_rate(s: np.ndarray, target: float) -> float:
    """Water level with Σ_{s_i > θ} ½ log(s_i/θ) = target, for target ≥ 0 (closed form on sorted variances)."""
    desc = np.sort(s[s > 0])[::-1]
    logs = np.log(desc)
    lcum = np.cumsum(logs)
    k = np.arange(1, desc.size + 1)
    # g_k = rate when θ = desc[k-1]: ½ Σ_{i<k} log(desc_i / desc_{k-1})
    g = 0.5 * (np.concatenate([[0.0], lcum[:-1]]) - (k - 1) * logs)
    m = int(np.searchsorted(g, target, side="right"))  # number of active components (≥ 1)
    log_theta = (float(np.sum(logs[:m])) - 2.0 * target) / m
    return math.exp(log_theta)


def reverse_water_filling(variances, *, rate=None, distortion=None) -> WaterFilling:
    """Reverse water-filling over independent Gaussian components (squared error, nats).

    Exactly one of ``rate`` (nats, ≥ 0) or ``distortion`` (total squared error, ≥ 0) must be given. The water level
    ``θ`` is found in closed form: the variances are sorted once, the piecewise-linear Σ min(θ, s_i) (or the
    piecewise-logarithmic rate) is evaluated at the breakpoints, and the level is solved for on the right piece.
    Cost O(d log d).

    * A ``distortion`` at or above ``Σ s_i`` needs no rate: ``θ = max s_i`` and the achieved distortion is
      ``Σ s_i`` (``.distortion`` reports what is achieved).
    * ``distortion = 0`` (or ``rate = inf``) gives ``θ = 0`` and infinite rates on the positive components.
    * Zero-variance components cost nothing: ``D_i = R_i = 0``.
    """
    s = _variances(variances)
    if (rate is None) == (distortion is None):
        raise ValueError("give exactly one of rate= or distortion=")
    total = float(np.sum(s))
    smax = float(s.max())
    if distortion is not None:
        dist = float(_as_float_array(distortion, "distortion")) if np.ndim(distortion) == 0 else None
        if dist is None:
            raise ValueError("distortion must be a scalar")
        if dist < 0:
            raise ValueError("distortion must be non-negative")
        if dist >= total:
            theta = smax
        elif dist == 0:
            theta = 0.0
        else:
            theta = _theta_for_distortion(s, dist)
    else:
        r = float(_as_float_array(rate, "rate")) if np.ndim(rate) == 0 else None
        if r is None:
            raise ValueError("rate must be a scalar")
        if r < 0:
            raise ValueError("rate must be non-negative")
        if smax == 0:
            theta = 0.0
        elif r == 0:
            theta = smax
        elif np.isinf(r):
            theta = 0.0
        else:
            theta = _theta_for_rate(s, r)
    dists = np.minimum(theta, s)
    with np.errstate(divide="ignore", invalid="ignore"):
        rates = np.where(s > theta, 0.5 * np.log(np.where(s > theta, s, 1.0) / np.where(s > theta, dists, 1.0)),
                         0.0)
    rates = np.where((s > 0) & (dists == 0), np.inf, rates)
    return WaterFilling(theta=float(theta), distortions=dists, rates=rates,
                        rate=float(np.sum(rates)) if np.isfinite(rates).all() else math.inf,
                        distortion=float(np.sum(dists)))


# --------------------------------------------------------------------------------------------------------------
# Blahut–Arimoto
# --------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BlahutArimoto:
    """Result of :func:`blahut_arimoto`; with several slopes every field has a leading slope axis.

    Attributes
    ----------
    slope : the slope(s) ``s < 0`` of R(D) that were traced.
    rate : ``I(X; X̂)`` of the returned channel, nats.
    distortion : ``E d(X, X̂)`` of the returned channel.
    output : the reproduction distribution ``q(x̂) = Σ_x p(x) Q(x̂|x)``, shape ``(m,)`` per slope.
    gap : certified accuracy: the returned point satisfies ``R(D) ≤ rate ≤ R(D) + gap`` at ``D = distortion``,
        where R is the rate–distortion function of the discrete problem that was given.
    iterations : iterations used per slope.
    converged : whether ``gap ≤ tol`` was reached within ``max_iter``.
    conditional : the test channel ``Q(x̂ | x)``, shape ``(n, m)`` per slope (rows sum to 1); formed on first
        access from the final reproduction weights (it is the largest object, so it is not built unless asked).
    """

    slope: np.ndarray | float
    rate: np.ndarray | float
    distortion: np.ndarray | float
    output: np.ndarray
    gap: np.ndarray | float
    iterations: np.ndarray | int
    converged: np.ndarray | bool
    _q: np.ndarray = field(repr=False, compare=False)
    _d: np.ndarray = field(repr=False, compare=False)

    @cached_property
    def conditional(self) -> np.ndarray:
        slopes = np.atleast_1d(self.slope)
        q = np.atleast_2d(self._q)
        out = np.stack([_channel(self._d - self._d.min(axis=1, keepdims=True), s, qi) for s, qi in zip(slopes, q)])
        return out[0] if np.ndim(self.slope) == 0 else out


def _channel(d_shift: np.ndarray, s: float, q: np.ndarray) -> np.ndarray:
    """``Q(x̂|x) = q(x̂) e^{s d̃(x,x̂)} / Σ_x̂' q(x̂') e^{s d̃(x,x̂')}`` (row-shifted distortion ``d̃``)."""
    cond = np.multiply(d_shift, s)
    np.exp(cond, out=cond)
    c_x = np.maximum(cond @ q, np.finfo(np.float64).tiny)
    cond *= q[None, :]
    cond /= c_x[:, None]
    return cond


def blahut_arimoto(p_x, distortion_matrix, slope, *, tol: float = 1e-4, max_iter: int = 2_000, q0=None):
    """Rate–distortion points of a discrete source by the Blahut–Arimoto algorithm (nats).

    For each slope ``s < 0`` the algorithm minimizes ``I(X; X̂) − s E d(X, X̂)`` over test channels by
    alternating the two optimality conditions :cite:`blahut1972computation,cover2006elements`

    .. math:: Q(\\hat x\\mid x) = \\frac{q(\\hat x)\\, e^{s d(x,\\hat x)}}{\\sum_{\\hat x'} q(\\hat x') e^{s d(x,\\hat x')}},
              \\qquad q(\\hat x) = \\sum_x p(x) Q(\\hat x\\mid x).

    The returned point lies on the R(D) curve of the discrete problem where its slope is ``s``.

    Numerics. The exponentials are taken in the log domain with a per-row shift, ``e^{s (d(x,x̂) − min_x̂ d(x,x̂))}``
    (the shift cancels in the normalization, so every row keeps an entry equal to 1 and nothing overflows or
    underflows to an all-zero row); the rate is assembled from logarithms of vectors only,
    ``I = s (D − Σ_x p d_min) − Σ_x p log c(x) − KL(q' ‖ q)``. Each step is two matrix–vector products with the
    ``n × m`` kernel; the slopes are handled one after another with a single kernel buffer (cache-friendly, memory
    ``O(nm)`` whatever the number of slopes), and a slope stops as soon as its certified gap
    ``log max_x̂ c(x̂)`` (with ``c(x̂) = Σ_x p(x) e^{s d}/Σ_{x̂'} q e^{s d}``, Blahut's bound) drops below ``tol``.

    Parameters
    ----------
    p_x : source distribution, shape ``(n,)``, non-negative, summing to 1.
    distortion_matrix : ``d(x, x̂)``, shape ``(n, m)``, finite.
    slope : a negative number or a 1-D array of negative numbers (``dR/dD`` at the sought point).
    tol : target certified gap in nats (> 0).
    max_iter : maximum number of updates of ``q`` per slope (the certificate is always that of the returned
        point, converged or not).
    q0 : initial reproduction distribution, shape ``(m,)``; default: the source pushed onto its nearest
        reproduction points, mixed with a uniform distribution of weight 1e-6 so that no point starts at zero.
    """
    p = _as_float_array(p_x, "p_x")
    if p.ndim != 1 or p.size == 0:
        raise ValueError(f"p_x must be a non-empty 1-D array, got shape {p.shape}")
    if not np.isfinite(p).all() or (p < 0).any():
        raise ValueError("p_x must be finite and non-negative")
    if abs(math.fsum(p) - 1.0) > 1e-9:
        raise ValueError(f"p_x must sum to 1, sums to {math.fsum(p)!r}")
    d = _as_float_array(distortion_matrix, "distortion_matrix")
    if d.ndim != 2 or d.shape[0] != p.size or d.shape[1] == 0:
        raise ValueError(f"distortion_matrix must have shape (len(p_x), m) = ({p.size}, m), got {d.shape}")
    if not np.isfinite(d).all():
        raise ValueError("distortion_matrix must be finite")
    s_arr = _as_float_array(slope, "slope")
    scalar = s_arr.ndim == 0
    s_arr = np.atleast_1d(s_arr)
    if s_arr.ndim != 1 or s_arr.size == 0:
        raise ValueError("slope must be a number or a non-empty 1-D array")
    if not np.isfinite(s_arr).all() or (s_arr >= 0).any():
        raise ValueError("slope must be finite and negative (it is dR/dD < 0)")
    if isinstance(tol, bool) or not isinstance(tol, (int, float, np.floating, np.integer)) or not tol > 0:
        raise ValueError(f"tol must be a positive number, got {tol!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive integer, got {max_iter!r}")
    n, m = d.shape
    if q0 is None:
        push = np.bincount(np.argmin(d, axis=1), weights=p, minlength=m)
        q_init = (1.0 - 1e-6) * push + 1e-6 / m
    else:
        q_init = _as_float_array(q0, "q0")
        if q_init.shape != (m,) or not np.isfinite(q_init).all() or (q_init < 0).any() or q_init.sum() <= 0:
            raise ValueError(f"q0 must be a non-negative distribution of shape ({m},)")
        q_init = q_init / q_init.sum()

    k = s_arr.size
    d_min = d.min(axis=1)
    d_shift = d - d_min[:, None]  # ≥ 0, one zero per row
    p_dmin = float(p @ d_min)
    tiny = np.finfo(np.float64).tiny
    kernel = np.empty((n, m))  # e^{s d̃}: entries in (0, 1], every row's maximum is 1
    qs = np.empty((k, m))
    rates, dists, gaps = np.empty(k), np.empty(k), np.empty(k)
    outputs = np.empty((k, m))
    iters = np.zeros(k, dtype=np.int64)
    for i, s in enumerate(s_arr):
        np.multiply(d_shift, s, out=kernel)
        np.exp(kernel, out=kernel)
        q = q_init.copy()
        while True:
            c_x = np.maximum(kernel @ q, tiny)  # Σ_x̂ q e^{s d̃}, shape (n,)
            w = p / c_x
            c_hat = w @ kernel  # Blahut's c(x̂), shape (m,); q·c_hat is the output of the channel of q
            gaps[i] = math.log(c_hat.max())  # certificate for the point of the current q
            if gaps[i] <= tol or iters[i] >= max_iter:
                break
            iters[i] += 1
            q = q * c_hat
            q /= q.sum()
        # the point of the final q: Q = q e^{s d̃} / c(x), output q' = q·c_hat
        out = q * c_hat
        dist = float(np.einsum("i,ij,ij,j->", w, kernel, d_shift, q)) + p_dmin
        pos = out > 0
        kl = float(np.sum(out[pos] * (np.log(out[pos]) - np.log(q[pos]))))
        rates[i] = max(0.0, s * (dist - p_dmin) - float(p @ np.log(c_x)) - kl)
        dists[i] = dist
        outputs[i] = out
        qs[i] = q
    conv = gaps <= tol
    if scalar:
        return BlahutArimoto(slope=float(s_arr[0]), rate=float(rates[0]), distortion=float(dists[0]),
                             output=outputs[0], gap=float(gaps[0]), iterations=int(iters[0]),
                             converged=bool(conv[0]), _q=qs[0], _d=d)
    return BlahutArimoto(slope=s_arr, rate=rates, distortion=dists, output=outputs, gap=gaps, iterations=iters,
                         converged=conv, _q=qs, _d=d)


# --------------------------------------------------------------------------------------------------------------
# generalization bounds and elementary information measures
# --------------------------------------------------------------------------------------------------------------
def _sigma(sigma) -> np.ndarray:
    sg = _as_float_array(sigma, "sigma")
    if (sg < 0).any() or np.isinf(sg).any():
        raise ValueError("sigma must be finite and non-negative")
    return sg


def mi_bound(sigma, mutual_information, n):
    """Xu–Raginsky bound :cite:`xu2017information` on the expected generalization error: ``sqrt(2σ² I(S;W)/n)``.

    Valid when ``ℓ(w, Z)`` is ``σ``-sub-Gaussian for every ``w``; ``mutual_information`` in nats (``inf`` allowed,
    giving an infinite — vacuous — bound); ``n`` the number of training samples. Broadcasts.
    """
    sg = _sigma(sigma)
    mi = _as_float_array(mutual_information, "mutual_information")
    if (mi < 0).any():
        raise ValueError("mutual_information must be non-negative")
    nn = _as_float_array(n, "n")
    if (nn < 1).any() or not np.isfinite(nn).all():
        raise ValueError("n must be a finite number of samples ≥ 1")
    with np.errstate(invalid="ignore"):
        out = np.sqrt(2.0 * sg**2 * mi / nn)
    out = np.where(np.isinf(mi) & (sg == 0), 0.0, out)
    return _scalar_or_array(out)


def individual_sample_bound(sigma, mutual_informations):
    """Individual-sample bound :cite:`bu2020tightening`: ``(1/n) Σ_i sqrt(2σ² I(W; Z_i))``.

    ``mutual_informations`` holds ``I(W; Z_i)`` for ``i = 1..n`` in nats (its length is ``n``). For an algorithm
    that treats the samples symmetrically all terms are equal and the bound is ``sqrt(2σ² I(W; Z_1))``.
    """
    sg = float(_sigma(sigma)) if np.ndim(sigma) == 0 else None
    if sg is None:
        raise ValueError("sigma must be a scalar")
    mi = _as_float_array(mutual_informations, "mutual_informations").reshape(-1)
    if mi.size == 0:
        raise ValueError("mutual_informations must hold one value per training sample")
    if (mi < 0).any():
        raise ValueError("mutual_informations must be non-negative")
    return float(np.mean(np.sqrt(2.0 * sg**2 * mi)))


def entropy(p, *, axis=-1):
    """Shannon entropy ``−Σ p log p`` in nats of a distribution (or of each along ``axis``); ``0 log 0 = 0``."""
    arr = _as_float_array(p, "p")
    if arr.size == 0:
        raise ValueError("p must be non-empty")
    if (arr < 0).any() or not np.isfinite(arr).all():
        raise ValueError("p must be finite and non-negative")
    if not np.allclose(arr.sum(axis=axis), 1.0, rtol=0, atol=1e-9):
        raise ValueError("p must sum to 1 along axis")
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(arr > 0, -arr * np.log(np.where(arr > 0, arr, 1.0)), 0.0)
    return _scalar_or_array(terms.sum(axis=axis))


def gaussian_mi(signal_variance, noise_variance):
    """``I(X; X + N) = ½ log(1 + S/N)`` nats for independent Gaussians ``X ~ N(·, S)``, ``N ~ N(0, N)``.

    ``noise_variance = 0`` gives ``inf`` (a deterministic continuous map carries infinite information).
    """
    sv = _as_float_array(signal_variance, "signal_variance")
    nv = _as_float_array(noise_variance, "noise_variance")
    if (sv < 0).any() or np.isinf(sv).any():
        raise ValueError("signal_variance must be finite and non-negative")
    if (nv < 0).any():
        raise ValueError("noise_variance must be non-negative")
    sv, nv = np.broadcast_arrays(sv, nv)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(sv == 0, 0.0, np.where(nv == 0, np.inf, 0.5 * np.log1p(sv / np.where(nv == 0, 1.0, nv))))
    return _scalar_or_array(out)
