"""Tests of poprisk.infotheory: Gaussian R(D)/D(R), reverse water-filling, Blahut–Arimoto, MI bounds."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from poprisk import infotheory as it

finite_pos = st.floats(min_value=1e-6, max_value=1e6, allow_nan=False, allow_infinity=False)
variance_lists = st.lists(st.floats(min_value=0.0, max_value=1e4, allow_nan=False), min_size=1, max_size=60).filter(
    lambda v: max(v) > 1e-8)


# ----------------------------------------------------------------------------------------- Gaussian R(D), D(R)
def test_gaussian_rd_values():
    assert it.gaussian_rd(1.0, 0.25) == pytest.approx(math.log(2.0))
    assert it.gaussian_rd(2.0, 2.0) == 0.0
    assert it.gaussian_rd(2.0, 5.0) == 0.0
    assert it.gaussian_rd(2.0, 0.0) == math.inf
    assert it.gaussian_dr(3.0, 0.0) == 3.0
    assert it.gaussian_dr(3.0, math.inf) == 0.0
    np.testing.assert_allclose(it.gaussian_rd([1.0, 4.0], [0.5, 1.0]), [0.5 * math.log(2), 0.5 * math.log(4)])


@given(s=finite_pos, r=st.floats(min_value=0.0, max_value=20.0))
def test_rd_dr_inverse(s, r):
    d = it.gaussian_dr(s, r)
    if d > 0:
        assert it.gaussian_rd(s, d) == pytest.approx(r, rel=1e-9, abs=1e-9)


@given(s=finite_pos, r1=st.floats(0.0, 10.0), r2=st.floats(0.0, 10.0), lam=st.floats(0.0, 1.0))
def test_gaussian_dr_monotone_and_convex(s, r1, r2, lam):
    d1, d2 = it.gaussian_dr(s, r1), it.gaussian_dr(s, r2)
    if r1 <= r2:
        assert d1 >= d2
    mid = it.gaussian_dr(s, lam * r1 + (1 - lam) * r2)
    assert mid <= lam * d1 + (1 - lam) * d2 + 1e-12 * s


@pytest.mark.parametrize("bad", [dict(variance=-1.0, distortion=1.0), dict(variance=1.0, distortion=-0.1)])
def test_gaussian_rd_rejects(bad):
    with pytest.raises(ValueError, match=next(k for k, v in bad.items() if v < 0)):
        it.gaussian_rd(**bad)


def test_gaussian_dr_rejects():
    with pytest.raises(ValueError, match="rate"):
        it.gaussian_dr(1.0, -1.0)
    with pytest.raises(ValueError, match="variance"):
        it.gaussian_dr(-1.0, 1.0)


# ------------------------------------------------------------------------------------- reverse water-filling
def _brute_theta_for_distortion(s, target):
    lo, hi = 0.0, float(max(s))
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if np.minimum(mid, s).sum() < target else (lo, mid)
    return 0.5 * (lo + hi)


def test_water_filling_small_example():
    wf = it.reverse_water_filling([4.0, 1.0, 0.25], distortion=1.5)
    # level 0.625 > 0.25: D = (0.625, 0.625, 0.25)
    assert wf.theta == pytest.approx(0.625, rel=1e-14)
    np.testing.assert_allclose(wf.distortions, [0.625, 0.625, 0.25])
    np.testing.assert_allclose(wf.rates, [0.5 * math.log(4 / 0.625), 0.5 * math.log(1 / 0.625), 0.0])
    assert wf.rate == pytest.approx(sum(wf.rates))
    assert list(wf.active) == [True, True, False]


def test_water_filling_single_component_is_gaussian_dr():
    wf = it.reverse_water_filling([3.0], rate=0.7)
    assert wf.distortion == pytest.approx(it.gaussian_dr(3.0, 0.7), rel=1e-14)


@settings(max_examples=150, deadline=None)
@given(s=variance_lists, frac=st.floats(min_value=1e-6, max_value=0.999999))
def test_water_filling_distortion_identities(s, frac):
    s = np.array(s)
    target = frac * s.sum()
    wf = it.reverse_water_filling(s, distortion=target)
    assert wf.distortion == pytest.approx(target, rel=1e-12)
    np.testing.assert_array_equal(wf.distortions, np.minimum(wf.theta, s))
    assert (wf.rates >= 0).all()
    assert wf.rate == pytest.approx(math.fsum(wf.rates), rel=1e-12, abs=1e-15)
    assert wf.theta == pytest.approx(_brute_theta_for_distortion(s, target), rel=1e-9)


@settings(max_examples=150, deadline=None)
@given(s=variance_lists, r=st.floats(min_value=0.0, max_value=200.0))
def test_water_filling_rate_roundtrip(s, r):
    s = np.array(s)
    wf = it.reverse_water_filling(s, rate=r)
    assert wf.rate == pytest.approx(r, rel=1e-12, abs=1e-12)
    # the same point, reached from its distortion
    if wf.distortion > 0:
        back = it.reverse_water_filling(s, distortion=wf.distortion)
        assert back.theta == pytest.approx(wf.theta, rel=1e-10)
        assert back.rate == pytest.approx(r, rel=1e-9, abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(s=variance_lists, r1=st.floats(0.0, 30.0), r2=st.floats(0.0, 30.0), lam=st.floats(0.0, 1.0))
def test_water_filling_dr_monotone_convex(s, r1, r2, lam):
    s = np.array(s)
    d1 = it.reverse_water_filling(s, rate=r1).distortion
    d2 = it.reverse_water_filling(s, rate=r2).distortion
    dm = it.reverse_water_filling(s, rate=lam * r1 + (1 - lam) * r2).distortion
    if r1 <= r2:
        assert d1 >= d2 * (1 - 1e-12)
    assert dm <= lam * d1 + (1 - lam) * d2 + 1e-10 * s.sum()


@settings(max_examples=100, deadline=None)
@given(s=variance_lists, r=st.floats(0.01, 30.0))
def test_water_filling_beats_equal_split(s, r):
    """Water-filling is optimal: any other split of the rate over components gives more distortion."""
    s = np.array(s)
    wf = it.reverse_water_filling(s, rate=r)
    pos = s[s > 0]
    equal = float(np.sum(pos * np.exp(-2 * r / pos.size)))
    assert wf.distortion <= equal * (1 + 1e-12)


def test_water_filling_order_invariant_and_exact_large():
    rng = np.random.default_rng(1)
    s = rng.lognormal(0.0, 2.0, size=10_000)
    perm = rng.permutation(s.size)
    target = 0.2 * s.sum()
    wf = it.reverse_water_filling(s, distortion=target)
    wfp = it.reverse_water_filling(s[perm], distortion=target)
    assert wf.theta == pytest.approx(wfp.theta, rel=1e-15)  # sums in input order: equal to the last bits
    np.testing.assert_allclose(wf.distortions[perm], wfp.distortions, rtol=1e-15)
    assert abs(wf.distortion / target - 1) < 1e-12
    wr = it.reverse_water_filling(s, rate=wf.rate)
    assert abs(wr.theta / wf.theta - 1) < 1e-12


def _sorted_closed_form(s, target):
    """The reference: θ on the piece of the sorted variances that holds Σ min(θ, s_i) = target."""
    asc = np.sort(s)
    d = asc.size
    for k in range(d):
        theta = (target - math.fsum(asc[:k])) / (d - k)
        if theta <= asc[k] and (k == 0 or theta >= asc[k - 1]):
            return theta
    raise AssertionError("no piece")


@settings(max_examples=150, deadline=None)
@given(s=st.lists(st.floats(1e-6, 1e6), min_size=1, max_size=80), frac=st.floats(1e-6, 0.999999))
def test_water_filling_level_is_the_closed_form_of_its_piece(s, frac):
    s = np.array(s)
    target = frac * s.sum()
    wf = it.reverse_water_filling(s, distortion=target)
    assert wf.theta == pytest.approx(_sorted_closed_form(s, target), rel=1e-12)
    r = it.reverse_water_filling(s, rate=wf.rate)
    assert r.theta == pytest.approx(wf.theta, rel=1e-9)


def _sorted_reference(s, target):
    asc = np.sort(s)
    d = asc.size
    f_at = np.concatenate([[0.0], np.cumsum(asc)[:-1]]) + (d - np.arange(d)) * asc
    k = int(np.searchsorted(f_at, target, side="right")) - 1
    return target / d if k < 0 else (target - math.fsum(asc[: k + 1])) / (d - k - 1)


@pytest.mark.parametrize("spectrum", ["lognormal", "zeros", "ties", "geometric", "two_values"])
@pytest.mark.parametrize("frac", [1e-4, 0.03, 0.5, 0.999])
def test_water_filling_large_d_matches_the_sorted_closed_form(spectrum, frac):
    rng = np.random.default_rng(7)
    d = 20_000
    s = {"lognormal": rng.lognormal(0, 2.0, d), "zeros": np.where(rng.random(d) < 0.3, 0.0, rng.gamma(0.5, size=d)),
         "ties": np.round(rng.gamma(2.0, size=d), 1), "geometric": 0.05 * 2.0 ** (-np.arange(d) / 400.0),
         "two_values": np.where(rng.random(d) < 0.5, 1.0, 1e-3)}[spectrum]
    target = frac * s.sum()
    wf = it.reverse_water_filling(s, distortion=target)
    assert wf.theta == pytest.approx(_sorted_reference(s, target), rel=1e-13)
    assert wf.distortion == pytest.approx(target, rel=1e-12)
    back = it.reverse_water_filling(s, rate=wf.rate)
    assert back.theta == pytest.approx(wf.theta, rel=1e-11)


@pytest.mark.parametrize("spread", [200, 320, 600])
def test_water_filling_rate_is_finite_beyond_the_float_range_of_ratios(spread):
    s = np.array([10.0 ** (spread / 2), 10.0 ** (-spread / 2)])
    s = s[np.isfinite(s) & (s > 0)]
    wf = it.reverse_water_filling(s, distortion=2 * s.min())  # θ at the small variance: ratio s_max/θ huge
    assert np.isfinite(wf.rates).all() and math.isfinite(wf.rate)
    expect = 0.5 * (math.log(s.max()) - math.log(wf.distortions[np.argmax(s)]))
    assert wf.rate == pytest.approx(expect, rel=1e-12)


@pytest.mark.parametrize("d", [10_000, 1_000_000])
@pytest.mark.parametrize("given", ["rate", "distortion"])
def test_water_filling_is_linear_time(monkeypatch, d, given):
    """O(d), counted in machine-independent units: a few passes over the variances (each pass is one
    ``np.count_nonzero``) and a sort of a ~1,024-point sample only, never of all d variances. The speed itself
    is measured against scipy's brentq in bench/infotheory.py."""
    s = np.random.default_rng(2).gamma(0.5, size=d)
    passes, sorted_sizes = [], []
    count_nonzero, sort = np.count_nonzero, np.sort
    monkeypatch.setattr(np, "count_nonzero", lambda *a, **k: passes.append(1) or count_nonzero(*a, **k))
    monkeypatch.setattr(np, "sort", lambda a, *r, **k: sorted_sizes.append(np.size(a)) or sort(a, *r, **k))
    kw = dict(rate=100.0) if given == "rate" else dict(distortion=0.25 * float(s.sum()))
    it.reverse_water_filling(s, **kw)
    assert 1 <= len(passes) <= 6  # measured 4-6; a per-component loop or bisection would need >= 30
    assert sorted_sizes and max(sorted_sizes) <= 2048 < d


