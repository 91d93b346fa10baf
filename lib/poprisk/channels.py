"""The rate–distortion function of a discrete source by direct convex optimization over channels (chapter 3).

For a source ``p`` on ``m`` letters, a channel ``Q`` (rows ``Q(· | x)``) and a distortion matrix ``d``,

.. math:: I(p, Q) = \\sum_x p(x) \\sum_y Q(y|x) \\log\\frac{Q(y|x)}{(pQ)(y)}, \\qquad
          \\bar d(p, Q) = \\sum_x p(x) \\sum_y Q(y|x)\\, d(x, y),

and ``R(D) = min {I(p, Q) : d̄(p, Q) ≤ D}`` (:func:`rate_by_slsqp`, SLSQP on the ``m²`` entries with the
gradient ``∂I/∂Q(y|x) = p(x) log(Q(y|x)/(pQ)(y))``). Chapter 3 checks that ``I`` is convex and ``d̄`` linear
in ``Q`` — which makes ``R(D)`` convex — against this direct solution, independent of Blahut–Arimoto's slopes.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize
from threadpoolctl import threadpool_limits

from poprisk import checks

__all__ = ["channel_mi", "channel_distortion", "rate_by_slsqp"]


def _pq(p, q) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(p, dtype=float).reshape(-1)
    q = np.asarray(q, dtype=float)
    if q.shape != (p.size, q.shape[-1]) or q.ndim != 2:
        raise ValueError(f"channel must be a ({p.size}, outputs) matrix for a source of {p.size} letters, "
                         f"got shape {q.shape}")
    return p, q


def channel_mi(p, q) -> float:
    """``I(p, Q)`` in nats of source ``p`` through the channel matrix ``q`` (rows ``Q(· | x)``)."""
    p, q = _pq(p, q)
    out = p @ q
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(q > 0, q * np.log(q / out), 0.0)
    return float(p @ terms.sum(axis=1))


def channel_distortion(p, q, d) -> float:
    """``d̄(p, Q) = Σ_x p(x) Σ_y Q(y|x) d(x, y)``, the expected distortion of the channel."""
    p, q = _pq(p, q)
    return float(p @ (q * np.asarray(d, dtype=float)).sum(axis=1))


def rate_by_slsqp(p, d, target: float) -> float:
    """``R(target)`` of source ``p`` under the square distortion matrix ``d``: the least ``I(p, Q)`` over
    channels with ``d̄(p, Q) ≤ target`` (a convex problem, solved to ``ftol = 1e-12``)."""
    p = np.asarray(p, dtype=float).reshape(-1)
    d = np.asarray(d, dtype=float)
    m = p.size
    if d.shape != (m, m):
        raise ValueError(f"d must be a ({m}, {m}) distortion matrix, got shape {d.shape}")
    target = checks.real(target, "target", low=0.0)
    # both constraints are linear in Q: their exact Jacobians spare SLSQP m^2 finite differences a step
    rows_jac = np.kron(np.eye(m), np.ones(m))
    budget_jac = -(p[:, None] * d).ravel()
    rows_sum = {"type": "eq", "fun": lambda x: x.reshape(m, m).sum(axis=1) - 1, "jac": lambda x: rows_jac}
    budget = {"type": "ineq", "fun": lambda x: target - channel_distortion(p, x.reshape(m, m), d),
              "jac": lambda x: budget_jac[None, :]}

    def grad(x):
        q = x.reshape(m, m)
        return (p[:, None] * np.log(np.maximum(q, 1e-300) / (p @ q))).ravel()

    # SLSQP's small dense steps run an order of magnitude slower on a multi-threaded BLAS on a busy machine
    with threadpool_limits(limits=1, user_api="blas"):
        res = optimize.minimize(lambda x: channel_mi(p, x.reshape(m, m)), np.full(m * m, 1 / m), jac=grad,
                                method="SLSQP", bounds=[(1e-12, 1.0)] * (m * m), constraints=[rows_sum, budget],
                                options={"ftol": 1e-12, "maxiter": 2000})
    if not res.success:
        raise RuntimeError(f"SLSQP did not converge at D = {target}: {res.message}")
    return float(res.fun)
