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
* Fast rates (chapter 10): :func:`kl_inverse_fast_rate` (``kl⁻¹(q, c) ≤ q + sqrt(2qc) + 2c``) and
  :func:`catoni_bound` (the linearized form for a fixed ``C``, never below the kl form).
* :func:`encode_two_part` / :func:`decode_two_part` and :func:`encode_tensor` / :func:`decode_tensor` — the
  codes whose lengths are charged, as real bit strings, so decodability is tested, not assumed.

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
    "catoni_bound",
    "composition_bits",
    "decode_tensor",
    "decode_two_part",
    "elias_gamma_bits",
    "encode_tensor",
    "encode_two_part",
    "gamma_decode",
    "gamma_encode",
    "kl_inverse_fast_rate",
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


def kl_inverse_fast_rate(q, c) -> float:
    """The fast-rate relaxation of ``kl⁻¹(q, c)`` (chapter 10): ``q + c + sqrt(c² + 2qc) ≤ q + sqrt(2qc) + 2c``.

    For ``q ≤ p``, ``kl(q‖p) = ∫_q^p (t − q)/(t(1 − t)) dt ≥ (p − q)²/(2p)`` (the integrand's second factor is
    at least ``1/p``), so ``kl(q‖p) ≤ c`` forces ``(p − q)² ≤ 2pc``, whose larger root is returned. At
    ``q = 0`` it is ``2c``: the bound falls like ``1/n``, not ``1/√n`` as the Hoeffding form does."""
    q, c = _prob(q, "q"), _nonneg(c, "c")
    return q + c + math.sqrt(c * c + 2.0 * q * c)


def catoni_bound(train_error, code_bits, n, delta=0.05, *, C) -> float:
    """Catoni's form of the Occam bound for a fixed ``C > 0`` (chapter 10):
    ``(1 − exp(−C·L̂ − c)) / (1 − exp(−C))`` with ``c = (code_bits·log 2 + log(1/δ))/n``.

    It follows from the kl form for every ``C`` at once: the Donsker–Varadhan inequality with the test
    function ``−C·x`` gives ``kl(q‖p) ≥ −Cq − log(1 − p(1 − e^{−C}))``; the supremum over ``C`` is ``kl``
    itself, so the smallest Catoni bound over ``C`` is :func:`occam_bound`."""
    q = _prob(train_error, "train_error")
    if isinstance(C, bool) or not isinstance(C, numbers.Real) or not (C > 0 and math.isfinite(C)):
        raise ValueError(f"C must be a finite real number > 0, got {C!r}")
    c = _complexity(code_bits, n, delta)
    return min(1.0, -math.expm1(-C * q - c) / -math.expm1(-C))


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


# ------------------------------------------------------------------------------- the code itself (chapters 4, 10)
# The lengths above are only worth something if a decoder exists. These functions write the two-part code as an
# actual bit string ("0"/"1" characters: the book's tensors are small enough) and read it back, so the tests and
# chapters 4 and 10 can assert decode(encode(x)) == x and len(encode(x)) == two_part_code(x).total.

def gamma_encode(k) -> str:
    """The Elias-gamma codeword of the positive integer ``k``: ``⌊log₂ k⌋`` zeros, then ``k`` in binary."""
    k = _count(k, "k")
    return "0" * (k.bit_length() - 1) + format(k, "b")


def gamma_decode(bits: str, pos: int = 0) -> tuple[int, int]:
    """The integer whose gamma codeword starts at ``bits[pos]``, and the position after it."""
    zeros = 0
    while pos + zeros < len(bits) and bits[pos + zeros] == "0":
        zeros += 1
    end = pos + 2 * zeros + 1
    if end > len(bits):
        raise ValueError("bit string ends inside an Elias-gamma codeword")
    return int(bits[pos + zeros:end], 2), end


def _fixed(value: int, size: int) -> str:
    """``value`` in exactly ``(size − 1).bit_length()`` bits: the index of one of ``size`` equally likely
    objects (0 bits when ``size = 1``), i.e. ``⌈log₂ size⌉``."""
    width = (size - 1).bit_length()
    return format(value, f"0{width}b") if width else ""


def _read_fixed(bits: str, pos: int, size: int) -> tuple[int, int]:
    width = (size - 1).bit_length()
    if pos + width > len(bits):
        raise ValueError("bit string ends inside a fixed-length field")
    value = int(bits[pos:pos + width], 2) if width else 0
    if value >= size:
        raise ValueError(f"index {value} is out of range (< {size}): not a codeword")
    return value, pos + width


def _multinomial(counts) -> int:
    total, out = 0, 1
    for c in counts:
        total += c
        out *= math.comb(total, c)
    return out


def _rank_labels(labels, counts) -> int:
    """Lexicographic index of the label sequence among all sequences with these counts (exact integers)."""
    counts, rank = list(counts), 0
    remaining, size = len(labels), _multinomial(counts)
    for s in labels:
        # sequences that agree so far and put a smaller label here come first
        below = sum(counts[:s])
        rank += size * below // remaining
        size = size * counts[s] // remaining
        counts[s] -= 1
        remaining -= 1
    return rank


def _unrank_labels(rank: int, counts) -> list[int]:
    counts, out = list(counts), []
    remaining, size = sum(counts), _multinomial(counts)
    for _ in range(remaining):
        below = 0
        for s, c in enumerate(counts):
            block = size * c // remaining
            if rank < below + block:
                break
            below += block
        rank -= below
        size = size * counts[s] // remaining
        counts[s] -= 1
        remaining -= 1
        out.append(s)
    return out