def test_water_filling_edges():
    wf = it.reverse_water_filling([1.0, 2.0, 3.0], distortion=10.0)
    assert wf.rate == 0.0 and wf.distortion == 6.0 and wf.theta == 3.0
    wf = it.reverse_water_filling([1.0, 2.0, 3.0], rate=0.0)
    assert wf.rate == 0.0 and wf.distortion == 6.0
    wf = it.reverse_water_filling([0.0, 2.0], distortion=1.0)
    assert wf.rates[0] == 0.0 and wf.distortions[0] == 0.0
    wf = it.reverse_water_filling([1.0, 2.0], distortion=0.0)
    assert wf.rate == math.inf and wf.theta == 0.0


@pytest.mark.parametrize("args, kw, name", [
    ([1.0, -1.0], dict(rate=1.0), "variances"),
    ([], dict(rate=1.0), "variances"),
    ([1.0, np.nan], dict(rate=1.0), "variances"),
    ([1.0], dict(rate=1.0, distortion=0.5), "rate"),
    ([1.0], dict(), "rate"),
    ([1.0], dict(rate=-1.0), "rate"),
    ([1.0], dict(distortion=-1.0), "distortion"),
])
def test_water_filling_rejects(args, kw, name):
    with pytest.raises(ValueError, match=name):
        it.reverse_water_filling(args, **kw)


