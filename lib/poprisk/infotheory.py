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
      the closed form on the right piece of the water-filling equation, found in O(d) — no sort, no bisection).
    * A discrete source with an arbitrary distortion matrix: the **Blahut–Arimoto** algorithm
      :cite:`blahut1972computation,arimoto1972algorithm` (:func:`blahut_arimoto`), which traces R(D) by its slope.

Generalization bounds (chapters 2 and 4)
    * Xu–Raginsky :cite:`xu2017information`: if ``ℓ(w, Z)`` is ``σ``-sub-Gaussian for every ``w``,
      ``|gen| ≤ sqrt(2σ² I(S;W)/n)`` (:func:`mi_bound`).
    * Individual-sample bound :cite:`bu2020tightening`: ``|gen| ≤ (1/n) Σ_i sqrt(2σ² I(W;Z_i))``
      (:func:`individual_sample_bound`).

Helpers: :func:`entropy` of a discrete distribution, :func:`mutual_information` of a joint table,
:func:`gaussian_mi` for jointly Gaussian pairs; for a density discretized on a grid (chapter 3),
:func:`discretized_entropy` and the Shannon lower bound :func:`shannon_lower_bound`
``R(D) ≥ h(X) − (d/2) log(2πe D/d)`` :cite:`cover2006elements`.

Inputs are validated before any work: a wrong kind of value (bool, string, complex, ragged list) raises
``TypeError`` and a wrong value (shape, NaN, sign, range) ``ValueError``, each naming the argument.
Probabilities are held to the precision of their own dtype (float32 softmax outputs are accepted).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from poprisk import checks

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
    "mutual_information",
    "gaussian_mi",
    "discretized_entropy",
    "shannon_lower_bound",
    "STOPS",
]


# --------------------------------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------------------------------
def _as_float_array(x, name: str) -> np.ndarray:
    """``x`` as a non-empty float64 array: real numbers only (no bools, strings, complex or ragged lists), no
    NaN."""
    arr = _as_float_array_and_eps(x, name)[0]
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty")
    return arr


def _as_float_array_and_eps(x, name: str, *, nan_check: bool = True) -> tuple[np.ndarray, float]:
    """:func:`_as_float_array` and the machine epsilon of the input's own dtype (float64 for integers and
    Python numbers): the tolerance a sum of its entries can honestly be held to."""
    if hasattr(x, "detach"):  # torch tensors
        x = x.detach().cpu().numpy()
    if isinstance(x, (bool, np.bool_)):
        raise TypeError(f"{name} must be a real number or array, got a bool")
    if x is None or isinstance(x, (str, bytes, dict, set)):
        raise TypeError(f"{name} must be a real number or array, got {type(x).__name__}")
    try:
        arr = np.asarray(x)
    except (ValueError, TypeError) as exc:  # ragged nested lists
        raise TypeError(f"{name} must be a real number or a rectangular array of numbers ({exc})") from None
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be real-valued, got dtype {arr.dtype}")
    eps = float(np.finfo(arr.dtype).eps) if arr.dtype.kind == "f" else float(np.finfo(np.float64).eps)
    arr = arr.astype(np.float64, copy=False)
    if nan_check and np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN")
    return arr, eps


def _number(x, name: str) -> float:
    """A real scalar (Python or NumPy number, 0-d array or one-element tensor); ``±inf`` allowed, NaN not."""
    arr = _as_float_array(x, name)
    if arr.ndim != 0:
        raise ValueError(f"{name} must be a scalar, got an array of shape {arr.shape}")
    return float(arr)


def _sum_tolerance(eps: float, n: int) -> float:
    # probabilities rounded to a dtype sum to 1 within ~eps; the normalising sum adds ~log2(n) eps (pairwise) or
    # up to ~sqrt(n) eps in practice; never stricter than 1e-9 (the float64 rule of the book)
    return max(1e-9, 8.0 * eps * math.sqrt(max(n, 1)))


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