def _value_words(values: np.ndarray, value_bits: int) -> list[int]:
    """The stored words of codebook values: IEEE bit patterns for 16/32 bits, else integers in [0, 2^b)."""
    if value_bits in (16, 32):
        ftype, itype = (np.float16, np.uint16) if value_bits == 16 else (np.float32, np.uint32)
        words = values.astype(ftype)
        if not np.array_equal(words.astype(np.float64), values.astype(np.float64)):
            raise ValueError(f"values are not exactly representable in {value_bits}-bit floats")
        return [int(w) for w in words.view(itype)]
    if not np.array_equal(values, np.round(values)) or values.min() < 0 or values.max() >= 2**value_bits:
        raise ValueError(f"with value_bits={value_bits} the values must be integers in [0, 2^{value_bits})")
    return [int(v) for v in values]


def _word_values(words: list[int], value_bits: int) -> np.ndarray:
    if value_bits in (16, 32):
        itype, ftype = (np.uint16, np.float16) if value_bits == 16 else (np.uint32, np.float32)
        return np.array(words, dtype=itype).view(ftype).astype(np.float64)
    return np.array(words, dtype=np.float64)


def encode_two_part(values, *, value_bits: int = 32) -> str:
    """The two-part code of :func:`two_part_code` as a bit string: ``γ(K)``; the ``K`` distinct values in
    increasing order, ``value_bits`` each; the counts as the index of a composition of ``n`` into ``K``
    positive parts (``⌈log₂ C(n−1, K−1)⌉`` bits); the labels as their index among the sequences with these
    counts (``⌈log₂ n!/∏n_k!⌉`` bits). Its length is ``two_part_code(values, value_bits=...).total``;
    :func:`decode_two_part` inverts it given ``n`` (chapters 4 and 10)."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if v.size == 0 or not np.isfinite(v).all():
        raise ValueError("values must be a non-empty array of finite numbers")
    value_bits = _count(value_bits, "value_bits")
    book, labels, counts = np.unique(v, return_inverse=True, return_counts=True)
    n, k = v.size, book.size
    cuts = np.cumsum(counts)[:-1] - 1  # K − 1 distinct cut points in [0, n − 2]
    composition = sum(math.comb(int(c), i + 1) for i, c in enumerate(cuts))  # combinatorial number system
    return (gamma_encode(k) + "".join(format(w, f"0{value_bits}b") for w in _value_words(book, value_bits))
            + _fixed(composition, math.comb(n - 1, k - 1))
            + _fixed(_rank_labels(labels.reshape(-1).tolist(), counts.tolist()), _multinomial(counts.tolist())))


def decode_two_part(bits: str, n, *, value_bits: int = 32, pos: int = 0) -> tuple[np.ndarray, int]:
    """The ``n`` values coded by :func:`encode_two_part` starting at ``bits[pos]``, and the position after
    the codeword (so codewords can be concatenated: the code is prefix-free)."""
    n, value_bits = _count(n, "n"), _count(value_bits, "value_bits")
    k, pos = gamma_decode(bits, pos)
    if k > n:
        raise ValueError(f"codeword says K={k} values for n={n} entries: not a codeword")
    if pos + k * value_bits > len(bits):
        raise ValueError("bit string ends inside the codebook")
    words = [int(bits[pos + i * value_bits:pos + (i + 1) * value_bits], 2) for i in range(k)]
    pos += k * value_bits
    composition, pos = _read_fixed(bits, pos, math.comb(n - 1, k - 1))
    cuts = []
    for i in range(k - 1, 0, -1):  # greedy inverse of the combinatorial number system
        c = i - 1
        while math.comb(c + 1, i) <= composition:
            c += 1
        composition -= math.comb(c, i)
        cuts.append(c)
    edges = [0] + [c + 1 for c in reversed(cuts)] + [n]
    counts = [b - a for a, b in zip(edges[:-1], edges[1:])]
    if min(counts) < 1:
        raise ValueError("composition index does not give positive counts: not a codeword")
    rank, pos = _read_fixed(bits, pos, _multinomial(counts))
    book = _word_values(words, value_bits)
    return book[np.array(_unrank_labels(rank, counts), dtype=np.int64)], pos


def encode_tensor(values) -> str:
    """The code of :func:`tensor_code_bits` as bits: flag ``1`` + the two-part code (32-bit values), or flag
    ``0`` + the raw float32 words, whichever is shorter (ties: the two-part code)."""
    v = np.asarray(values, dtype=np.float32).reshape(-1)
    two = encode_two_part(v, value_bits=32)
    if len(two) <= 32 * v.size:
        return "1" + two
    return "0" + "".join(format(int(w), "032b") for w in v.view(np.uint32))


def decode_tensor(bits: str, n, pos: int = 0) -> tuple[np.ndarray, int]:
    """Inverse of :func:`encode_tensor` for a tensor of ``n`` entries: ``(float32 values, next position)``."""
    n = _count(n, "n")
    if pos >= len(bits):
        raise ValueError("bit string ends before the flag bit")
    if bits[pos] == "1":
        out, end = decode_two_part(bits, n, value_bits=32, pos=pos + 1)
        return out.astype(np.float32), end
    end = pos + 1 + 32 * n
    if end > len(bits):
        raise ValueError("bit string ends inside a raw float32 tensor")
    words = np.array([int(bits[i:i + 32], 2) for i in range(pos + 1, end, 32)], dtype=np.uint32)
    return words.view(np.float32), end