# hostile inputs, tried against every argument of every public function: each must fail with TypeError or
# ValueError naming the argument (never an error from inside numpy, never a silent answer)
HOSTILE = [None, "abc", True, 1 + 2j, [[1.0, 2.0], [3.0]], {"a": 1}, float("nan"), [np.nan, 1.0], [], object()]
GOOD = {
    it.gaussian_rd: dict(variance=1.0, distortion=0.5),
    it.gaussian_dr: dict(variance=1.0, rate=0.5),
    it.reverse_water_filling: dict(variances=[1.0, 2.0], rate=0.5),
    it.blahut_arimoto: dict(p_x=[0.5, 0.5], distortion_matrix=1.0 - np.eye(2), slope=-1.0),
    it.mi_bound: dict(sigma=1.0, mutual_information=0.5, n=10),
    it.individual_sample_bound: dict(sigma=1.0, mutual_informations=[0.1, 0.2]),
    it.entropy: dict(p=[0.5, 0.5]),
    it.gaussian_mi: dict(signal_variance=1.0, noise_variance=1.0),
}
CASES = [(fn, arg, bad) for fn, good in GOOD.items() for arg in good for bad in HOSTILE]


@pytest.mark.parametrize("fn, arg, bad", CASES, ids=[f"{f.__name__}-{a}-{i % len(HOSTILE)}"
                                                    for i, (f, a, _) in enumerate(CASES)])