def _variances(variances) -> tuple[np.ndarray, float, float, float]:
    """Flattened float64 variances, non-empty, finite, non-negative; with their sum, minimum and maximum (three
    passes that are also the checks: a NaN or inf anywhere makes the sum non-finite)."""
    s = _as_float_array_and_eps(variances, "variances", nan_check=False)[0].reshape(-1)
    if s.size == 0:
        raise ValueError("variances must contain at least one component")
    total = float(np.sum(s))
    if not math.isfinite(total):
        if not np.isfinite(s).all():
            raise ValueError("variances must be finite (no NaN or inf)")
        raise ValueError("variances sum beyond the float range; rescale them (θ scales with them)")
    smin, smax = float(s.min()), float(s.max())
    if smin < 0:
        raise ValueError("variances must be non-negative")
    return s, total, smin, smax


def _start(s: np.ndarray, solve, target_per_component: float) -> float:
    # a strided sample of ~1,000 components, solved by sorting, puts Newton's first iterate near the root
    step = max(1, s.size // 1024)
    return solve(np.sort(s[::step]), target_per_component * s[::step].size)


def _theta_for_distortion(s: np.ndarray, target: float) -> float:
    """Water level with Σ min(θ, s_i) = target, for 0 < target < Σ s_i, in O(d).

    Newton's method on the concave piecewise-linear f(θ) = Σ min(θ, s_i): each step solves the current linear
    piece, θ ← θ + (target − f(θ)) / #{s_i > θ}. From any start the first step lands at or left of the root (the
    tangent of a concave function lies above it); from there every step stays left, only shrinks the active set
    and ends, after finitely many O(d) passes (two or three from the start that a strided sample gives), on
    the piece that holds the root. θ is then that piece's closed form, (target − Σ_{s_i ≤ θ} s_i)/#{s_i > θ}.
    """
    d = s.size
    left = target / d  # f(left) ≤ d·left = target: a start left of the root with an active component
    theta = _start(s, _sorted_theta_distortion, left) if d > 4096 else left
    buf = np.empty_like(s)
    n_act = -1
    for _ in range(4 * d + 8):  # finite in exact arithmetic; the bound only guards against rounding cycles
        n_new = int(np.count_nonzero(s > theta))
        if n_new == 0:
            if n_act >= 0 or theta == left:  # target within rounding of Σ s_i: every component at its variance
                return theta
            theta = left  # the sample's level was at the largest variance: start from the left instead
            continue
        if n_new == n_act:  # two iterates on the same piece: the root is on it
            break
        f = float(np.minimum(s, theta, out=buf).sum())
        theta, n_act = theta + (target - f) / n_new, n_new
    below = s <= theta
    return (target - float(np.dot(s, below))) / (d - int(np.count_nonzero(below)))


def _sorted_theta_distortion(asc: np.ndarray, target: float) -> float:
    """The closed form on ascending variances (the sample's start; also the reference of the tests)."""
    d = asc.size
    f_at = np.cumsum(asc) - asc + (d - np.arange(d)) * asc  # f at each variance
    k = int(np.searchsorted(f_at, target, side="right")) - 1
    if k < 0:
        return target / d
    if k >= d - 1:
        return float(asc[-1])
    return (target - float(np.sum(asc[: k + 1]))) / (d - k - 1)


def _theta_for_rate(s: np.ndarray, target: float) -> float:
    """Water level with Σ_{s_i > θ} ½ log(s_i/θ) = target, for target > 0, in O(d).

    In ``u = log θ`` the rate g(u) = ½ Σ max(log s_i − u, 0) is convex, decreasing and piecewise linear; Newton's
    step u ← u + 2 (g(u) − target)/#{log s_i > u} solves the current piece; after the first step it stays left of
    the root, shrinks the active set and ends on the piece of the root, whose closed form
    log θ = (Σ_{active} log s_i − 2·target)/#active is returned.
    """
    logs = np.log(s[s > 0]) if (s <= 0).any() else np.log(s)
    d = logs.size
    left = (float(logs.sum()) - 2.0 * target) / d  # g(left) ≥ target: left of the root
    if d > 4096:
        step = max(1, d // 1024)
        sample = np.sort(logs[::step])[::-1]
        u = _sorted_log_theta_rate(sample, target * sample.size / d)
    else:
        u = left
    buf = np.empty_like(logs)
    n_act = -1
    for _ in range(4 * d + 8):
        n_new = int(np.count_nonzero(logs > u))
        if n_new == 0:
            if n_act >= 0 or u == left:  # a rate below the resolution of the logarithms: θ at the variances
                return math.exp(u)
            u = left  # the sample's level was at the largest variance: start from the left instead
            continue
        if n_new == n_act:
            break
        np.subtract(logs, u, out=buf)
        np.maximum(buf, 0.0, out=buf)
        u, n_act = u + 2.0 * (0.5 * float(buf.sum()) - target) / n_new, n_new
    act = logs > u
    return math.exp((float(np.dot(logs, act)) - 2.0 * target) / int(np.count_nonzero(act)))


def _sorted_log_theta_rate(desc_logs: np.ndarray, target: float) -> float:
    k = np.arange(1, desc_logs.size + 1)
    g = 0.5 * (np.concatenate([[0.0], np.cumsum(desc_logs)[:-1]]) - (k - 1) * desc_logs)
    m = max(1, int(np.searchsorted(g, target, side="right")))
    return (float(np.sum(desc_logs[:m])) - 2.0 * target) / m


def reverse_water_filling(variances, *, rate=None, distortion=None) -> WaterFilling:
    """Reverse water-filling over independent Gaussian components (squared error, nats).

    Exactly one of ``rate`` (nats, ≥ 0) or ``distortion`` (total squared error, ≥ 0) must be given. The water level
    ``θ`` is exact: a few Newton passes over the variances find the linear (or, for a rate, logarithmic) piece
    of the water-filling equation that holds the root, and ``θ`` is that piece's closed form. Cost O(d) (no
    sort); ``variances`` may have any shape (it is flattened).

    * A ``distortion`` at or above ``Σ s_i`` needs no rate: ``θ = max s_i`` and the achieved distortion is
      ``Σ s_i`` (``.distortion`` reports what is achieved).
    * ``distortion = 0`` (or ``rate = inf``) gives ``θ = 0`` and infinite rates on the positive components.
    * Zero-variance components cost nothing: ``D_i = R_i = 0``.
    * Rates are ``½ (log s_i − log D_i)`` where the ratio ``s_i/D_i`` would overflow, so ``.rate`` is finite
      whenever every component's rate is.
    """
    s, total, smin, smax = _variances(variances)
    if (rate is None) == (distortion is None):
        raise ValueError("give exactly one of rate= or distortion=")
    if distortion is not None:
        dist = _number(distortion, "distortion")
        if dist < 0:
            raise ValueError(f"distortion must be non-negative, got {dist!r}")
        if dist >= total:
            theta = smax
        elif dist == 0:
            theta = 0.0
        else:
            theta = _theta_for_distortion(s, dist)
    else:
        r = _number(rate, "rate")
        if r < 0:
            raise ValueError(f"rate must be non-negative, got {r!r}")
        if smax == 0:
            theta = 0.0
        elif r == 0:
            theta = smax
        elif np.isinf(r):
            theta = 0.0
        else:
            theta = _theta_for_rate(s, r)
    dists = np.minimum(theta, s)
    # R_i = ½ log(s_i/D_i): exactly 0 where D_i = s_i (inactive), inf where D_i = 0 < s_i, 0 for s_i = 0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        rates = np.divide(s, dists)
        np.log(rates, out=rates)
        rates *= 0.5
    if smin == 0:
        rates[s == 0] = 0.0
    if theta > 0 and not math.isfinite(smax / theta):  # s_i/D_i beyond the float range: difference of logs
        wide = np.isinf(rates) & (dists > 0)
        rates[wide] = 0.5 * (np.log(s[wide]) - np.log(dists[wide]))
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
    converged : whether the stopping rule (see :func:`blahut_arimoto`'s ``stop``) was met within ``max_iter``.
    certified : whether ``gap ≤ tol``.
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
    certified: np.ndarray | bool
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


STOPS = ("stall", "gap")


def blahut_arimoto(p_x, distortion_matrix, slope, *, tol: float = 1e-4, max_iter: int = 2_000, q0=None,
                   stop: str = "stall"):
    """Rate–distortion points of a discrete source by the Blahut–Arimoto algorithm (nats).

    For each slope ``s < 0`` the algorithm minimizes ``I(X; X̂) − s E d(X, X̂)`` over test channels by
    alternating the two optimality conditions :cite:`blahut1972computation,cover2006elements`

    .. math:: Q(\\hat x\\mid x) = \\frac{q(\\hat x)\\, e^{s d(x,\\hat x)}}{\\sum_{\\hat x'} q(\\hat x') e^{s d(x,\\hat x')}},
              \\qquad q(\\hat x) = \\sum_x p(x) Q(\\hat x\\mid x).

    The returned point lies on the R(D) curve of the discrete problem where its slope is ``s``.

    Accuracy. Every point carries Blahut's certificate ``gap = log max_x̂ c(x̂) − KL(q'‖q)`` (with
    ``c(x̂) = Σ_x p(x) e^{s d}/Σ_{x̂'} q e^{s d}`` and ``q' = q·c`` the output of the returned channel): the point
    satisfies ``R(D) ≤ rate ≤ R(D) + gap`` at ``D = distortion`` whether or not the run converged. The
    iteration (an EM step on ``q``) reaches the curve long before the certificate shows it on fine grids: tail
    reproduction points of negligible mass keep ``max c`` above 1 for thousands of steps (on a 1,024-point
    Gaussian the points are within 1e-7 nats of the curve after ~10 steps while ``gap`` is still ~1e-2).
    Hence two stopping rules:

    * ``stop="stall"`` (default): stop when ``gap ≤ tol`` or when one step lowers the objective
      ``I − s D`` by at most ``1e-6 · tol`` (the point is then within ``tol`` of the optimum unless the iteration
      contracts more slowly than ``1 − 1e-6`` per step); ``converged`` says the rule was met, ``certified``
      whether ``gap ≤ tol`` too. Check ``gap`` when a guarantee is needed.
    * ``stop="gap"``: stop only when ``gap ≤ tol`` (then ``converged == certified``).

    Numerics. The exponentials are taken in the log domain with a per-row shift, ``e^{s (d(x,x̂) − min_x̂ d(x,x̂))}``
    (the shift cancels in the normalization, so every row keeps an entry equal to 1 and nothing overflows or
    underflows to an all-zero row); the rate is assembled from logarithms of vectors only,
    ``I = s (D − Σ_x p d_min) − Σ_x p log c(x) − KL(q' ‖ q)``. Each step is two matrix–vector products with the
    ``n × m`` kernel; the slopes are handled one after another with a single kernel buffer (memory ``O(nm)``
    whatever the number of slopes), each from the same start (a slope's result does not depend on the others).

    Parameters
    ----------
    p_x : source distribution, shape ``(n,)``, non-negative, summing to 1 within the precision of its dtype
        (float32 probabilities are accepted; ``p_x`` is renormalized in float64).
    distortion_matrix : ``d(x, x̂)``, shape ``(n, m)``, finite.
    slope : a negative number or a 1-D array of negative numbers (``dR/dD`` at the sought point).
    tol : target accuracy in nats (> 0).
    max_iter : maximum number of updates of ``q`` per slope (the certificate is always that of the returned
        point, converged or not).
    q0 : initial reproduction distribution, shape ``(m,)``; default: the source pushed onto its nearest
        reproduction points, mixed with a uniform distribution of weight 1e-6 so that no point starts at zero.
    stop : ``"stall"`` or ``"gap"`` (above).
    """
    p = _probabilities(p_x, "p_x")
    if p.ndim != 1:
        raise ValueError(f"p_x must be a non-empty 1-D array, got shape {p.shape}")
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
    tol = checks.real(tol, "tol", low=0.0, low_open=True)
    max_iter = checks.integer(max_iter, "max_iter", low=1)
    if not isinstance(stop, str) or stop not in STOPS:
        raise ValueError(f"stop must be one of {STOPS}, got {stop!r}")
    n, m = d.shape
    if q0 is None:
        push = np.bincount(np.argmin(d, axis=1), weights=p, minlength=m)
        q_init = (1.0 - 1e-6) * push + 1e-6 / m
    else:
        q_init = _as_float_array(q0, "q0")
        if q_init.shape != (m,) or not np.isfinite(q_init).all() or (q_init < 0).any() or q_init.sum() <= 0:
            raise ValueError(f"q0 must be a non-negative distribution of shape ({m},)")
        q_init = q_init / q_init.sum()
    stall = 1e-6 * tol if stop == "stall" else -math.inf

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
    conv = np.zeros(k, dtype=bool)
    for i, s in enumerate(s_arr):
        np.multiply(d_shift, s, out=kernel)
        np.exp(kernel, out=kernel)
        q = q_init.copy()
        objective = math.inf
        while True:
            c_x = np.maximum(kernel @ q, tiny)  # Σ_x̂ q e^{s d̃}, shape (n,)
            w = p / c_x
            c_hat = w @ kernel  # Blahut's c(x̂), shape (m,); q·c_hat is the output of the channel of q
            out = q * c_hat
            pos = out > 0
            kl = float(out[pos] @ np.log(c_hat[pos]))  # KL(q'‖q), as q'/q = c_hat
            gaps[i] = max(0.0, math.log(c_hat.max()) - kl)  # certificate for the point of the current q
            previous, objective = objective, -float(p @ np.log(c_x))  # I − s D + const of the channel of q
            if gaps[i] <= tol or previous - objective <= stall:
                conv[i] = True
                break
            if iters[i] >= max_iter:
                break
            iters[i] += 1
            q = out / out.sum()
        # the point of the final q: Q = q e^{s d̃} / c(x), output q' = q·c_hat
        np.multiply(kernel, d_shift, out=kernel)  # the kernel of this slope is not needed any more
        dist = float(w @ (kernel @ q)) + p_dmin
        rates[i] = max(0.0, s * (dist - p_dmin) - float(p @ np.log(c_x)) - kl)
        dists[i] = dist
        outputs[i] = out
        qs[i] = q
    cert = gaps <= tol
    if scalar:
        return BlahutArimoto(slope=float(s_arr[0]), rate=float(rates[0]), distortion=float(dists[0]),
                             output=outputs[0], gap=float(gaps[0]), iterations=int(iters[0]),
                             converged=bool(conv[0]), certified=bool(cert[0]), _q=qs[0], _d=d)
    return BlahutArimoto(slope=s_arr, rate=rates, distortion=dists, output=outputs, gap=gaps, iterations=iters,
                         converged=conv, certified=cert, _q=qs, _d=d)


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
    if (nn < 1).any() or not np.isfinite(nn).all() or (nn != np.floor(nn)).any():
        raise ValueError("n must be a whole number of samples ≥ 1")
    with np.errstate(invalid="ignore"):
        out = np.sqrt(2.0 * sg**2 * mi / nn)
    out = np.where(np.isinf(mi) & (sg == 0), 0.0, out)
    return _scalar_or_array(out)


def individual_sample_bound(sigma, mutual_informations):
    """Individual-sample bound :cite:`bu2020tightening`: ``(1/n) Σ_i sqrt(2σ² I(W; Z_i))``.

    ``mutual_informations`` holds ``I(W; Z_i)`` for ``i = 1..n`` in nats (its length is ``n``). For an algorithm
    that treats the samples symmetrically all terms are equal and the bound is ``sqrt(2σ² I(W; Z_1))``.
    """
    sg = float(_sigma(_number(sigma, "sigma")))
    mi = _as_float_array(mutual_informations, "mutual_informations").reshape(-1)
    if mi.size == 0:
        raise ValueError("mutual_informations must hold one value per training sample")
    if (mi < 0).any():
        raise ValueError("mutual_informations must be non-negative")
    return float(np.mean(np.sqrt(2.0 * sg**2 * mi)))


def _probabilities(p, name: str, *, axis=-1) -> np.ndarray:
    """Non-empty, finite, non-negative, summing to 1 along ``axis`` within the precision of the input's dtype
    (:func:`_sum_tolerance`); returned in float64, renormalized along ``axis``."""
    arr, eps = _as_float_array_and_eps(p, name)
    if arr.ndim == 0 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty array of probabilities, got shape {arr.shape}")
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) or not -arr.ndim <= axis < arr.ndim:
        raise ValueError(f"axis must be an integer axis of {name} (ndim {arr.ndim}), got {axis!r}")
    if (arr < 0).any() or not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite and non-negative")
    sums = np.sum(arr, axis=axis, keepdims=True)
    tol = _sum_tolerance(eps, arr.shape[axis])
    if not np.all(np.abs(sums - 1.0) <= tol):
        worst = float(np.max(np.abs(sums - 1.0)))
        raise ValueError(f"{name} must sum to 1 along axis {axis} (within {tol:.1e} for its dtype); it is off by "
                         f"{worst:.3e}")
    return arr / sums


def entropy(p, *, axis=-1):
    """Shannon entropy ``−Σ p log p`` in nats of a distribution (or of each along ``axis``); ``0 log 0 = 0``.

    ``p`` must sum to 1 within the precision of its dtype (float32 softmax outputs are accepted) and is
    renormalized in float64 first."""
    arr = _probabilities(p, "p", axis=axis)
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


def mutual_information(joint) -> float:
    """``I(X;Y) = Σ p(x,y) log(p(x,y) / (p(x) p(y)))`` in nats of a joint probability table (chapters 2–4).

    ``joint`` is a 2-D array summing to 1; ``0 log 0 = 0``; rounding below zero is clipped to 0."""
    arr = _probabilities(np.asarray(joint, dtype=float).reshape(-1), "joint").reshape(np.shape(joint))
    if arr.ndim != 2:
        raise ValueError(f"joint must be a 2-D table p(x, y), got shape {arr.shape}")
    outer = arr.sum(1, keepdims=True) * arr.sum(0, keepdims=True)
    mask = arr > 0
    return max(0.0, float(np.sum(arr[mask] * np.log(arr[mask] / outer[mask]))))


def discretized_entropy(p, cell) -> float:
    """``h = −Σ p_i log(p_i / cell)``: the differential entropy (nats) of the piecewise-constant density that
    puts mass ``p_i`` uniformly on grid cells of volume ``cell`` (chapter 3's discretized sources)."""
    arr = _probabilities(p, "p").reshape(-1)
    vol = _number(cell, "cell")
    if not vol > 0 or math.isinf(vol):
        raise ValueError(f"cell must be a finite positive volume, got {vol}")
    nz = arr[arr > 0]
    return float(-np.sum(nz * np.log(nz / vol)))


def shannon_lower_bound(h, distortion, dim: int = 1):
    """Shannon lower bound ``R(D) ≥ h(X) − (d/2) log(2πe D/d)`` nats for a source in ``R^d`` of
    differential entropy ``h`` under total squared error ``D`` (chapter 3, ``ch03-thm-slb``). Broadcasts."""
    hh = float(_number(h, "h"))
    d = checks.integer(dim, "dim", low=1)
    dist = _as_float_array(distortion, "distortion")
    if (dist <= 0).any() or not np.isfinite(dist).all():
        raise ValueError("distortion must be finite and positive")
    return _scalar_or_array(hh - d / 2 * np.log(2 * math.pi * math.e * dist / d))
