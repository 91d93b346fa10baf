"""Description-length (Occam) and PAC-Bayes bounds, and the code lengths they charge (chapter 10).

A bound for *one* trained network, with probability ``1 − δ`` over the training sample ``S`` of ``n`` i.i.d.
points. Let ``L̂ = L^{01}_S(h)`` be the training 0–1 error of a classifier ``h`` and ``L = L^{01}_μ(h)`` its
population 0–1 error; ``kl(q‖p) = q log(q/p) + (1−q) log((1−q)/(1−p))`` is the binary KL divergence (nats).

* **Occam bound** (Langford & Caruana 2001; Langford 2005, "kl" form): for a prefix code ``c`` fixed before
  ``S`` is seen, with probability ``≥ 1 − δ`` simultaneously for every ``h``,
  ``kl(L̂ ‖ L) ≤ (|c(h)| log 2 + log(1/δ)) / n``, so ``L ≤ kl⁻¹(L̂, ·)`` (:func:`occam_bound`). Its Hoeffding
  relaxation ``L ≤ L̂ + sqrt((|c(h)| log 2 + log(1/δ)) / (2n))`` is :func:`occam_hoeffding_bound`.
* **PAC-Bayes-kl bound** (Seeger 2002; Maurer 2004): for a prior ``P`` and any posterior ``Q``,
  ``kl(L̂_Q ‖ L_Q) ≤ (KL(Q‖P) + log(2√n/δ)) / n`` (:func:`pac_bayes_kl_bound`). A point mass ``Q = δ_h`` on
  the prior ``P(h) = 2^{−|c(h)|}`` has ``KL = |c(h)| log 2``: the Occam bound with a slightly larger constant.
* :func:`kl_inverse_upper` — ``kl⁻¹(q, c) = max{p ∈ [q, 1] : kl(q‖p) ≤ c}``, by bisection in float64.

Code lengths (bits) of *prefix* codes, so that Kraft's inequality holds and, by the source-coding theorem,
``H(Ŵ) ≤ E|c(Ŵ)| · log 2`` nats for any random network ``Ŵ`` (chapter 10's upper bound on ``H(Ŵ)``):

* :func:`elias_gamma_bits` — a positive integer of unknown size (``2⌊log₂ k⌋ + 1`` bits);
* :func:`log2_multinomial` and :func:`composition_bits` — the enumerative (two-part) code of a label
  sequence: first the label counts, then the index of the sequence among all with those counts;
* :func:`two_part_code` — a tensor whose entries take ``K`` distinct values: ``K`` (Elias gamma), the
  codebook (``value_bits`` per value), the counts, the labels; never more than ``n·Ĥ(labels) +
  value_bits·K`` plus the small count header (:class:`CodeLength`);
* :func:`tensor_code_bits` / :func:`network_code_bits` — every parameter tensor of a network coded by the
  cheaper of "raw float32" and the two-part code (one flag bit says which), the biases included.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from poprisk import checks

__all__ = [
    "CodeLength",
    "binary_kl",
    "composition_bits",
    "elias_gamma_bits",
    "kl_inverse_upper",
    "log2_multinomial",
    "network_code_bits",
    "occam_bound",
    "occam_hoeffding_bound",
    "pac_bayes_kl_bound",
    "tensor_code_bits",
    "two_part_code",
]

LN2 = math.log(2.0)


# ------------------------------------------------------------------------------------------------ checks

def _prob(value, name: str) -> float:
    return checks.real(value, name, low=0.0, high=1.0)


def _nonneg(value, name: str):
    """A finite number >= 0; an integer stays an exact (possibly huge) Python ``int``."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return checks.integer(value, name, low=0)
    return checks.real(value, name, low=0.0)


def _count(value, name: str, low: int = 1) -> int:
    return checks.integer(value, name, low=low)


def _delta(delta) -> float:
    delta = _prob(delta, "delta")
    if not 0.0 < delta < 1.0:
        raise ValueError(f"delta must lie in (0, 1), got {delta!r}")
    return delta


# ------------------------------------------------------------------------------------------ kl and bounds

def binary_kl(q, p) -> float:
    """``kl(q‖p)`` in nats for Bernoulli parameters ``q, p ∈ [0, 1]`` (``0 log 0 = 0``; ``inf`` when ``p``
    is 0 or 1 and ``q`` is not)."""
    q, p = _prob(q, "q"), _prob(p, "p")
    out = 0.0
    for a, b in ((q, p), (1.0 - q, 1.0 - p)):
        if a > 0.0:
            if b == 0.0:
                return math.inf
            out += a * math.log(a / b)
    return max(out, 0.0)