def test_hostile_inputs_fail_clearly(fn, arg, bad):
    fn(**GOOD[fn])  # the good call works
    with pytest.raises((TypeError, ValueError), match=arg):
        fn(**{**GOOD[fn], arg: bad})


@pytest.mark.parametrize("kw", [dict(tol=True), dict(tol="1e-4"), dict(tol=float("inf")), dict(max_iter=2.5),
                                dict(max_iter=True), dict(stop="never"), dict(stop=None), dict(q0=[np.nan, 1.0])])
def test_blahut_arimoto_rejects_bad_settings(kw):
    with pytest.raises((TypeError, ValueError), match=next(iter(kw))):
        it.blahut_arimoto([0.5, 0.5], 1.0 - np.eye(2), -1.0, **kw)


# ------------------------------------------------------------------------------------------- Blahut–Arimoto
def _discretized_gaussian(n=1024, half_width=6.0):
    x = np.linspace(-half_width, half_width, n)
    p = np.exp(-0.5 * x**2)
    p /= p.sum()
    return x, p, (x[:, None] - x[None, :]) ** 2


def _mutual_information(p, cond):
    joint = p[:, None] * cond
    out = joint.sum(axis=0)
    mask = joint > 0
    ratio = cond[mask] / np.broadcast_to(out[None, :], cond.shape)[mask]
    return float(np.sum(joint[mask] * np.log(ratio)))


def test_blahut_arimoto_binary_hamming():
    """Bernoulli(1/2) source, Hamming distortion: R(D) = log 2 − h(D) and the slope is log(D/(1−D))."""
    p = np.array([0.5, 0.5])
    dmat = 1.0 - np.eye(2)
    for target in (0.05, 0.1, 0.25, 0.4):
        res = it.blahut_arimoto(p, dmat, math.log(target / (1 - target)), tol=1e-12, max_iter=5000)
        h = -target * math.log(target) - (1 - target) * math.log(1 - target)
        assert res.distortion == pytest.approx(target, abs=1e-9)
        assert res.rate == pytest.approx(math.log(2) - h, abs=1e-9)
        assert res.converged


def test_blahut_arimoto_gaussian_matches_closed_form_in_few_iterations():
    x, p, dmat = _discretized_gaussian()
    var = float(p @ x**2)
    targets = np.geomspace(0.02, 0.8, 20)
    res = it.blahut_arimoto(p, dmat, -1.0 / (2.0 * targets))  # the default tolerance, 1e-4 nats
    err = np.abs(res.rate - it.gaussian_rd(var, res.distortion))
    assert err.max() < 1e-4
    assert res.converged.all()
    assert (res.rate >= it.gaussian_rd(var, res.distortion) - 1e-4).all()
    np.testing.assert_allclose(res.distortion, targets, rtol=1e-2)  # slope −1/(2D) lands near D
    # cost in machine-independent units: 291 iterations (one O(n^2) pass each) for the 20 slopes; the old
    # certificate rule took ~10,000. The seconds are measured side by side in bench/infotheory.py.
    assert 100 <= int(res.iterations.sum()) <= 400


