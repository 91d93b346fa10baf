"""Tests of poprisk.bounds against independent computations (scipy, brute force, Monte Carlo)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from poprisk import bounds
from scipy import optimize, special, stats


def scipy_kl(q, p):
    return float(special.rel_entr(q, p) + special.rel_entr(1 - q, 1 - p))


def scipy_kl_inverse(q, c):
    if c == 0:
        return q
    return optimize.brentq(lambda p: scipy_kl(q, p) - c, q, 1 - 1e-300, xtol=1e-14)


probs = st.floats(0.0, 0.99, allow_nan=False)


@given(probs, st.floats(0.001, 0.999))
def test_binary_kl_matches_scipy(q, p):
    assert bounds.binary_kl(q, p) == pytest.approx(scipy_kl(q, p), rel=1e-10, abs=1e-12)


@given(probs, st.floats(1e-4, 5.0))
@settings(max_examples=60)
def test_kl_inverse_matches_scipy_and_is_conservative(q, c):
    p = bounds.kl_inverse_upper(q, c)
    ref = scipy_kl_inverse(q, c)
    assert p == pytest.approx(ref, abs=1e-9)
    assert p >= q
    # the returned value is at or just above the exact inverse: kl is at least c there (or p = 1)
    assert p >= ref - 1e-13


def test_kl_inverse_closed_form_at_zero_training_error():
    for c in (0.01, 0.3, 2.0):
        assert bounds.kl_inverse_upper(0.0, c) == pytest.approx(-math.expm1(-c), abs=1e-10)
    assert bounds.kl_inverse_upper(0.2, 0.0) == 0.2


@given(probs, st.floats(0.0, 1e5), st.integers(10, 10**6))
@settings(max_examples=60)
def test_occam_forms_are_ordered(q, bits, n):
    kl_form = bounds.occam_bound(q, bits, n, 0.05)
    assert q <= kl_form <= bounds.occam_hoeffding_bound(q, bits, n, 0.05) + 1e-9
    # PAC-Bayes with the point-mass KL = bits·log 2 pays log(2√n) more than Occam
    assert bounds.pac_bayes_kl_bound(q, bits * math.log(2), n, 0.05) >= kl_form - 1e-12


def test_occam_bound_holds_with_probability_one_minus_delta():
    """A countable class: hypothesis j (code length j + 1 bits) has true error p_j. The bound must hold
    for all of them at once on at least a 1 − δ fraction of samples."""
    rng = np.random.default_rng(0)
    n, delta, reps = 200, 0.1, 2000
    p = np.linspace(0.05, 0.5, 12)
    lengths = np.arange(1, p.size + 1)  # Kraft: Σ 2^{-l} < 1
    errs = rng.binomial(n, p, size=(reps, p.size)) / n
    fail = 0
    for row in errs:
        fail += any(bounds.occam_bound(q, b, n, delta) < pj for q, b, pj in zip(row, lengths, p))
    assert fail / reps <= delta


def test_occam_bound_is_not_loose_for_one_hypothesis():
    """With one hypothesis (0 bits) the bound is a Chernoff bound: its failure rate is a sizeable
    fraction of δ, i.e. it is not vacuous by construction."""
    rng = np.random.default_rng(1)
    n, delta, p = 500, 0.2, 0.3
    q = rng.binomial(n, p, size=4000) / n
    fail = np.mean([bounds.occam_bound(v, 0, n, delta) < p for v in q])
    assert 0.005 < fail <= delta


def test_bad_input():
    with pytest.raises(ValueError, match="q"):
        bounds.binary_kl(1.5, 0.5)
    with pytest.raises(TypeError, match="train_error"):
        bounds.occam_bound("0.1", 10, 100)
    with pytest.raises(ValueError, match="delta"):
        bounds.occam_bound(0.1, 10, 100, delta=0.0)
    with pytest.raises(ValueError, match="n"):
        bounds.occam_bound(0.1, 10, 0)
    with pytest.raises(ValueError, match="code_bits"):
        bounds.occam_bound(0.1, -1, 100)
    with pytest.raises(ValueError, match="k"):
        bounds.elias_gamma_bits(0)
    with pytest.raises(ValueError, match="counts"):
        bounds.log2_multinomial([1.5, 2])
    with pytest.raises(ValueError, match="values"):
        bounds.two_part_code([np.nan, 1.0])
    with pytest.raises(TypeError, match="model"):
        bounds.network_code_bits(np.zeros(3))


def elias_gamma_codeword(k):
    b = bin(k)[2:]
    return "0" * (len(b) - 1) + b


@given(st.integers(1, 10**12))
def test_elias_gamma_length(k):
    assert bounds.elias_gamma_bits(k) == len(elias_gamma_codeword(k))


def test_elias_gamma_is_prefix_free_and_satisfies_kraft():
    words = [elias_gamma_codeword(k) for k in range(1, 300)]
    assert not any(a != b and b.startswith(a) for a in words for b in words)
    assert sum(2.0 ** -bounds.elias_gamma_bits(k) for k in range(1, 10**5)) <= 1.0


@given(st.lists(st.integers(0, 30), min_size=1, max_size=6))
def test_log2_multinomial_matches_scipy(counts):
    n = sum(counts)
    ref = math.log2(math.factorial(n)) - sum(math.log2(math.factorial(c)) for c in counts)
    assert bounds.log2_multinomial(np.array(counts)) == pytest.approx(ref, abs=1e-8)


def test_multinomial_counts_sequences_by_enumeration():
    labels = (0, 0, 1, 2, 2, 2)
    perms = set(itertools.permutations(labels))
    assert 2 ** bounds.log2_multinomial(np.bincount(labels)) == pytest.approx(len(perms))
    assert bounds.composition_bits(6, 3) == math.ceil(math.log2(sum(
        1 for c in itertools.product(range(1, 7), repeat=3) if sum(c) == 6)))


@given(st.lists(st.integers(0, 7), min_size=1, max_size=400))
def test_two_part_code_is_below_entropy_estimate_plus_header(labels):
    lab = np.array(labels)
    code = bounds.two_part_code(lab.astype(np.float32) / 8)
    _, counts = np.unique(lab, return_counts=True)
    p = counts / lab.size
    empirical = lab.size * float(stats.entropy(p, base=2))
    assert code.k == counts.size and code.n == lab.size
    assert code.labels <= empirical + 1 + 1e-9  # log multinomial <= n Ĥ
    assert code.total <= code.entropy_bits + code.header + code.counts + 1 + 1e-9
    assert code.entropy_bits == pytest.approx(empirical + 32 * counts.size)


def test_network_code_bits_counts_quantized_and_raw_tensors():
    layer = torch.nn.Linear(50, 4)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([-0.5, 0.25])[torch.arange(200) % 2].reshape(4, 50))
    out = bounds.network_code_bits(layer)
    two = bounds.two_part_code(layer.weight.detach().numpy())
    assert out["weight"] == 1 + two.total and two.k == 2
    assert out["bias"] == 1 + 32 * 4  # 4 distinct random values: raw float32 is cheaper
    with torch.no_grad():
        layer.bias.zero_()
    assert bounds.network_code_bits(layer)["bias"] == 1 + 1 + 32  # one value: gamma(1) + codebook
    assert out["total"] == out["weight"] + out["bias"]


def test_pac_bayes_kl_pays_log_two_sqrt_n_exactly():
    # an independent kl inverse at (KL + ln(2 sqrt(n)/delta)) / n: dropping or doubling the term fails
    for q, kl, n, delta in ((0.0, 5.0, 100, 0.05), (0.1, 50.0, 3000, 0.05), (0.3, 0.0, 20, 0.1)):
        ref = scipy_kl_inverse(q, (kl + math.log(2 * math.sqrt(n) / delta)) / n)
        assert bounds.pac_bayes_kl_bound(q, kl, n, delta) == pytest.approx(ref, abs=1e-9)


@given(probs, st.floats(1e-4, 2.0))
@settings(max_examples=60)
def test_fast_rate_relaxation_is_above_kl_inverse_and_tight_at_zero(q, c):
    assert bounds.kl_inverse_fast_rate(q, c) >= scipy_kl_inverse(q, c) - 1e-12
    assert bounds.kl_inverse_fast_rate(q, c) <= q + math.sqrt(2 * q * c) + 2 * c + 1e-12
    assert bounds.kl_inverse_fast_rate(0.0, c) == pytest.approx(2 * c)


@given(st.floats(0.0, 0.5), st.floats(0.0, 3000.0), st.integers(50, 10**5))
@settings(max_examples=40)
def test_catoni_is_never_below_kl_form_and_meets_it_at_the_best_c(q, bits, n):
    kl_form = bounds.occam_bound(q, bits, n, 0.05)
    grid = [bounds.catoni_bound(q, bits, n, 0.05, C=C) for C in np.geomspace(1e-3, 1e3, 3001)]
    assert min(grid) >= kl_form - 1e-9
    assert min(grid) <= kl_form + 1e-3 * max(kl_form, 1e-2)


@given(st.integers(1, 40), st.integers(1, 6), st.integers(0, 2**32 - 1))
@settings(max_examples=80, deadline=None)
def test_two_part_code_round_trips_at_its_claimed_length(n, k, seed):
    rng = np.random.default_rng(seed)
    v = rng.normal(size=k).astype(np.float32)[rng.integers(0, k, size=n)]
    word = bounds.encode_two_part(v, value_bits=32)
    assert len(word) == bounds.two_part_code(v, value_bits=32).total
    out, end = bounds.decode_two_part(word + "1101", n, value_bits=32)  # a following codeword
    assert end == len(word) and np.array_equal(out.astype(np.float32), v)
    t = bounds.encode_tensor(v)
    assert len(t) == bounds.tensor_code_bits(v)
    back, end = bounds.decode_tensor(t, n)
    assert end == len(t) and np.array_equal(back, v)


def test_two_part_code_is_prefix_free_with_the_exact_kraft_sum():
    # every tensor of 6 entries over 4 two-bit values: distinct codewords, none a prefix of another
    words = sorted(bounds.encode_two_part(np.array(v), value_bits=2)
                   for v in itertools.product(range(4), repeat=6))
    assert len(set(words)) == 4**6
    assert not any(b.startswith(a) for a, b in zip(words[:-1], words[1:]))
    # K = 1: 4 tensors of 1 + 2 bits; K = 2: C(4,2) codebooks, 2^6 - 2 sequences (count index 3 bits,
    # label index ceil(log2 C(6, n1)) bits), 3 + 4 bits of header and codebook
    k2 = 6 * sum(math.comb(6, a) * 2.0 ** -(7 + 3 + (math.comb(6, a) - 1).bit_length()) for a in range(1, 6))
    by_k = {}
    for w in words:
        k, _ = bounds.gamma_decode(w)
        by_k[k] = by_k.get(k, 0.0) + 2.0 ** -len(w)
    assert by_k[1] == 4 * 2.0**-3 and by_k[2] == pytest.approx(k2, rel=1e-12)
    assert sum(by_k.values()) <= 1.0


def test_decoders_reject_what_is_not_a_codeword():
    with pytest.raises(ValueError, match="ends inside"):
        bounds.decode_two_part("1" + "0" * 5, 10, value_bits=32)
    with pytest.raises(ValueError, match="ends inside"):
        bounds.gamma_decode("000")
    assert bounds.gamma_encode(1) == "1" and bounds.gamma_encode(5) == "00101"
    assert bounds.gamma_decode("00101") == (5, 5)


# ------------------------------------------------- hostile inputs and the float range (issue 22, causes 1-3)

@pytest.mark.parametrize("tol", [1e-17, 1e-300, 5e-324, 1e-12])
@pytest.mark.parametrize("q, c", [(0.1, 0.5), (0.0, 3.0), (0.5, 1e-8), (1e-300, 700.0)])
def test_kl_inverse_returns_at_any_tol_and_stays_a_bound(q, c, tol):
    p = bounds.kl_inverse_upper(q, c, tol=tol)
    assert q <= p <= 1.0 and bounds.binary_kl(q, p) >= c * (1 - 1e-9) or p == 1.0
    assert p >= bounds.kl_inverse_upper(q, c, tol=1e-3) - 1e-3


@pytest.mark.parametrize("tol, exc", [(0, ValueError), (-1e-3, ValueError), (float("nan"), ValueError),
                                      (float("inf"), ValueError), (True, TypeError), ("1e-9", TypeError),
                                      (None, TypeError)])
def test_kl_inverse_tol_is_checked(tol, exc):
    with pytest.raises(exc, match="tol"):
        bounds.kl_inverse_upper(0.1, 0.5, tol=tol)


@pytest.mark.parametrize("n", [10, 1000, 10**6, 10**30, 10**300])
@pytest.mark.parametrize("k", [1, 2, 3, 7])
def test_composition_bits_is_the_exact_ceiling(n, k):
    c = math.comb(n - 1, k - 1)
    bits = bounds.composition_bits(n, k)
    assert 2 ** bits >= c and (bits == 0 or 2 ** (bits - 1) < c)


@pytest.mark.parametrize("counts", [[1], [2, 2], [5, 3, 1], [1000, 1000], [4096, 4096, 1, 1], [30000, 17, 3]])
def test_label_bits_is_the_exact_ceiling_for_moderate_n(counts):
    m = bounds.multinomial(counts)
    assert m == math.factorial(sum(counts)) // math.prod(math.factorial(v) for v in counts)
    bits = bounds.two_part_code(np.repeat(np.arange(len(counts), dtype=np.float32), counts)).labels
    assert 2 ** bits >= m and (bits == 0 or 2 ** (bits - 1) < m)


def test_label_bits_never_below_exact_for_large_n():
    counts = np.array([40000, 30000, 1])
    exact = (bounds.multinomial(counts) - 1).bit_length()
    assert bounds.label_bits(counts) >= exact  # above the exact threshold too (here it is exact)
    big = np.array([60000, 1])
    assert bounds.label_bits(big) >= (bounds.multinomial(big) - 1).bit_length()


@pytest.mark.parametrize("bits, n, want", [(10**400, 100, 1.0), (10, 10**400, 0.1), (10**400, 10**399, None),
                                           (2**60, 2**60, None)], ids=["huge-bits", "huge-n", "both", "2^60"])
def test_occam_bounds_take_huge_integers(bits, n, want):
    b = bounds.occam_bound(0.1, bits, n)
    h = bounds.occam_hoeffding_bound(0.1, bits, n)
    assert 0.1 <= b <= 1.0 and b <= h
    if want is not None:
        assert b == want
    assert bounds.pac_bayes_kl_bound(0.1, bits, n) <= 1.0


@pytest.mark.parametrize("fn", [bounds.occam_bound, bounds.occam_hoeffding_bound, bounds.pac_bayes_kl_bound])
@pytest.mark.parametrize("arg, value, exc", [
    ("train_error", float("nan"), ValueError), ("train_error", True, TypeError), ("train_error", 1.5, ValueError),
    ("n", 1.5, TypeError), ("n", True, TypeError), ("n", 0, ValueError), ("n", "100", TypeError),
    ("delta", 1.0, ValueError), ("delta", float("nan"), ValueError), ("delta", None, TypeError),
    ("bits", float("inf"), ValueError), ("bits", -1, ValueError), ("bits", "10", TypeError)], ids=repr)
def test_bound_arguments_are_checked_naming_them(fn, arg, value, exc):
    kwargs = {"train_error": 0.1, "bits": 10, "n": 100, "delta": 0.05}
    kwargs[arg] = value
    third = "kl" if fn is bounds.pac_bayes_kl_bound else "code_bits"
    with pytest.raises(exc, match=third if arg == "bits" else arg):
        fn(kwargs["train_error"], kwargs["bits"], kwargs["n"], delta=kwargs["delta"])


def test_code_lengths_refuse_odd_dtypes():
    import torch
    for bad in (np.array([1 + 2j, 3j]), np.array([True, False]), np.array(["a", "b"])):
        with pytest.raises(ValueError, match="values"):
            bounds.two_part_code(bad)
    with pytest.raises(TypeError, match="float16"):
        bounds.network_code_bits(torch.nn.Linear(3, 2).half())
    assert math.isfinite(bounds.occam_hoeffding_bound(0.1, 10, 100, delta=5e-324))