def kl_inverse_upper(q, c, *, tol: float = 1e-12) -> float:
    """``max{p ∈ [q, 1] : kl(q‖p) ≤ c}``: the largest population error compatible with training error ``q``
    at complexity ``c`` nats per example. ``kl(q‖·)`` increases on ``[q, 1]``, so bisection finds it to
    ``tol``, returning the upper end of the final bracket (so the result is never below the exact
    inverse: a bound stays a bound). ``c = 0`` gives ``q``; as ``c → ∞`` the inverse tends to 1."""
    q, c = _prob(q, "q"), float(_nonneg(c, "c"))
    tol = checks.real(tol, "tol", low=0.0, low_open=True)
    if c == 0.0 or q == 1.0:
        return q
    lo, hi = q, 1.0
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        if not lo < mid < hi:  # adjacent floats: no tol below the spacing of doubles can be reached
            break
        if binary_kl(q, mid) <= c:
            lo = mid
        else:
            hi = mid
    return hi


def _complexity(code_bits, n, delta) -> float:
    """``(code_bits·log 2 + log(1/δ)) / n`` (``inf`` when it exceeds the float range), exact integers of any
    size accepted: ``int / int`` is correctly rounded in Python, ``float(int)`` would overflow."""
    bits, n, delta = _nonneg(code_bits, "code_bits"), _count(n, "n"), _delta(delta)
    log_delta = -math.log(delta)  # not log(1/δ): 1/δ overflows for a subnormal δ
    if n < 2**53 and (isinstance(bits, float) or bits < 2**53):
        return (bits * LN2 + log_delta) / n
    try:
        per_point = bits / n if isinstance(bits, int) else bits * (1 / n)
    except OverflowError:
        return math.inf
    return per_point * LN2 + log_delta * (1 / n)


def occam_bound(train_error, code_bits, n, delta=0.05) -> float:
    """Occam (kl) bound on the population 0–1 error of a classifier described in ``code_bits`` bits by a
    prefix code fixed before the ``n`` training points were drawn:
    ``kl⁻¹(train_error, (code_bits·log 2 + log(1/δ))/n)``, valid with probability ``≥ 1 − δ``."""
    q = _prob(train_error, "train_error")
    c = _complexity(code_bits, n, delta)
    return 1.0 if math.isinf(c) else kl_inverse_upper(q, c)


def occam_hoeffding_bound(train_error, code_bits, n, delta=0.05) -> float:
    """The Hoeffding form ``train_error + sqrt((code_bits·log 2 + log(1/δ)) / (2n))`` (not clipped at 1, so
    a reader sees how far past 1 a vacuous bound is). Never smaller than :func:`occam_bound` (Pinsker)."""
    q = _prob(train_error, "train_error")
    return q + math.sqrt(_complexity(code_bits, n, delta) / 2.0)


def pac_bayes_kl_bound(train_error, kl, n, delta=0.05) -> float:
    """PAC-Bayes-kl bound (Seeger 2002; Maurer 2004): ``kl⁻¹(train_error, (KL(Q‖P) + log(2√n/δ))/n)`` for
    a posterior ``Q`` with Gibbs training error ``train_error`` and divergence ``kl`` (nats) from a prior
    fixed before the sample."""
    q = _prob(train_error, "train_error")
    kl, n, delta = _nonneg(kl, "kl"), _count(n, "n"), _delta(delta)
    try:  # logs of the parts: sqrt(n) and 1/δ overflow for huge n and tiny δ
        c = (kl + LN2 + 0.5 * math.log(n) - math.log(delta)) * (1 / n)
    except OverflowError:  # kl beyond the float range: the bound is vacuous
        return 1.0
    return 1.0 if math.isinf(c) else kl_inverse_upper(q, c)


# ---------------------------------------------------------------------------------------------- code lengths

def elias_gamma_bits(k) -> int:
    """Length of the Elias-gamma codeword of the positive integer ``k``: ``2⌊log₂ k⌋ + 1`` bits."""
    k = _count(k, "k")
    return 2 * (k.bit_length() - 1) + 1


def log2_multinomial(counts) -> float:
    """``log₂( n! / ∏ n_k! )`` with ``n = Σ n_k``: the number of bits that index one label sequence among
    all sequences with these counts (float64 via ``lgamma``)."""
    c = np.asarray(counts)
    if c.ndim != 1 or c.size == 0 or not np.issubdtype(c.dtype, np.integer) or (c < 0).any():
        raise ValueError(f"counts must be a non-empty 1-D array of non-negative integers, got {counts!r}")
    n = int(c.sum())
    return (math.lgamma(n + 1) - sum(math.lgamma(int(v) + 1) for v in c)) / LN2