def test_blahut_arimoto_gap_rule_waits_for_the_certificate():
    x, p, dmat = _discretized_gaussian(n=256, half_width=5.0)
    slopes = -1.0 / (2.0 * np.array([0.05, 0.3]))
    stall = it.blahut_arimoto(p, dmat, slopes, tol=1e-4)
    cert = it.blahut_arimoto(p, dmat, slopes, tol=1e-4, stop="gap", max_iter=20_000)
    assert cert.certified.all() and (cert.converged == cert.certified).all() and (cert.gap <= 1e-4).all()
    assert (stall.certified == (stall.gap <= 1e-4)).all()
    # the stall rule stops no later and its points agree with the certified ones to within the certificate
    assert (stall.iterations <= cert.iterations).all()
    assert (np.abs(stall.rate - cert.rate) <= np.maximum(stall.gap, 1e-4) + 1e-4).all()


def test_blahut_arimoto_results_of_a_slope_do_not_depend_on_the_others():
    x, p, dmat = _discretized_gaussian(n=128, half_width=5.0)
    both = it.blahut_arimoto(p, dmat, [-2.0, -8.0])
    alone = it.blahut_arimoto(p, dmat, -8.0)
    assert both.rate[1] == alone.rate and both.gap[1] == alone.gap and both.iterations[1] == alone.iterations


@pytest.mark.parametrize("seed", range(4))
def test_float32_probabilities_are_accepted(seed):
    torch = pytest.importorskip("torch")
    g = torch.Generator().manual_seed(seed)
    for n in (2, 50, 1000, 100_000):
        p32 = torch.softmax(torch.randn(n, generator=g), 0)
        p64 = p32.double() / p32.double().sum()
        assert it.entropy(p32) == pytest.approx(float(it.entropy(p64.numpy())), rel=1e-12, abs=1e-12)
    p32 = torch.softmax(torch.randn(40, generator=g), 0)
    res = it.blahut_arimoto(p32, (1.0 - np.eye(40)), -2.0)
    assert res.converged and math.isfinite(res.rate)
    with pytest.raises(ValueError, match="sum to 1"):
        it.entropy(np.float32([0.5, 0.5]) * np.float32(1.001))


def test_probability_tolerance_is_that_of_the_dtype():
    with pytest.raises(ValueError, match="p"):
        it.entropy([0.5, 0.5 + 1e-7])  # float64: 1e-7 off is a mistake, not rounding
    assert it.entropy(np.float32([0.5, 0.5 + 1e-7])) == pytest.approx(math.log(2))


def test_blahut_arimoto_certificate_and_channel():
    x, p, dmat = _discretized_gaussian(n=200)
    res = it.blahut_arimoto(p, dmat, [-1.0, -4.0], tol=1e-8, max_iter=20_000)
    cond = res.conditional
    assert cond.shape == (2, 200, 200)
    np.testing.assert_allclose(cond.sum(axis=2), 1.0, rtol=1e-12)
    for i in range(2):
        assert _mutual_information(p, cond[i]) == pytest.approx(res.rate[i], abs=1e-9)
        assert float(np.sum(p[:, None] * cond[i] * dmat)) == pytest.approx(res.distortion[i], rel=1e-10)
        np.testing.assert_allclose(p @ cond[i], res.output[i], atol=1e-14)
    # steeper slope → smaller distortion, larger rate
    assert res.distortion[1] < res.distortion[0] and res.rate[1] > res.rate[0]


def test_blahut_arimoto_points_lie_above_a_lower_bound():
    """Shannon lower bound for squared error: R(D) ≥ h(X) − ½ log(2πe D); check the discrete points respect the
    finer inequality R(D) ≥ R_gauss(D) − small, and that rates are never negative."""
    x, p, dmat = _discretized_gaussian(n=300)
    res = it.blahut_arimoto(p, dmat, -np.geomspace(0.6, 20, 7), tol=1e-6)
    var = float(p @ x**2)
    assert (res.rate >= 0).all()
    assert (res.rate >= it.gaussian_rd(var, res.distortion) - 1e-3).all()


