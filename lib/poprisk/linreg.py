"""The linear-regression example, exactly (chapter 6).

The book's own reconstruction of the linear-regression instance of :cite:`bu2021population` (Section 5):

* fixed design ``X`` (``n × d``, ``n > d``) with ``Σ̂ = XᵀX/n = U Λ Uᵀ``; prior ``w* ~ N(0, σ_w² I)``;
  ``y = X w* + ε``, ``ε ~ N(0, σ_ε² I)``; squared loss; ``W`` is the least-squares estimate;
* population risk with fresh noise at the same inputs, ``L_μ(w) = σ_ε² + (w − w*)ᵀ Σ̂ (w − w*)``;
* the distortion ``L_S(ŵ) − L_S(W) = (ŵ − W)ᵀ Σ̂ (ŵ − W)`` is plain squared error on the whitened estimate
  ``V = Λ^{1/2} Uᵀ W``, whose coordinates are independent ``N(0, s_i)`` with

  .. math:: s_i = σ_w² λ_i + c, \\qquad c = σ_ε²/n;

* the compressor is the optimal Gaussian test channel of reverse water-filling
  (:func:`poprisk.infotheory.reverse_water_filling`): ``D_i = min(θ, s_i)``, ``V̂_i = a_i V_i + N_i`` with
  ``a_i = 1 − D_i/s_i`` and ``N_i ~ N(0, a_i D_i)``, rate ``R = Σ ½ log(s_i/D_i) = I(W;Ŵ) = I(S;Ŵ)`` nats.

Closed forms (``t_i = D_i/s_i``):

.. math::
    E L_S(Ŵ) = σ_ε²(1 − d/n) + D, \\quad E L_μ(Ŵ) = σ_ε² + \\sum_i [c + t_i (s_i − 2c)], \\quad
    \\mathrm{gen}(Ŵ) = 2c \\sum_i (1 − t_i).

The population risk is piecewise linear and unimodal in ``θ`` (convex on ``[0, 2c]``, non-decreasing beyond), with
breakpoints at the ``s_i``; optimal compression strictly helps iff ``(1/d) Σ_i σ_ε²/(σ_ε² + nλ_iσ_w²) > ½``
(:meth:`LinearModel.helps`).

:meth:`LinearModel.gen_bound` is an information-theoretic bound on ``gen(Ŵ)`` that is valid for the squared
loss (which is not sub-Gaussian): the Donsker–Varadhan inequality with the exact cumulant generating function of
the scaled noncentral chi-square empirical risk. :meth:`LinearModel.monte_carlo` simulates everything (prior,
noise, least squares on the design matrix, channel, fresh test noise) and returns means with standard errors.

Rates are in nats. Bad inputs raise, before any work, ``TypeError`` (a wrong kind of value: a string, ``None``,
a bool where a number is expected, a ragged list) or ``ValueError`` (a wrong value: shape, NaN, sign, range),
naming the argument. Seeds are non-negative integers (``None`` is refused: every draw is reproducible).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
from scipy import optimize

from poprisk import checks
from poprisk.infotheory import WaterFilling, _as_float_array, _number, reverse_water_filling

__all__ = ["Risks", "MonteCarloRisks", "LinearModel", "canonical_design", "criterion_threshold",
           "threshold_survey"]


@dataclass(frozen=True)
class Risks:
    """Expected risks of the compressed estimate at one operating point (rate in nats).

    ``rate`` = ``I(S;Ŵ)``, ``theta`` = water level, ``distortion`` = ``E[L_S(Ŵ) − L_S(W)]``,
    ``empirical`` = ``E L_S(Ŵ)``, ``population`` = ``E L_μ(Ŵ)``, ``gen`` = ``population − empirical``.
    The uncompressed estimate has ``rate = inf`` and ``theta = 0``.
    """

    rate: float
    theta: float
    distortion: float
    empirical: float
    population: float
    gen: float


@dataclass(frozen=True)
class MonteCarloRisks:
    """Monte Carlo estimates (sample means over ``draws``) and their standard errors (``*_se``)."""

    rate: float
    theta: float
    draws: int
    distortion: float
    empirical: float
    population: float
    gen: float
    distortion_se: float
    empirical_se: float
    population_se: float
    gen_se: float


def _positive_scalar(value, name: str) -> float:
    return checks.real(value, name, low=0.0, low_open=True)


def _as_matrix(x, name: str) -> np.ndarray:
    return np.array(_as_float_array(x, name), dtype=np.float64)


def _non_negative_or_inf(value, name: str) -> float:
    """A number ``≥ 0`` where ``inf`` is meaningful (a rate of ``inf`` nats, a level above every variance)."""
    value = _number(value, name)
    if value < 0:
        raise ValueError(f"{name} must be non-negative, got {value!r}")
    return value


def canonical_design(eigenvalues, n: int, seed: int = 0) -> np.ndarray:
    """A design matrix ``X`` (``n × d``) with ``XᵀX/n = diag(eigenvalues)`` exactly.

    ``X = √n · Q · diag(√λ)`` where ``Q`` has orthonormal columns (QR of a seeded Gaussian matrix), so the
    eigenvectors are the coordinate axes. Used when a :class:`LinearModel` is built from a spectrum alone.
    """
    lam = _as_matrix(eigenvalues, "eigenvalues").reshape(-1)
    d = lam.size
    if d == 0:
        raise ValueError("eigenvalues must be non-empty")
    n = checks.integer(n, "n")
    if n <= d:
        raise ValueError(f"n must be an integer larger than d={d}, got {n!r}")
    if (lam <= 0).any() or not np.isfinite(lam).all():
        raise ValueError("eigenvalues must be positive and finite")
    seed = checks.seed(seed)
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((int(n), d)))
    q = q * np.sign(np.diag(r))  # a unique (Haar) orthonormal frame
    return math.sqrt(n) * q * np.sqrt(lam)


class LinearModel:
    """Least squares under a Gaussian prior, compressed by the rate–distortion optimal Gaussian channel.

    Parameters
    ----------
    eigenvalues : the eigenvalues ``λ_i > 0`` of ``Σ̂ = XᵀX/n`` (``d`` of them).
    n : the sample size, an integer ``> d``.
    noise_var : ``σ² > 0``.
    prior_var : ``σ_w² > 0`` (prior ``w* ~ N(0, σ_w² I)``).
    design : optional ``n × d`` design matrix with ``XᵀX/n`` having these eigenvalues (use
        :meth:`from_design`); without it :meth:`monte_carlo` uses :func:`canonical_design`.
    """

    def __init__(self, eigenvalues, n, noise_var, prior_var, *, design=None, _eigvecs=None):
        lam = _as_matrix(eigenvalues, "eigenvalues")
        if lam.ndim != 1 or lam.size == 0:
            raise ValueError(f"eigenvalues must be a non-empty 1-D array, got shape {lam.shape}")
        if not np.isfinite(lam).all() or (lam <= 0).any():
            raise ValueError("eigenvalues must be positive and finite (the design must have full column rank)")
        d = lam.size
        n = checks.integer(n, "n")
        if n <= d:
            raise ValueError(f"n must be larger than d={d} (least squares needs n > d), got n={n}")
        self.eigenvalues = lam
        self.n = int(n)
        self.d = d
        self.noise_var = _positive_scalar(noise_var, "noise_var")
        self.prior_var = _positive_scalar(prior_var, "prior_var")
        if design is not None and _eigvecs is None:
            x = _as_matrix(design, "design")
            if x.shape != (self.n, d):
                raise ValueError(f"design must have shape (n, d) = ({self.n}, {d}), got {x.shape}")
            lam_x, _eigvecs = np.linalg.eigh(x.T @ x / self.n)
            order = np.argsort(np.argsort(lam))  # match the given eigenvalue order
            lam_x, _eigvecs = lam_x[order], _eigvecs[:, order]
            if not np.allclose(lam_x, lam, rtol=1e-8, atol=0):
                raise ValueError("design does not have the given eigenvalues (XᵀX/n)")
            design = x
        self._design = design
        self._eigvecs = _eigvecs

    # ----------------------------------------------------------------------------------------------------------
    # constructors
    # ----------------------------------------------------------------------------------------------------------
    @classmethod
    def from_design(cls, design, noise_var, prior_var) -> "LinearModel":
        """The model for a given design matrix ``X`` (``n × d``, full column rank, ``n > d``)."""
        x = _as_matrix(design, "design")
        if x.ndim != 2:
            raise ValueError(f"design must be a 2-D array (n × d), got shape {x.shape}")
        n, d = x.shape
        if n <= d:
            raise ValueError(f"design must have more rows than columns (n > d), got shape {x.shape}")
        if not np.isfinite(x).all():
            raise ValueError("design contains non-finite values")
        lam, u = np.linalg.eigh(x.T @ x / n)
        if lam.min() <= 1e-12 * max(lam.max(), 1e-300):
            raise ValueError("design must have full column rank (XᵀX is singular)")
        return cls(lam, n, noise_var, prior_var, design=x, _eigvecs=u)

    @classmethod
    def gaussian_design(cls, d: int, n: int, noise_var, prior_var, seed: int = 0) -> "LinearModel":
        """Random Gaussian design: the rows of ``X`` are i.i.d. ``N(0, I_d)``, drawn once with ``seed``.

        The analysis is conditional on the drawn ``X`` (it is then a fixed design)."""
        d = checks.integer(d, "d", low=1)
        n = checks.integer(n, "n")
        if n <= d:
            raise ValueError(f"n must be an integer larger than d={d}, got {n!r}")
        seed = checks.seed(seed)
        _positive_scalar(noise_var, "noise_var")
        _positive_scalar(prior_var, "prior_var")
        x = np.random.default_rng(seed).standard_normal((int(n), int(d)))
        return cls.from_design(x, noise_var, prior_var)

    # ----------------------------------------------------------------------------------------------------------
    # basic quantities
    # ----------------------------------------------------------------------------------------------------------
    def __repr__(self) -> str:
        return (f"LinearModel(d={self.d}, n={self.n}, noise_var={self.noise_var:g}, "
                f"prior_var={self.prior_var:g})")

    @property
    def c(self) -> float:
        """``σ²/n``: the variance of each whitened least-squares error coordinate."""
        return self.noise_var / self.n

    @property
    def variances(self) -> np.ndarray:
        """``s_i = σ_w² λ_i + σ²/n``: variances of the whitened estimate ``V = Λ^{1/2} Uᵀ W``."""
        return self.prior_var * self.eigenvalues + self.c

    @property
    def design(self) -> np.ndarray:
        """The design matrix (the canonical one with seed 0 if the model was built from a spectrum)."""
        if self._design is None:
            self._design = canonical_design(self.eigenvalues, self.n, seed=0)
            self._eigvecs = np.eye(self.d)
        return self._design

    @property
    def eigenvectors(self) -> np.ndarray:
        """``U``: ``Σ̂ = U diag(λ) Uᵀ`` (columns in the order of :attr:`eigenvalues`)."""
        self.design  # noqa: B018 -- makes sure the pair (design, U) is consistent
        return self._eigvecs

    def water_filling(self, *, rate=None, theta=None) -> WaterFilling:
        """Reverse water-filling on :attr:`variances` at a rate (nats) or a water level ``θ ≥ 0``."""
        if (rate is None) == (theta is None):
            raise ValueError("give exactly one of rate= or theta=")
        s = self.variances
        if theta is not None:
            theta = _non_negative_or_inf(theta, "theta")
            return reverse_water_filling(s, distortion=math.fsum(np.minimum(theta, s)))
        return reverse_water_filling(s, rate=_non_negative_or_inf(rate, "rate"))

    # ----------------------------------------------------------------------------------------------------------
    # closed forms
    # ----------------------------------------------------------------------------------------------------------
    def _risks_from(self, wf: WaterFilling) -> Risks:
        s, c = self.variances, self.c
        t = wf.distortions / s
        empirical = self.noise_var * (1 - self.d / self.n) + wf.distortion
        population = self.noise_var + math.fsum(c + t * (s - 2 * c))
        gen = 2 * c * math.fsum(1 - t)
        return Risks(rate=wf.rate, theta=wf.theta, distortion=wf.distortion, empirical=empirical,
                     population=population, gen=gen)

    def risks(self, *, rate=None, theta=None) -> Risks:
        """Expected risks of ``Ŵ`` at a rate (nats; ``inf`` = uncompressed) or a water level ``θ`` (0 = none)."""
        return self._risks_from(self.water_filling(rate=rate, theta=theta))

    def uncompressed(self) -> Risks:
        """Expected risks of ``W`` itself: ``σ²(1 − d/n)``, ``σ²(1 + d/n)``, gen ``2σ²d/n`` (rate ``inf``)."""
        return self.risks(theta=0.0)

    def risk_curve(self, *, rates=None, thetas=None) -> dict:
        """:meth:`risks` over an array of rates or of water levels; a dict of arrays keyed like :class:`Risks`."""
        if (rates is None) == (thetas is None):
            raise ValueError("give exactly one of rates= or thetas=")
        key = "rate" if rates is not None else "theta"
        values = _as_float_array(rates if rates is not None else thetas, f"{key}s").reshape(-1)
        if values.size == 0:
            raise ValueError(f"{key}s must hold at least one value")
        if (values < 0).any():
            raise ValueError(f"{key}s must be non-negative")
        out = [self.risks(**{key: float(v)}) for v in values]
        return {f.name: np.array([getattr(r, f.name) for r in out]) for f in fields(Risks)}

    def criterion(self) -> float:
        """``κ = (1/d) Σ_i σ²/(σ² + nλ_iσ_w²)`` — the mean fraction of noise in the whitened coordinates."""
        return float(np.mean(self.noise_var / (self.noise_var + self.n * self.eigenvalues * self.prior_var)))

    def helps(self) -> bool:
        """The improvement criterion: optimal compression strictly lowers the population risk iff ``κ > ½``."""
        return self.criterion() > 0.5

    def optimal(self) -> Risks:
        """The compression minimizing ``E L_μ(Ŵ)`` (the uncompressed ``W`` when none helps).

        ``E L_μ`` is piecewise linear in ``θ`` with breakpoints at the ``s_i``, so the minimum is at
        ``θ = 0`` or at one of the ``s_i``; all candidates are evaluated exactly and the smallest ``θ`` among
        the minimizers is returned (the least compression achieving the optimum).
        """
        s, c = self.variances, self.c
        cand = np.concatenate([[0.0], np.sort(s)])
        slope = 1 - 2 * c / s  # d/dθ of coordinate i's contribution while θ < s_i
        pop = np.array([math.fsum(np.minimum(th, s) * slope) for th in cand])
        best = int(np.flatnonzero(pop <= pop.min())[0])
        return self.risks(theta=float(cand[best]))

    # ----------------------------------------------------------------------------------------------------------
    # an information-theoretic bound on gen(Ŵ) valid for the squared loss
    # ----------------------------------------------------------------------------------------------------------
    def conditional_information(self, *, rate=None, theta=None) -> float:
        """``I(S;Ŵ | w*) = Σ_i ½ log(1 + a_i c / D_i)`` nats (``≤ I(S;Ŵ) = R``; ``inf`` when uncompressed)."""
        wf = self.water_filling(rate=rate, theta=theta)
        if wf.theta == 0:
            return math.inf
        s, c, dist = self.variances, self.c, wf.distortions
        a = 1 - dist / s
        return float(math.fsum(0.5 * np.log1p(a * c / dist)))

    def cgf(self, eta, *, rate=None, theta=None) -> float:
        """``Ψ(η) = E_{w*} log E_{P_{S|w*} ⊗ P_{Ŵ|w*}} exp(η (L_μ(Ŵ') − L_S(Ŵ')))`` in closed form, ``η ≥ 0``.

        Chapter 6, theorem ``ch06-thm-bound``, in the book's symbols: with ``u = ησ_ε²/n`` and
        ``φ = (n/σ_ε²)·2u²/(1+2u)``,
        ``Ψ = n[u − ½ log(1+2u)] + Σ_i [−½ log(1 − 2φv_i) + φ t_i²σ_w²λ_i/(1 − 2φv_i)]``, where
        ``v_i = a_i² ν + a_i D_i`` and ``ν = σ_ε²/n``; ``inf`` where ``2φv_i ≥ 1``.
        """
        eta = _number(eta, "eta")
        wf = self.water_filling(rate=rate, theta=theta)
        return self._cgf(eta, wf)

    def _cgf(self, eta: float, wf: WaterFilling) -> float:
        if not eta >= 0 or not math.isfinite(eta):
            raise ValueError(f"eta must be a finite non-negative number, got {eta!r}")
        s, nu, dist = self.variances, self.c, wf.distortions
        t = dist / s
        a = 1 - t
        v = a * a * nu + a * dist
        mean_sq = t * t * self.prior_var * self.eigenvalues
        u = eta * self.noise_var / self.n
        phi = (self.n / self.noise_var) * 2 * u * u / (1 + 2 * u)
        q = 1 - 2 * phi * v
        if (q <= 0).any():
            return math.inf
        first = self.n * (u - 0.5 * math.log1p(2 * u))
        return first + math.fsum(-0.5 * np.log(q) + phi * mean_sq / q)

    def cgf_monte_carlo(self, eta, *, rate=None, theta=None, outer: int = 200, inner: int = 2_000,
                        seed: int = 0) -> tuple[float, float]:
        """A simulation of :meth:`cgf` that uses none of its algebra (chapter 6, the check of ``ch06-thm-bound``).

        For each of ``outer`` draws of ``w* ~ N(0, σ_w² I)`` it draws ``inner`` independent pairs: a sample
        ``y = Xw* + ε`` and, from an *independent* sample, a compressed estimate ``Ŵ'`` (least squares on the
        design matrix, then the Gaussian test channel). It averages ``log mean exp(η(L_μ(Ŵ') − L_S(Ŵ')))`` over
        ``w*``, with ``L_μ(w) = σ_ε² + ‖X(w − w*)‖²/n`` and ``L_S(w) = ‖y − Xw‖²/n``. Returns ``(estimate, SE)``,
        the SE over the outer draws (the log-mean-exp has a small downward bias of order ``1/inner``).
        """
        eta = _number(eta, "eta")
        if not eta >= 0 or not math.isfinite(eta):
            raise ValueError(f"eta must be a finite non-negative number, got {eta!r}")
        outer = checks.integer(outer, "outer", low=2)
        inner = checks.integer(inner, "inner", low=2)
        rng = np.random.default_rng(checks.seed(seed))
        wf = self.water_filling(rate=rate, theta=theta)
        x, u, sqrt_lam = self.design, self.eigenvectors, np.sqrt(self.eigenvalues)
        a = 1 - wf.distortions / self.variances
        chan_sd = np.sqrt(a * wf.distortions)
        pinv = np.linalg.solve(x.T @ x, x.T)
        sn, n, d = math.sqrt(self.noise_var), self.n, self.d
        vals = np.empty(int(outer))
        for k in range(int(outer)):
            w_star = math.sqrt(self.prior_var) * rng.standard_normal(d)
            signal = x @ w_star
            y = signal + sn * rng.standard_normal((int(inner), n))
            w_other = (signal + sn * rng.standard_normal((int(inner), n))) @ pinv.T
            v_hat = a * ((w_other @ u) * sqrt_lam) + chan_sd * rng.standard_normal((int(inner), d))
            w_hat = (v_hat / sqrt_lam) @ u.T
            fit = w_hat @ x.T
            gap = self.noise_var + np.mean((fit - signal) ** 2, axis=1) - np.mean((y - fit) ** 2, axis=1)
            expo = eta * gap
            top = float(expo.max())
            vals[k] = top + math.log(float(np.mean(np.exp(expo - top))))
        return float(vals.mean()), float(vals.std(ddof=1) / math.sqrt(outer))

    def gen_bound(self, *, rate=None, theta=None, information: str = "rate") -> float:
        """``gen(Ŵ) ≤ inf_{η>0} (I + Ψ(η))/η`` (Donsker–Varadhan with the exact CGF :meth:`cgf`).

        ``information="rate"`` uses ``I = I(S;Ŵ) = R``; ``"conditional"`` uses the smaller ``I(S;Ŵ|w*)``
        (:meth:`conditional_information`). Infinite for the uncompressed estimate; ``0`` at rate 0.
        """
        if not isinstance(information, str) or information not in ("rate", "conditional"):
            raise ValueError(f"information must be 'rate' or 'conditional', got {information!r}")
        wf = self.water_filling(rate=rate, theta=theta)
        if wf.theta == 0:
            return math.inf
        if information == "rate":
            info = wf.rate
        else:
            a = 1 - wf.distortions / self.variances
            info = float(math.fsum(0.5 * np.log1p(a * self.c / wf.distortions)))
        if info <= 0:
            return 0.0
        # domain: 2βτ_max < 1  ⇔  2u²/(1+2u) < k with k = σ²/(2nτ_max)
        a = 1 - wf.distortions / self.variances
        tau_max = float(np.max(a * a * self.c + a * wf.distortions))
        sig2, n = self.noise_var, self.n
        if tau_max > 0:
            k = sig2 / (2 * n * tau_max)
            u_max = 0.5 * (k + math.sqrt(k * k + 2 * k))
        else:
            u_max = 1e6
        # (I + Ψ)/η is unimodal in η (Ψ is a CGF: convex, Ψ(0) = Ψ'(0) = 0); minimize over log u
        def objective(log_u):
            u = math.exp(log_u)
            eta = n * u / sig2
            val = self._cgf(eta, wf)
            return (info + val) / eta if math.isfinite(val) else math.inf

        hi = math.log(u_max) + math.log1p(-1e-12)
        lo = hi - 60.0
        grid = np.linspace(lo, hi, 241)
        vals = np.array([objective(g) for g in grid])
        j = int(np.argmin(vals))
        left, right = grid[max(j - 1, 0)], grid[min(j + 1, grid.size - 1)]
        res = optimize.minimize_scalar(objective, bounds=(left, right), method="bounded",
                                       options={"xatol": 1e-10})
        return float(min(res.fun, vals[j]))

    # ----------------------------------------------------------------------------------------------------------
    # Monte Carlo
    # ----------------------------------------------------------------------------------------------------------
    def monte_carlo(self, rate=None, draws: int = 10_000, seed: int = 0, *, theta=None) -> MonteCarloRisks:
        """Estimate the risks of :meth:`risks` by simulation, with standard errors.

        Each draw samples ``w* ~ N(0, σ_w² I)``, noise ``ε``, computes least squares ``W`` on the design matrix,
        compresses it with the optimal Gaussian test channel in the whitened coordinates, and evaluates
        ``L_S(Ŵ)`` on the training data, ``L_S(Ŵ) − L_S(W)``, and ``L_μ(Ŵ)`` on fresh noise ``ε'`` at the same
        inputs. Vectorized over draws (in chunks, so memory stays bounded; results depend only on ``seed``).
        """
        draws = checks.integer(draws, "draws", low=2)
        seed = checks.seed(seed)
        wf = self.water_filling(rate=rate, theta=theta)
        x, u, lam = self.design, self.eigenvectors, self.eigenvalues
        n, d = self.n, self.d
        s, dist = self.variances, wf.distortions
        a = 1 - dist / s
        chan_sd = np.sqrt(a * dist)
        sqrt_lam = np.sqrt(lam)
        pinv = np.linalg.solve(x.T @ x, x.T)  # (XᵀX)⁻¹Xᵀ, d × n
        to_white = u * sqrt_lam  # W ↦ V = W U Λ^{1/2} (row vectors)
        from_white = (u / sqrt_lam).T  # V ↦ W = V Λ^{-1/2} Uᵀ
        sw, sn = math.sqrt(self.prior_var), math.sqrt(self.noise_var)
        rng = np.random.default_rng(seed)
        chunk = max(1, min(int(draws), 4_000_000 // (2 * n + 3 * d)))
        out = {k: [] for k in ("distortion", "empirical", "population")}
        done = 0
        while done < draws:
            m = min(chunk, int(draws) - done)
            wstar = sw * rng.standard_normal((m, d))
            signal = wstar @ x.T
            y = signal + sn * rng.standard_normal((m, n))
            w = y @ pinv.T
            v = w @ to_white
            v_hat = a * v + chan_sd * rng.standard_normal((m, d))
            w_hat = v_hat @ from_white
            emp_w = np.mean((y - w @ x.T) ** 2, axis=1)
            emp = np.mean((y - w_hat @ x.T) ** 2, axis=1)
            y_test = signal + sn * rng.standard_normal((m, n))
            pop = np.mean((y_test - w_hat @ x.T) ** 2, axis=1)
            out["distortion"].append(emp - emp_w)
            out["empirical"].append(emp)
            out["population"].append(pop)
            done += m
        arr = {k: np.concatenate(v) for k, v in out.items()}
        arr["gen"] = arr["population"] - arr["empirical"]
        root = math.sqrt(draws)
        means = {k: float(np.mean(v)) for k, v in arr.items()}
        ses = {f"{k}_se": float(np.std(v, ddof=1) / root) for k, v in arr.items()}
        return MonteCarloRisks(rate=wf.rate, theta=wf.theta, draws=int(draws), **means, **ses)


def criterion_threshold(eigenvalues, n) -> float:
    """The SNR ``dσ_w²/σ_ε²`` at which optimal compression stops helping (chapter 6, ``ch06-thm-criterion``).

    With ``σ_w² = SNR·σ_ε²/d`` the criterion is ``κ(SNR) = (1/d) Σ_i 1/(1 + (n/d)·SNR·λ_i)``, continuous and
    strictly decreasing from 1 to 0, so compression helps iff ``SNR`` is below the unique root of ``κ = ½``,
    which this returns (Brent's method on ``log SNR``, to a relative ``1e-12``).
    """
    lam = _as_matrix(eigenvalues, "eigenvalues").reshape(-1)
    if lam.size == 0 or not np.isfinite(lam).all() or (lam <= 0).any():
        raise ValueError("eigenvalues must be a non-empty array of positive finite numbers")
    n = checks.integer(n, "n", low=1)
    d = lam.size
    scaled = n * lam / d

    def kappa_minus_half(log_snr):
        return float(np.mean(1.0 / (1.0 + scaled * math.exp(log_snr)))) - 0.5

    # κ = ½ needs SNR·(n/d)·λ between 1/max and 1/min of the scaled eigenvalues: bracket just outside
    lo, hi = -math.log(scaled.max()) - 1.0, -math.log(scaled.min()) + 1.0
    return math.exp(optimize.brentq(kappa_minus_half, lo, hi, xtol=1e-13, rtol=1e-13))


def threshold_survey(d: int, ratios, designs: int, seed: int = 0) -> list[dict]:
    """Chapter 6, exercise 3: the criterion's threshold SNR on many Gaussian designs, against two references.

    For each ratio ``n/d`` it draws ``designs`` Gaussian designs (rows i.i.d. ``N(0, I_d)``, seeds
    ``seed + k``) and compares the threshold ``SNR*`` of :func:`criterion_threshold` with ``d/n`` (the flat
    spectrum) and with Jensen's lower bound ``d/(n λ̄)``, ``λ̄ = tr Σ̂ / d``: since ``x ↦ 1/(1 + ax)`` is
    convex, ``κ(SNR) ≥ 1/(1 + (n/d)·SNR·λ̄)``, so ``SNR* ≥ d/(n λ̄)`` on *every* design. ``SNR* ≥ d/n`` is
    not implied. Returns one dict per ratio: ``n``, the smallest and median of ``SNR*·nλ̄/d`` and of
    ``SNR*·n/d``, and the number of designs with ``SNR* < d/n``.
    """
    d = checks.integer(d, "d", low=1)
    designs = checks.integer(designs, "designs", low=1)
    seed = checks.seed(seed)
    rows = []
    for ratio in _as_float_array(ratios, "ratios").reshape(-1):
        n = int(round(float(ratio) * d))
        if n <= d:
            raise ValueError(f"every ratio n/d must give n > d, got ratio {ratio!r}")
        vs_jensen, vs_flat = [], []
        for k in range(int(designs)):
            x = np.random.default_rng(seed + k).standard_normal((n, d))
            lam = np.linalg.eigvalsh(x.T @ x / n)
            snr = criterion_threshold(lam, n)
            vs_jensen.append(snr * n * float(lam.mean()) / d)
            vs_flat.append(snr * n / d)
        vs_jensen, vs_flat = np.array(vs_jensen), np.array(vs_flat)
        rows.append({"n/d": float(ratio), "n": n, "min jensen": float(vs_jensen.min()),
                     "median jensen": float(np.median(vs_jensen)), "min flat": float(vs_flat.min()),
                     "median flat": float(np.median(vs_flat)), "below d/n": int(np.sum(vs_flat < 1.0))})
    return rows