#: up to this many symbols the label code length is computed exactly with Python integers
EXACT_MULTINOMIAL_N = 50_000


def multinomial(counts) -> int:
    """``n! / ∏ n_k!`` exactly, as a product of binomial coefficients (Python integers)."""
    out, total = 1, 0
    for v in counts:
        total += int(v)
        out *= math.comb(total, int(v))
    return out


def label_bits(counts) -> int:
    """``⌈log₂ multinomial(counts)⌉``: exact (integer ``bit_length``) for up to :data:`EXACT_MULTINOMIAL_N`
    symbols; above, from :func:`log2_multinomial` rounded up with a margin, so it may be one bit above the
    exact value but is never below it."""
    c = np.asarray(counts)
    if int(c.sum()) <= EXACT_MULTINOMIAL_N:
        return (multinomial(c) - 1).bit_length()
    return math.ceil(log2_multinomial(c) * (1 + 1e-12) + 1e-9)


def composition_bits(n, k) -> int:
    """Bits of a fixed-length code for the counts ``(n_1, …, n_k)`` of ``n`` labels, each count ≥ 1:
    ``⌈log₂ C(n − 1, k − 1)⌉`` (the number of such compositions of ``n``)."""
    n, k = _count(n, "n"), _count(k, "k")
    if k > n:
        raise ValueError(f"k (number of used values) cannot exceed n, got k={k}, n={n}")
    return (math.comb(n - 1, k - 1) - 1).bit_length()  # exact ⌈log₂ C⌉, whatever the size of C


@dataclass(frozen=True)
class CodeLength:
    """Parts (bits) of the two-part code of ``n`` symbols taking ``k`` distinct values: ``header`` (``k``
    in Elias gamma), ``codebook`` (``k·value_bits``), ``counts`` (:func:`composition_bits`) and ``labels``
    (``⌈log₂ multinomial⌉``). ``entropy_bits = n·Ĥ(labels) + codebook`` is the estimate of chapter 9's
    compression ratio, for comparison."""

    n: int
    k: int
    header: int
    codebook: int
    counts: int
    labels: int
    entropy_bits: float

    @property
    def total(self) -> int:
        return self.header + self.codebook + self.counts + self.labels


def two_part_code(values, *, value_bits: int = 32) -> CodeLength:
    """The two-part code of a quantized tensor: its distinct values form the codebook (``value_bits``
    each: 32 for float32 values, which are then stored exactly), then the counts and labels of its
    entries. The decoder knows ``n`` (the architecture fixes the tensor's shape)."""
    v = np.asarray(values).reshape(-1)
    if v.size == 0 or not (np.issubdtype(v.dtype, np.integer) or np.issubdtype(v.dtype, np.floating)) \
            or not np.isfinite(v).all():
        raise ValueError(f"values must be a non-empty array of finite real numbers, got dtype {v.dtype} "
                         f"and {v.size} entries")
    value_bits = _count(value_bits, "value_bits")
    _, counts = np.unique(v, return_counts=True)
    k, n = int(counts.size), int(v.size)
    p = counts / n
    entropy = float(-(p * np.log2(p)).sum()) * n
    return CodeLength(n=n, k=k, header=elias_gamma_bits(k), codebook=k * value_bits,
                      counts=composition_bits(n, k), labels=label_bits(counts),
                      entropy_bits=entropy + k * value_bits)


def tensor_code_bits(values) -> int:
    """Bits for one float32 tensor: one flag bit, then the cheaper of the raw ``32·n`` bits and the
    two-part code (:func:`two_part_code` with 32-bit values). A prefix code for every float32 tensor of a
    known shape."""
    v = np.asarray(values, dtype=np.float32).reshape(-1)
    return 1 + min(32 * v.size, two_part_code(v, value_bits=32).total)


def network_code_bits(model) -> dict:
    """Bits of the prefix code that writes every parameter tensor of ``model`` (a torch module, float32
    weights) with :func:`tensor_code_bits`, in ``named_parameters`` order: ``{name: bits}`` plus
    ``"total"``. Quantized layers pay the two-part code; unquantized tensors (e.g. biases) 32 bits per entry
    (+1 flag bit)."""
    params = getattr(model, "named_parameters", None)
    if params is None:
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    named = list(params())
    for name, p in named:  # the code charges 32 bits per raw value: other widths would be mis-charged
        if str(p.dtype) != "torch.float32":
            raise TypeError(f"model parameter {name} is {p.dtype}; network_code_bits codes float32 weights")
    out = {name: tensor_code_bits(p.detach().cpu().numpy()) for name, p in named}
    if not out:
        raise ValueError("model has no parameters")
    out["total"] = sum(out.values())
    return out