@settings(max_examples=40, deadline=None)
@given(p1=st.floats(0.05, 0.5), s=st.floats(-6.0, -0.05), iters=st.integers(0, 6),
       q1=st.floats(0.01, 0.99))
def test_blahut_arimoto_certificate_holds_before_convergence(p1, s, iters, q1):
    """Bernoulli(p1) source with Hamming distortion, R(D) = h(p1) − h(D) for D < p1: the certified interval
    R(D) ≤ rate ≤ R(D) + gap holds for every iterate, not only at convergence."""
    def h(x):
        return 0.0 if x in (0.0, 1.0) else -x * math.log(x) - (1 - x) * math.log(1 - x)

    res = it.blahut_arimoto([1 - p1, p1], 1.0 - np.eye(2), s, max_iter=max(iters, 1), tol=1e-15, q0=[1 - q1, q1])
    true = h(p1) - h(res.distortion) if res.distortion < p1 else 0.0
    assert true - 1e-9 <= res.rate <= true + res.gap + 1e-9


@pytest.mark.parametrize("kwargs, name", [
    (dict(p_x=[0.5, 0.6], distortion_matrix=np.eye(2), slope=-1.0), "p_x"),
    (dict(p_x=[1.5, -0.5], distortion_matrix=np.eye(2), slope=-1.0), "p_x"),
    (dict(p_x=[0.5, 0.5], distortion_matrix=np.eye(3), slope=-1.0), "distortion_matrix"),
    (dict(p_x=[0.5, 0.5], distortion_matrix=np.array([[0, np.inf], [1, 0]]), slope=-1.0), "distortion_matrix"),
    (dict(p_x=[0.5, 0.5], distortion_matrix=np.eye(2), slope=1.0), "slope"),
    (dict(p_x=[0.5, 0.5], distortion_matrix=np.eye(2), slope=-1.0, tol=0.0), "tol"),
    (dict(p_x=[0.5, 0.5], distortion_matrix=np.eye(2), slope=-1.0, max_iter=0), "max_iter"),
    (dict(p_x=[0.5, 0.5], distortion_matrix=np.eye(2), slope=-1.0, q0=[1.0]), "q0"),
])
def test_blahut_arimoto_rejects(kwargs, name):
    with pytest.raises(ValueError, match=name):
        it.blahut_arimoto(**kwargs)


# ------------------------------------------------------------------------------------------------ MI bounds
def test_mi_bound_values():
    assert it.mi_bound(1.0, 0.5, 4) == pytest.approx(0.5)
    assert it.mi_bound(2.0, 0.0, 10) == 0.0
    assert it.mi_bound(1.0, math.inf, 10) == math.inf
    np.testing.assert_allclose(it.mi_bound(1.0, 1.0, [1, 4]), [math.sqrt(2), math.sqrt(0.5)])


@given(sigma=st.floats(0.01, 100.0), mi=st.floats(1e-4, 100.0), n=st.integers(1, 10_000))
def test_mi_bound_is_the_optimized_mgf_bound(sigma, mi, n):
    """sqrt(2σ²I/n) = inf_λ>0 (I + λ²σ²/(2n))/λ: compare with a grid over λ."""
    b = it.mi_bound(sigma, mi, n)
    lam = np.geomspace(1e-6, 1e6, 4001)
    grid = np.min((mi + lam**2 * sigma**2 / (2 * n)) / lam)
    assert b <= grid * (1 + 1e-12) + 1e-12
    assert grid <= b * 1.01 + 1e-5


def test_individual_sample_bound():
    assert it.individual_sample_bound(1.0, [0.5, 0.5]) == pytest.approx(1.0)
    assert it.individual_sample_bound(1.0, [0.0, 2.0]) == pytest.approx(1.0)


@given(n=st.integers(2, 500), tau2=st.floats(1e-3, 10.0))
def test_individual_sample_bound_tighter_for_gaussian_mean(n, tau2):
    """W = mean(Z) + N(0, τ²): the individual-sample bound never exceeds the Xu–Raginsky bound."""
    i_sw = it.gaussian_mi(1.0 / n, tau2)
    i_wz = it.gaussian_mi(1.0 / n**2, (n - 1) / n**2 + tau2)
    assert it.individual_sample_bound(1.0, np.full(n, i_wz)) <= it.mi_bound(1.0, i_sw, n) * (1 + 1e-12)


@pytest.mark.parametrize("call, name", [
    (lambda: it.mi_bound(-1.0, 1.0, 2), "sigma"),
    (lambda: it.mi_bound(1.0, -1.0, 2), "mutual_information"),
    (lambda: it.mi_bound(1.0, 1.0, 0), "n"),
    (lambda: it.individual_sample_bound(1.0, []), "mutual_informations"),
    (lambda: it.individual_sample_bound(1.0, [-0.1]), "mutual_informations"),
    (lambda: it.entropy([0.5, 0.6]), "p"),
    (lambda: it.gaussian_mi(1.0, -1.0), "noise_variance"),
])
def test_bounds_reject(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_entropy_and_gaussian_mi():
    assert it.entropy([0.5, 0.5]) == pytest.approx(math.log(2))
    assert it.entropy([1.0, 0.0]) == 0.0
    np.testing.assert_allclose(it.entropy(np.array([[0.5, 0.5], [1.0, 0.0]])), [math.log(2), 0.0])
    assert it.gaussian_mi(3.0, 1.0) == pytest.approx(math.log(2))
    assert it.gaussian_mi(1.0, 0.0) == math.inf
    assert it.gaussian_mi(0.0, 0.0) == 0.0


def test_torch_inputs_are_accepted():
    torch = pytest.importorskip("torch")
    wf = it.reverse_water_filling(torch.tensor([4.0, 1.0, 0.25]), distortion=1.5)
    assert wf.theta == pytest.approx(0.625)
    assert it.gaussian_rd(torch.tensor(1.0), 0.25) == pytest.approx(math.log(2.0))


# ------------------------------------------------- joint tables, discretized densities, Shannon lower bound
def test_mutual_information_of_joint_tables():
    p = np.array([0.2, 0.8])
    assert it.mutual_information(np.outer(p, [0.5, 0.5])) == pytest.approx(0.0, abs=1e-15)
    assert it.mutual_information(np.diag(p)) == pytest.approx(it.entropy(p))
    joint = np.array([[0.3, 0.1], [0.2, 0.4]])
    direct = sum(joint[i, j] * math.log(joint[i, j] / (joint[i].sum() * joint[:, j].sum()))
                 for i in range(2) for j in range(2))
    assert it.mutual_information(joint) == pytest.approx(direct, rel=1e-12)
    with pytest.raises(ValueError, match="2-D table"):
        it.mutual_information([0.5, 0.5])


def test_discretized_entropy_is_the_differential_entropy_of_the_step_density():
    assert it.discretized_entropy(np.full(8, 1 / 8), 1 / 8) == pytest.approx(0.0, abs=1e-15)  # U[0, 1]
    assert it.discretized_entropy(np.full(8, 1 / 8), 1 / 4) == pytest.approx(math.log(2))  # U[0, 2]
    grid = np.linspace(-8, 8, 4001)
    p = np.exp(-grid**2 / 2)
    p /= p.sum()
    assert it.discretized_entropy(p, grid[1] - grid[0]) == pytest.approx(0.5 * math.log(2 * math.pi * math.e),
                                                                         abs=1e-6)
    with pytest.raises(ValueError, match="cell must be"):
        it.discretized_entropy([1.0], 0.0)


def test_shannon_lower_bound_is_tight_for_gaussians():
    for s, dist in ((1.0, 0.25), (3.0, 0.1)):
        h = 0.5 * math.log(2 * math.pi * math.e * s)
        assert it.shannon_lower_bound(h, dist) == pytest.approx(it.gaussian_rd(s, dist), rel=1e-12)
        # two independent components of variance s, total distortion 2 * dist: twice the scalar rate
        assert it.shannon_lower_bound(2 * h, 2 * dist, dim=2) == pytest.approx(2 * it.gaussian_rd(s, dist))
    with pytest.raises(ValueError, match="distortion must be"):
        it.shannon_lower_bound(0.0, 0.0)
