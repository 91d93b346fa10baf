"""Tests of poprisk.quantize: exact 1-D DP, Lloyd/HW K-means, DRHW (Algorithm 1), uniform, quantize_model."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp
from torch import nn

import oracles
from poprisk import quantize as q
from poprisk.models import compressible_layers
from tools import timeouts

FAST = settings(max_examples=40, deadline=None)

# weights drawn from a coarse grid often repeat (duplicates), from a fine one rarely
values = st.one_of(st.integers(-6, 6).map(lambda v: v / 2.0), st.floats(-5, 5, allow_nan=False, width=32))
importances = st.floats(0.05, 20.0, allow_nan=False)


@st.composite
def weighted_problem(draw, n_min=1, n_max=12):
    n = draw(st.integers(n_min, n_max))
    w = np.array(draw(st.lists(values, min_size=n, max_size=n)), dtype=np.float64)
    h = np.array(draw(st.lists(importances, min_size=n, max_size=n)), dtype=np.float64)
    k = draw(st.integers(1, n))
    return w, h, k


def _obj(w, h, centers, labels):
    return q.distortion(w, h, centers, labels)


def _close(a, b, rel=1e-9):
    return abs(a - b) <= rel * max(abs(a), abs(b)) + 1e-12


def _random_spd(rng, d, m):
    L = rng.normal(size=(d, m, m))
    return L @ L.transpose(0, 2, 1) + 0.1 * np.eye(m)


# ------------------------------------------------------------------------------------------- exact 1-D DP

@FAST
@given(weighted_problem())
def test_dp_equals_brute_force_over_contiguous_partitions(problem):
    w, h, k = problem
    centers, labels = q.weighted_kmeans_1d(w, h, k)
    u = np.unique(w).size
    best = 0.0 if k >= u else q.brute_force_kmeans(w, h, k, contiguous=True)
    assert _close(_obj(w, h, centers, labels), best)


@FAST
@given(weighted_problem(n_max=7))
def test_dp_equals_brute_force_over_all_labellings(problem):
    # no contiguity assumed by the enumeration: this checks the theorem that makes the DP exact
    w, h, k = problem
    centers, labels = q.weighted_kmeans_1d(w, h, k)
    assert _close(_obj(w, h, centers, labels), q.brute_force_kmeans(w, h, k, contiguous=False))


@FAST
@given(weighted_problem(n_max=60))
def test_dp_labels_monotone_and_centres_are_hw_means(problem):
    w, h, k = problem
    centers, labels = q.weighted_kmeans_1d(w, h, k)
    order = np.argsort(w, kind="stable")
    assert np.all(np.diff(labels[order]) >= 0)  # non-decreasing in w
    assert np.all(np.diff(centers) > 0)  # distinct and ascending
    for value in np.unique(w):  # equal weights share a label
        assert np.unique(labels[w == value]).size == 1
    for j, c in enumerate(centers):
        sel = labels == j
        assert sel.any()
        assert np.isclose(c, h[sel] @ w[sel] / h[sel].sum(), rtol=1e-12, atol=1e-12)
    assert centers.size == min(k, np.unique(w).size)


@FAST
@given(weighted_problem(n_max=200), st.sampled_from(["quantile", "linear", "random"]))
def test_dp_never_worse_than_lloyd(problem, init):
    w, h, k = problem
    exact = _obj(w, h, *q.weighted_kmeans_1d(w, h, k))
    lloyd = _obj(w, h, *q.hw_kmeans(w, h, k, init=init))
    assert exact <= lloyd * (1 + 1e-9) + 1e-12


@pytest.mark.parametrize("n,k", [(50, 3), (2000, 17), (5000, 60), (3000, 1)])
def test_dp_backends_agree(n, k):
    rng = np.random.default_rng(n + k)
    w = np.round(rng.standard_t(3, size=n), 3)
    h = rng.gamma(0.7, size=n) + 1e-3
    c1, l1 = q.weighted_kmeans_1d(w, h, k, backend="numba")
    c2, l2 = q.weighted_kmeans_1d(w, h, k, backend="numpy")
    assert _close(_obj(w, h, c1, l1), _obj(w, h, c2, l2), 1e-12)


@pytest.mark.parametrize("n,k", [(3000, 4), (20000, 32), (4000, 256)])
def test_dp_matches_ckwrap(n, k):
    ckwrap = pytest.importorskip("ckwrap")
    rng = np.random.default_rng(k)
    w = rng.standard_t(4, size=n)
    h = rng.gamma(1.0, size=n) + 1e-6
    ours = _obj(w, h, *q.weighted_kmeans_1d(w, h, k))
    lab = np.asarray(ckwrap.ckmeans(w, k, weights=h).labels, dtype=np.int64)
    cen = np.bincount(lab, weights=h * w, minlength=k) / np.bincount(lab, weights=h, minlength=k)
    theirs = _obj(w, h, cen, lab)
    assert ours <= theirs * (1 + 1e-9)
    assert _close(ours, theirs, 1e-9)


def test_dp_small_and_degenerate_inputs():
    assert q.weighted_kmeans_1d([3.0], None, 1)[0].tolist() == [3.0]
    c, lab = q.weighted_kmeans_1d([3.0, 3.0, 1.0], None, 5)  # k beyond the distinct values: lossless
    assert c.tolist() == [1.0, 3.0] and lab.tolist() == [1, 1, 0]
    c, lab = q.weighted_kmeans_1d(np.zeros(7), None, 3)
    assert c.tolist() == [0.0] and lab.tolist() == [0] * 7
    # pruned zeros are ordinary values: one label for all of them
    w = np.array([0, 0, 0, 0, 0.9, 1.0, 1.1, -2.0])
    c, lab = q.weighted_kmeans_1d(w, None, 2)
    assert np.unique(lab[w == 0]).size == 1 and _close(_obj(w, None, c, lab), q.brute_force_kmeans(w, None, 2))
    for n in range(1, 6):
        w = np.linspace(-1, 1, n) ** 3
        for k in range(1, n + 1):
            c, lab = q.weighted_kmeans_1d(w, None, k)
            assert _close(_obj(w, None, c, lab), q.brute_force_kmeans(w, None, k))


def test_dp_accepts_torch_and_any_shape():
    w = torch.randn(8, 5, generator=torch.Generator().manual_seed(0))
    c, lab = q.weighted_kmeans_1d(w, torch.ones(8, 5), 3)
    assert lab.shape == (40,) and c.shape == (3,)


# ------------------------------------------------------------------------------------ Lloyd, DRHW, uniform

@FAST
@given(weighted_problem(n_max=80), st.floats(0, 1e4), st.sampled_from(["quantile", "linear", "random"]))
def test_quantizers_use_exactly_the_codebook(problem, beta, init):
    w, h, k = problem
    for centers, labels in (q.hw_kmeans(w, h, k, init=init), q.drhw_kmeans(w, h, k, beta, init=init),
                            q.kmeans(w, k, init=init), q.weighted_kmeans_1d(w, h, k), q.uniform_quantize(w, k)):
        assert labels.dtype == np.int64 and labels.shape == w.shape
        assert labels.min() >= 0 and labels.max() < centers.size
        assert np.all(np.isfinite(centers)) and np.all(np.diff(centers) >= 0)
        assert set(np.unique(centers[labels])) <= set(centers.tolist())


@FAST
@given(weighted_problem(n_max=80), st.sampled_from(["quantile", "linear", "random"]), st.integers(0, 40))
def test_drhw_with_zero_beta_is_hw_kmeans_scalar(problem, init, iters):
    w, h, k = problem
    c1, l1 = q.hw_kmeans(w, h, k, iters=iters, init=init, seed=3)
    c2, l2 = q.drhw_kmeans(w, h, k, 0.0, iters=iters, init=init, seed=3)
    assert np.array_equal(c1, c2) and np.array_equal(l1, l2)


@FAST
@given(st.integers(0, 10_000), st.integers(2, 40), st.integers(1, 3), st.sampled_from(["quantile", "random"]))
def test_drhw_with_zero_beta_is_hw_kmeans_vector(seed, d, m, init):
    rng = np.random.default_rng(seed)
    W, H = rng.normal(size=(d, m)), _random_spd(rng, d, m)
    k = int(rng.integers(1, d + 1))
    c1, l1 = q.hw_kmeans(W, H, k, init=init, seed=seed)
    c2, l2 = q.drhw_kmeans(W, H, k, 0, init=init, seed=seed)
    assert np.array_equal(c1, c2) and np.array_equal(l1, l2)
    assert c1.shape == (k, m) and np.all(np.isfinite(c1))


@FAST
@given(weighted_problem(n_min=2, n_max=80), st.lists(st.floats(0, 1e5), min_size=2, max_size=6))
def test_one_drhw_step_diameter_non_increasing_in_beta(problem, betas):
    # one iteration of Algorithm 1 from the same start: the assignment is common, the pair update shrinks
    w, h, k = problem
    betas = sorted(betas)
    diam = [q.diameter(q.drhw_kmeans(w, h, k, b, iters=1)[0]) for b in betas]
    assert all(b <= a * (1 + 1e-9) + 1e-12 for a, b in zip(diam, diam[1:]))


@FAST
@given(st.integers(0, 10_000), st.integers(1, 4), st.lists(st.floats(0, 1e4), min_size=2, max_size=6))
def test_joint_pair_update_distance_non_increasing_in_beta(seed, m, betas):
    # the update (37) is the exact minimiser of q1(c1) + q2(c2) + β|c1 − c2|², so |c1 − c2| falls with β
    rng = np.random.default_rng(seed)
    A1, A2 = _random_spd(rng, 2, m)
    B1, B2 = rng.normal(size=(2, m)) * 3
    dist = [np.linalg.norm(np.subtract(*q.drhw_pair_update(A1, B1, A2, B2, b))) for b in sorted(betas)]
    assert all(b <= a * (1 + 1e-9) + 1e-12 for a, b in zip(dist, dist[1:]))


def test_scalar_pair_update_matches_closed_form_and_stationarity():
    a1, b1, a2, b2, beta = 2.0, -3.0, 5.0, 4.0, 1.5
    c1, c2 = q.drhw_pair_update(a1, b1, a2, b2, beta)
    det = a1 * a2 + beta * (a1 + a2)
    assert np.isclose(c1, ((a2 + beta) * b1 + beta * b2) / det)
    assert np.isclose(c2, (beta * b1 + (a1 + beta) * b2) / det)
    # gradient of a1 c1² − 2 b1 c1 + a2 c2² − 2 b2 c2 + β (c1 − c2)² vanishes
    assert np.isclose(a1 * c1 - b1 + beta * (c1 - c2), 0) and np.isclose(a2 * c2 - b2 + beta * (c2 - c1), 0)
    v1, v2 = q.drhw_pair_update(np.array([[a1]]), np.array([b1]), np.array([[a2]]), np.array([b2]), beta)
    assert np.isclose(v1[0], c1) and np.isclose(v2[0], c2)
    # an empty member is held fixed and its partner solves its own half of (37)
    assert q.lloyd._pair_solve_scalar(0.0, 0.0, 7.0, a2, b2, 1.0, beta) == (7.0, (b2 + beta * 7.0) / (a2 + beta))


@pytest.mark.parametrize("beta", [0.0, 1e-3, 10.0, 1e12])
def test_drhw_never_nan_with_empty_clusters(beta):
    w = np.array([0.0, 0.0, 0.0, 1.0, 1.0, 5.0])
    for init in ("quantile", "linear", "random"):
        for k in range(1, 7):
            c, lab = q.drhw_kmeans(w, None, k, beta, init=init)
            assert np.all(np.isfinite(c)) and c.size == k
    W = np.repeat(np.eye(2), 3, axis=0)
    c, lab = q.drhw_kmeans(W, None, 5, beta, init="random")
    assert np.all(np.isfinite(c))


def test_drhw_large_beta_shrinks_diameter_and_costs_distortion():
    rng = np.random.default_rng(0)
    w = rng.normal(size=500)
    h = rng.gamma(2.0, size=500)
    c0, l0 = q.drhw_kmeans(w, h, 4, 0.0)
    c1, l1 = q.drhw_kmeans(w, h, 4, 50.0 * h.sum())
    assert q.diameter(c1) < 0.5 * q.diameter(c0)
    assert q.distortion(w, h, c1, l1) > q.distortion(w, h, c0, l0)


def test_scalar_lloyd_distortion_non_increasing_in_iterations():
    rng = np.random.default_rng(1)
    w, h = rng.standard_t(3, size=400), rng.gamma(1.0, size=400)
    d = [q.distortion(w, h, *q.hw_kmeans(w, h, 6, iters=t)) for t in range(0, 15)]
    assert all(b <= a + 1e-12 for a, b in zip(d, d[1:]))


def test_vector_hw_kmeans_fixed_point_is_hw_mean():
    rng = np.random.default_rng(2)
    W = np.concatenate([rng.normal(size=(60, 2)) * 0.3 + c for c in ([0, 0], [3, 0], [0, 3])])
    H = _random_spd(rng, 180, 2)
    c, lab = q.hw_kmeans(W, H, 3, iters=200)
    for j in range(3):
        sel = lab == j
        mean = np.linalg.solve(H[sel].sum(0), np.einsum("dij,dj->i", H[sel], W[sel]))
        assert np.allclose(c[j], mean)
    # diagonal blocks given as (d, m) are the same problem as the full blocks
    D = rng.uniform(0.5, 2, size=(180, 2))
    full = np.zeros((180, 2, 2))
    full[:, [0, 1], [0, 1]] = D
    assert np.array_equal(q.hw_kmeans(W, D, 3)[0], q.hw_kmeans(W, full, 3)[0])


def test_vector_distortion_matches_a_loop():
    rng = np.random.default_rng(3)
    W, H = rng.normal(size=(30, 3)), _random_spd(rng, 30, 3)
    c, lab = q.drhw_kmeans(W, H, 4, 2.0)
    loop = sum((W[j] - c[lab[j]]) @ H[j] @ (W[j] - c[lab[j]]) for j in range(30))
    assert np.isclose(q.distortion(W, H, c, lab), loop)
    assert np.isclose(q.distortion(W, None, c, lab), np.sum((W - c[lab]) ** 2))


def test_uniform_quantize_levels():
    c, lab = q.uniform_quantize([0.0, 0.1, 0.5, 0.74, 1.0], 4)
    assert np.allclose(c, [0.125, 0.375, 0.625, 0.875]) and lab.tolist() == [0, 0, 1, 2, 3]
    c, lab = q.uniform_quantize([2.0, 2.0], 3)
    assert np.all(c == 2.0) and lab.tolist() == [0, 0]


def test_diameter_and_farthest_pair():
    assert q.diameter([3.0, -1.0, 2.0]) == 4.0 and q.diameter([1.0]) == 0.0
    assert np.isclose(q.diameter([[0, 0], [3, 4], [1, 1]]), 5.0)
    assert q.farthest_pair([3.0, -1.0, 2.0]) == (0, 1) and q.farthest_pair([[0, 0], [1, 1], [3, 4]]) == (0, 2)


# ------------------------------------------------------------------------------------------- bad input

def _spd_fail_cases():
    W = np.zeros((3, 2))
    H = np.broadcast_to(np.eye(2), (3, 2, 2)).copy()
    nonsym = H.copy()
    nonsym[1, 0, 1] = 0.5
    indef = H.copy()
    indef[2] = [[1.0, 2.0], [2.0, 1.0]]
    return W, H, nonsym, indef


@pytest.mark.parametrize("call,arg", [
    (lambda: q.weighted_kmeans_1d([1.0, 2.0], [1.0], 1), "h"),
    (lambda: q.weighted_kmeans_1d([1.0, 2.0], [1.0, 0.0], 1), "h"),
    (lambda: q.weighted_kmeans_1d([1.0, 2.0], [1.0, -2.0], 1), "h"),
    (lambda: q.weighted_kmeans_1d([1.0, 2.0], [1.0, np.nan], 1), "h"),
    (lambda: q.weighted_kmeans_1d([1.0, np.inf], None, 1), "w"),
    (lambda: q.weighted_kmeans_1d([1.0, 2.0], None, 0), "k"),
    (lambda: q.weighted_kmeans_1d([1.0, 2.0], None, 1, backend="c"), "backend"),
    (lambda: q.hw_kmeans([1.0, np.nan], None, 1), "w"),
    (lambda: q.hw_kmeans([1.0, 2.0], [1.0, 1.0, 1.0], 1), "h"),
    (lambda: q.hw_kmeans([1.0, 2.0], None, -1), "k"),
    (lambda: q.hw_kmeans([1.0, 2.0], None, 2, iters=-1), "iters"),
    (lambda: q.hw_kmeans([1.0, 2.0], None, 2, init="best"), "init"),
    (lambda: q.hw_kmeans(np.zeros((2, 2, 2)), None, 1), "w"),
    (lambda: q.drhw_kmeans([1.0, 2.0], None, 2, -0.1), "beta"),
    (lambda: q.drhw_kmeans([1.0, 2.0], None, 2, np.nan), "beta"),
    (lambda: q.drhw_kmeans([1.0, 2.0], [1.0, 0.0], 2, 1.0), "h"),
    (lambda: q.drhw_kmeans(np.zeros((3, 2)), np.ones((3, 3, 3)), 2, 1.0), "h"),
    (lambda: q.drhw_kmeans(np.zeros((3, 2)), _spd_fail_cases()[2], 2, 1.0), "h"),
    (lambda: q.drhw_kmeans(np.zeros((3, 2)), _spd_fail_cases()[3], 2, 1.0), "h"),
    (lambda: q.hw_kmeans(np.zeros((3, 2)), -np.ones((3, 2)), 2), "h"),
    (lambda: q.hw_kmeans(np.full((3, 2), np.nan), None, 2), "w"),
    (lambda: q.uniform_quantize([1.0, 2.0], 0), "k"),
    (lambda: q.distortion([1.0, 2.0], None, [1.0], [0, 1]), "labels"),
    (lambda: q.drhw_pair_update(1.0, 0.0, 0.0, 1.0, 1.0), "A1"),
    (lambda: q.drhw_pair_update(np.eye(2), np.zeros(2), -np.eye(2), np.zeros(2), 1.0), "A2"),
    (lambda: q.drhw_pair_update(1.0, 0.0, 1.0, 1.0, -1.0), "beta"),
    (lambda: q.farthest_pair([1.0]), "centers"),
    (lambda: q.distortion(np.zeros((3, 2)), None, np.zeros((2, 3)), [0, 1, 0]), "centers"),
])
def test_bad_input_raises_value_error_naming_the_argument(call, arg):
    with pytest.raises(ValueError, match=rf"\b{arg}\b"):
        call()


def test_brute_force_refuses_large_problems():
    with pytest.raises(ValueError, match="w is too large"):
        q.brute_force_kmeans(np.arange(30.0), None, 8, contiguous=False)


# ----------------------------------------------------------------------------------------- quantize_model

def _net():
    # never run forward: quantize_model only needs the parameters (a conv layer checks the Conv branch)
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3), nn.Conv2d(1, 2, 3))


def _layers(net):
    return compressible_layers(net)


@pytest.mark.parametrize("method,kw", [("uniform", {}), ("kmeans", {"iters": 5}), ("hw_kmeans", {}),
                                       ("hw_exact", {"iters": 30, "seed": 0}), ("drhw", {"beta": 3.0})])
def test_quantize_model_every_method(method, kw):
    net = _net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    h = {name: torch.rand_like(m.weight) + 0.1 for name, m in _layers(net)}
    out, report = q.quantize_model(net, method, 4, h=h, **kw)
    for k, v in net.state_dict().items():  # the original is unchanged
        assert torch.equal(v, before[k])
    for name, m in _layers(out):
        assert torch.equal(m.bias, dict(net.named_modules())[name].bias)  # biases untouched
    assert len(report.layers) == 3
    for layer, (name, m) in zip(report.layers, _layers(out)):
        assert layer.name == name
        vals = set(np.unique(m.weight.detach().numpy()).tolist())
        assert vals <= set(layer.centers.astype(np.float32).tolist()) and len(vals) <= 4
        assert layer.distortion >= 0 and 0 <= layer.entropy_bits <= 2
    assert 0 < report.compression_ratio < 1


def test_quantize_model_hw_exact_is_best_hw_distortion():
    net = _net()
    h = {name: torch.rand_like(m.weight) + 0.1 for name, m in _layers(net)}
    dist = {meth: sum(layer.distortion for layer in q.quantize_model(net, meth, 4, h=h, **kw)[1].layers)
            for meth, kw in [("hw_exact", {}), ("hw_kmeans", {}), ("kmeans", {}), ("uniform", {})]}
    assert dist["hw_exact"] <= min(dist.values()) * (1 + 1e-9)


def test_quantize_model_errors():
    net = _net()
    with pytest.raises(ValueError, match="method"):
        q.quantize_model(net, "median", 4)
    with pytest.raises(ValueError, match="beta"):
        q.quantize_model(net, "drhw", 4)
    with pytest.raises(ValueError, match="h"):
        q.quantize_model(net, "hw_kmeans", 4, h={"0": torch.ones(5, 6)})
    with pytest.raises(ValueError, match="h"):
        q.quantize_model(net, "hw_kmeans", 4, h={"0": torch.ones(5, 6), "2": -torch.ones(3, 5),
                                                 "3": torch.ones(2, 1, 3, 3)})
    assert set(q.METHODS) == {"uniform", "kmeans", "hw_kmeans", "hw_exact", "drhw", "drhw_linear"}


# ------------------------------------------------------------------------------- the authors' linear regularizer

@pytest.mark.parametrize("seed", range(6))
def test_drhw_linear_without_penalty_is_hw_kmeans(seed):
    rng = np.random.default_rng(seed)
    n, k = int(rng.integers(50, 2000)), int(rng.integers(1, 9))
    w, h = rng.standard_t(3, n) * 0.05, rng.gamma(0.5, size=n) + 1e-3
    c0, l0 = q.drhw_linear(w, h, k, 0.0, iters=1000)
    c1, l1 = q.hw_kmeans(w, h, k, iters=1000, init="authors")
    np.testing.assert_allclose(c0, c1, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(l0, l1)


def test_drhw_linear_hand_example():
    # init at the 1/4 and 3/4 quantiles (0.75, 2.25) -> clusters {0,1}, {2,3}, HW means 0.5, 2.5; each end
    # centre moves inwards by λ/(4A) = 4/(4·2) = 0.5, and the labels do not change: a fixed point
    centers, labels = q.drhw_linear([0.0, 1.0, 2.0, 3.0], None, 2, 4.0)
    np.testing.assert_allclose(centers, [1.0, 2.0], rtol=0, atol=1e-15)
    np.testing.assert_array_equal(labels, [0, 0, 1, 1])


@pytest.mark.parametrize("lam", [0.5, 5.0, 50.0])
def test_drhw_linear_fixed_point_shifts_end_centres_by_lambda_over_4A(lam):
    rng = np.random.default_rng(1)
    n, k = 800, 4
    w, h = rng.normal(size=n), rng.gamma(2.0, size=n)
    centers, labels = q.drhw_linear(w, h, k, lam, iters=2000)
    hn = h / h.mean()  # the method normalises h to mean 1
    np.testing.assert_array_equal(labels, q.base._nearest_upper(w, centers))  # a fixed point was reached
    mass = np.bincount(labels, weights=hn, minlength=k)
    mean = np.bincount(labels, weights=hn * w, minlength=k) / mass
    expect = mean.copy()
    expect[0] += lam / (4 * mass[0])
    expect[-1] -= lam / (4 * mass[-1])
    np.testing.assert_allclose(centers, expect, rtol=1e-12, atol=1e-12)
    assert q.diameter(centers) < q.diameter(q.drhw_linear(w, h, k, 0.0, iters=2000)[0])


@pytest.mark.parametrize("scale", [1e-150, 1e-6, 1e9, 1e200])
def test_drhw_linear_is_invariant_to_the_scale_of_h(scale):
    rng = np.random.default_rng(2)
    w, h = rng.normal(size=300), rng.gamma(1.0, size=300) + 0.01
    c0, l0 = q.drhw_linear(w, h, 3, 3.0)
    c1, l1 = q.drhw_linear(w, h * scale, 3, 3.0)
    np.testing.assert_allclose(c0, c1, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(l0, l1)


def test_drhw_linear_method_entry_follows_the_sweep_convention():
    rng = np.random.default_rng(3)
    w, h = rng.normal(size=200), rng.gamma(1.0, size=200) + 0.01
    direct = q.drhw_linear(w, h, 4, 30.0, iters=30)
    for seed in (0, 7):  # deterministic: the seed a sweep passes has no effect
        c, lab = q.METHODS["drhw_linear"](w, h, 4, beta=30.0, iters=30, seed=seed)
        np.testing.assert_array_equal(c, direct[0])
        np.testing.assert_array_equal(lab, direct[1])
    with pytest.raises(ValueError, match="beta"):
        q.METHODS["drhw_linear"](w, h, 4)


@pytest.mark.parametrize("lam", [-1.0, float("nan"), float("inf")])
def test_drhw_linear_rejects_bad_penalty(lam):
    with pytest.raises(ValueError, match="diameter_reg"):
        q.drhw_linear([0.0, 1.0, 2.0], None, 2, lam)


def test_drhw_linear_rejects_a_boolean_penalty():
    with pytest.raises(TypeError, match="diameter_reg"):
        q.drhw_linear([0.0, 1.0, 2.0], None, 2, True)


# ------------------------------------------------------------------------- reliability (issue 14) and speed (15)
# class 4 — a per-weight importance must have its weight's shape: a transposed one pairs the wrong numbers

def _h_like(net, transform=lambda t: t):
    return {name: transform(torch.rand_like(m.weight) + 0.1) for name, m in _layers(net)}


@pytest.mark.parametrize("bad", ["transposed", "flat", "extra_dim", "short"])
def test_check_importances_demands_the_exact_weight_shape(bad):
    net = _net()
    h = _h_like(net)
    name = "2"  # the (3, 5) Linear
    h[name] = {"transposed": h[name].T.contiguous(), "flat": h[name].reshape(-1),
               "extra_dim": h[name][None], "short": h[name][:, :-1]}[bad]
    with pytest.raises(ValueError, match=r"h\['2'\]"):
        q.check_importances(h, net)
    with pytest.raises(ValueError, match=r"h\['2'\]"):
        q.quantize_model(net, "hw_kmeans", 4, h=h)


@pytest.mark.parametrize("value, error", [(float("nan"), ValueError), (float("inf"), ValueError),
                                          (0.0, ValueError), (-1.0, ValueError)])
def test_check_importances_values(value, error):
    net = _net()
    h = _h_like(net)
    h["0"][1, 2] = value
    with pytest.raises(error, match=r"h\['0'\]"):
        q.check_importances(h, net)
    if value == 0.0:  # a curvature for pruning may be zero
        assert q.check_importances(h, net, sign="nonnegative")["0"][1, 2] == 0.0
    if value == -1.0:  # a saliency may be anything finite
        assert q.check_importances(h, net, sign="any")["0"][1, 2] == -1.0


def test_check_importances_kinds_and_result():
    net = _net()
    h = _h_like(net)
    out = q.check_importances({**h, "unused": torch.ones(2)}, net)  # extra entries are ignored
    assert set(out) == {"0", "2", "3"} and all(out[n].dtype == np.float64 for n in out)
    np.testing.assert_array_equal(out["3"], h["3"].double().numpy())
    with pytest.raises(TypeError, match="h"):
        q.check_importances([h["0"]], net)
    with pytest.raises(ValueError, match="no entry"):
        q.check_importances({"0": h["0"]}, net)
    with pytest.raises(TypeError, match=r"h\['0'\]"):
        q.check_importances({**h, "0": "ones"}, net)
    with pytest.raises(TypeError, match=r"h\['0'\]"):
        q.check_importances({**h, "0": h["0"] > 0.5}, net)
    with pytest.raises(TypeError, match="model"):
        q.check_importances(h, "net")


@pytest.mark.parametrize("fn", [lambda w, h: q.weighted_kmeans_1d(w, h, 3), lambda w, h: q.drhw_linear(w, h, 3, 1.0),
                                lambda w, h: q.init_centers(w, 3, h=h), lambda w, h: q.brute_force_kmeans(w, h, 2),
                                lambda w, h: q.distortion(w, h, [0.0, 1.0], np.zeros(w.size, int)),
                                lambda w, h: q.METHODS["hw_kmeans"](w, h, 3)])
def test_scalar_quantizers_refuse_a_transposed_importance(fn):
    # these flatten any w (scalar weights); a 2-D w given to hw_kmeans/drhw_kmeans is the vector case
    rng = np.random.default_rng(0)
    w, h = rng.normal(size=(3, 4)), rng.uniform(0.5, 2.0, size=(3, 4))
    with pytest.raises(ValueError, match="h"):
        fn(w, h.T)
    fn(w, h)  # the same shape, or the flat form, pair by position
    fn(w, h.reshape(-1))


def test_vector_quantizers_refuse_transposed_blocks():
    rng = np.random.default_rng(0)
    W = rng.normal(size=(5, 3))
    with pytest.raises(ValueError, match="h"):
        q.hw_kmeans(W, np.ones((3, 5)), 2)
    with pytest.raises(ValueError, match="h"):
        q.hw_kmeans(W, np.ones((3, 5, 5)), 2)


# class 5 — scale-invariant problems give scale-invariant answers

@settings(max_examples=30, deadline=None)
@given(problem=weighted_problem(n_min=2, n_max=40), e=st.integers(-1000, 1000))
def test_exact_quantizer_is_invariant_to_a_power_of_two_scale_of_h(problem, e):
    w, h, k = problem
    c0, l0 = q.weighted_kmeans_1d(w, h, k)
    hs = h * 2.0 ** e
    if not (np.isfinite(hs).all() and (hs > 0).all()):
        return
    c1, l1 = q.weighted_kmeans_1d(w, hs, k)
    np.testing.assert_array_equal(l0, l1)
    np.testing.assert_array_equal(c0, c1)


@pytest.mark.parametrize("scale", [1e-200, 1e-100, 1e100, 1e160, 1e300])
@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_exact_quantizer_at_extreme_importances(scale, backend):
    rng = np.random.default_rng(1)
    w, h = rng.normal(size=300), rng.uniform(0.5, 2.0, 300)
    c0, l0 = q.weighted_kmeans_1d(w, h, 5, backend=backend)
    c1, l1 = q.weighted_kmeans_1d(w, h * scale, 5, backend=backend)
    np.testing.assert_array_equal(l0, l1)
    np.testing.assert_allclose(c0, c1, rtol=1e-12)
    c2, l2 = q.weighted_kmeans_1d(w * 1e150, h, 5, backend=backend)  # and of the weights
    np.testing.assert_array_equal(l0, l2)
    np.testing.assert_allclose(c0 * 1e150, c2, rtol=1e-12)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_exact_quantizer_when_h_spans_17_orders_of_magnitude(seed, backend):
    rng = np.random.default_rng(seed)
    n = 9 if seed % 2 else 200
    w, h = rng.normal(size=n), 10.0 ** rng.uniform(-17, 0, n)
    for k in (2, 3, 5, min(20, n - 1)):
        c, lab = q.weighted_kmeans_1d(w, h, k, backend=backend)
        assert np.isfinite(c).all() and lab.min() >= 0 and lab.max() < c.size
        d = q.distortion(w, h, c, lab)
        slack = 1e-12 * float(np.sum(h * w**2))  # the resolution of the prefix sums
        assert d <= q.distortion(w, h, *q.hw_kmeans(w, h, k)) + slack
        if n <= 9:
            assert d <= q.brute_force_kmeans(w, h, k) + slack


@pytest.mark.parametrize("scale", [1e-200, 1e160, 1e300])
def test_drhw_has_no_nan_for_extreme_importances_and_scales_beta_with_h(scale):
    rng = np.random.default_rng(2)
    w, h = rng.normal(size=200), rng.uniform(0.5, 2.0, 200)
    c0, l0 = q.drhw_kmeans(w, h, 4, 5.0)
    c1, l1 = q.drhw_kmeans(w, h * scale, 4, 5.0 * scale)
    assert np.isfinite(c1).all()
    np.testing.assert_allclose(c0, c1, rtol=1e-12)
    np.testing.assert_array_equal(l0, l1)
    W, H = rng.normal(size=(60, 2)), _random_spd(rng, 60, 2)
    C0, L0 = q.drhw_kmeans(W, H, 3, 2.0)
    C1, L1 = q.drhw_kmeans(W, H * scale, 3, 2.0 * scale)
    assert np.isfinite(C1).all()
    np.testing.assert_allclose(C0, C1, rtol=1e-9)
    np.testing.assert_array_equal(L0, L1)


# class 8 — seeds are non-negative integers (None is refused); flags are bools

BAD_SEEDS = [None, -1, 1.5, True, "0", np.float64(2.0)]


@pytest.mark.parametrize("seed", BAD_SEEDS)
@pytest.mark.parametrize("call", [
    lambda s: q.init_centers([0.0, 1.0, 2.0], 2, init="random", seed=s),
    lambda s: q.kmeans([0.0, 1.0, 2.0], 2, init="random", seed=s),
    lambda s: q.hw_kmeans([0.0, 1.0, 2.0], None, 2, seed=s),
    lambda s: q.drhw_kmeans(np.zeros((3, 2)), None, 2, 1.0, init="random", seed=s),
])
def test_seeds_must_be_non_negative_integers(call, seed):
    with pytest.raises((TypeError, ValueError), match="seed"):
        call(seed)


def test_random_init_is_reproducible_from_its_seed():
    w = np.random.default_rng(0).normal(size=500)
    a, b = q.kmeans(w, 6, init="random", seed=3), q.kmeans(w, 6, init="random", seed=3)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], q.kmeans(w, 6, init="random", seed=4)[0])


@pytest.mark.parametrize("flag", ["no", "False", 0, 1, None, np.array([True])])
def test_boolean_flags_must_be_bools(flag):
    with pytest.raises(TypeError, match="contiguous"):
        q.brute_force_kmeans([0.0, 1.0, 3.0], None, 2, contiguous=flag)
    with pytest.raises((TypeError, ValueError), match="sign"):
        q.check_importances(_h_like(_net()), _net(), sign=flag)


# class 12 — every public function: wrong kinds and values fail first, naming the argument

HOSTILE = [None, "abc", True, 1 + 2j, [[1.0, 2.0], [3.0]], {"a": 1}, [np.nan, 1.0], [], np.array([True, False])]
GOOD = {
    q.init_centers: dict(w=[0.0, 1.0, 2.0], k=2),
    q.assign: dict(w=[0.0, 1.0, 2.0], centers=[0.0, 2.0]),
    q.hw_kmeans: dict(w=[0.0, 1.0, 2.0], h=[1.0, 1.0, 2.0], k=2),
    q.drhw_kmeans: dict(w=[0.0, 1.0, 2.0], h=[1.0, 1.0, 2.0], k=2, beta=1.0),
    q.drhw_linear: dict(w=[0.0, 1.0, 2.0], h=[1.0, 1.0, 2.0], k=2, diameter_reg=1.0),
    q.kmeans: dict(w=[0.0, 1.0, 2.0], k=2),
    q.uniform_quantize: dict(w=[0.0, 1.0, 2.0], k=2),
    q.weighted_kmeans_1d: dict(w=[0.0, 1.0, 2.0], h=[1.0, 1.0, 2.0], k=2),
    q.brute_force_kmeans: dict(w=[0.0, 1.0, 2.0], h=[1.0, 1.0, 2.0], k=2),
    q.distortion: dict(w=[0.0, 1.0, 2.0], h=[1.0, 1.0, 2.0], centers=[0.0, 2.0], labels=[0, 0, 1]),
    q.diameter: dict(centers=[0.0, 2.0]),
    q.farthest_pair: dict(centers=[0.0, 2.0]),
    q.label_entropy_bits: dict(labels=[0, 0, 1], k=2),
    q.entropy_coded_bits: dict(labels=[0, 0, 1], k=2),
    q.drhw_pair_update: dict(A1=1.0, B1=0.0, A2=1.0, B2=1.0, beta=1.0),
}
OPTIONAL_NONE = {"h"}  # None is a valid value there (all ones)
CASES = [(fn, arg, i) for fn, good in GOOD.items() for arg in good for i in range(len(HOSTILE))
         if not (arg in OPTIONAL_NONE and HOSTILE[i] is None)]


@pytest.mark.parametrize("fn, arg, i", CASES, ids=[f"{f.__name__}-{a}-{i}" for f, a, i in CASES])
def test_hostile_inputs_fail_clearly(fn, arg, i):
    fn(**GOOD[fn])  # the good call works
    with pytest.raises((TypeError, ValueError), match=rf"\b{arg}\b"):
        fn(**{**GOOD[fn], arg: HOSTILE[i]})


@pytest.mark.parametrize("centers", [[np.nan, 0.0], [0.0, np.inf], [[0.0, np.nan], [1.0, 1.0]]])
def test_assign_refuses_non_finite_centres(centers):
    w = [0.5, 1.0] if np.ndim(centers) == 1 else [[0.5, 1.0], [1.0, 2.0]]
    with pytest.raises(ValueError, match="centers"):
        q.assign(w, centers)


def test_vector_assign_checks_its_weights():
    with pytest.raises(ValueError, match="w"):
        q.assign([[np.nan, 1.0]], [[0.0, 0.0], [1.0, 1.0]])
    with pytest.raises(ValueError, match="w"):
        q.assign(np.zeros((0, 2)), [[0.0, 0.0], [1.0, 1.0]])


@pytest.mark.parametrize("kw", [dict(k=2.0), dict(k=True), dict(k=0), dict(iters=-1), dict(iters=2.5),
                                dict(init=3), dict(init="best"), dict(seed=None)])
def test_lloyd_settings_fail_clearly(kw):
    with pytest.raises((TypeError, ValueError), match=next(iter(kw))):
        q.hw_kmeans(**{"w": [0.0, 1.0, 2.0], "h": None, "k": 2, **kw})


def test_quantize_model_refuses_bad_models_and_settings():
    with pytest.raises(TypeError, match="model"):
        q.quantize_model("net", "kmeans", 4)
    with pytest.raises(ValueError, match="method"):
        q.quantize_model(_net(), ["kmeans"], 4)
    with pytest.raises((TypeError, ValueError), match="k"):
        q.quantize_model(_net(), "kmeans", 4.0)
    net = _net()
    with torch.no_grad():
        net[0].weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        q.quantize_model(net, "kmeans", 4)
    with pytest.raises(ValueError, match="layers"):
        q.QuantizationReport([])


# issue 15 — Lloyd's scalar iteration sorts once (prefix sums) with the same results as binning every step

@pytest.mark.parametrize("seed", range(8))
def test_lloyd_prefix_sums_match_binning(seed):
    rng = np.random.default_rng(seed)
    n, k = int(rng.integers(100, 20_000)), int(rng.choice([2, 4, 16, 32]))
    w = rng.laplace(0, 0.05, n).astype(np.float32).astype(np.float64)  # float32 weights, as from a network
    h = rng.lognormal(0, 1, n)
    c0, l0 = oracles.lloyd_by_binning(w, h, k)
    c1, l1 = q.hw_kmeans(w, h, k)
    np.testing.assert_array_equal(l0, l1)
    np.testing.assert_allclose(c0, c1, rtol=1e-13, atol=1e-300)


# issue 15 — start-up: no torch (nor numba) on import; a cache dir that cannot be written is not an error

def _run_python(code, **env):
    import os
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=timeouts.child_process(),
                         env={**os.environ, **env})
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_import_does_not_load_torch_or_numba():
    out = _run_python("import sys, poprisk.quantize; print('torch' in sys.modules, 'numba' in sys.modules)")
    assert out.split() == ["False", "False"]


def test_kernel_falls_back_quietly_without_a_writable_cache(monkeypatch):
    numba = pytest.importorskip("numba")
    import warnings

    asked = []

    def refusing(*args, **kw):  # what numba does where no cache directory can be written
        asked.append(bool(kw.get("cache")))
        if kw.get("cache"):
            raise RuntimeError("cannot cache function '_nb_dp': no locator available for file")
        return lambda fn: fn  # compile nothing: the kernel's Python source runs (same code, slowly)

    monkeypatch.setattr(numba, "njit", refusing)
    monkeypatch.setattr(q.kernels, "_KERNEL", {})
    for name, fn in q.kernels._NB_PYTHON.items():
        monkeypatch.setattr(q.kernels, name, fn)
    w = np.random.default_rng(0).normal(size=60)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        c, lab = q.weighted_kmeans_1d(w, None, 4, backend="numba")
    assert asked == [True, False] * 6
    c2, lab2 = q.weighted_kmeans_1d(w, None, 4, backend="numpy")
    np.testing.assert_array_equal(lab, lab2)
    np.testing.assert_allclose(c, c2, rtol=1e-12)


# issue 15 — exact 1-D K-means at large K by the Lagrangian search, checked against the DP

@settings(max_examples=60, deadline=None)
@given(problem=weighted_problem(n_min=2, n_max=60))
def test_lagrangian_search_gives_the_dp_optimum(problem):
    w, h, k = problem
    c1, l1 = q.weighted_kmeans_1d(w, h, k, backend="numba")
    c2, l2 = q.weighted_kmeans_1d(w, h, k, backend="lagrangian")  # grid values: ties in K, the DP fallback
    assert c2.size == c1.size and np.all(np.diff(c2) > 0)
    assert _close(_obj(w, h, c2, l2), _obj(w, h, c1, l1))


@pytest.mark.parametrize("seed", range(3))
def test_lagrangian_search_at_large_k(seed):
    rng = np.random.default_rng(seed)
    w, h = rng.laplace(0, 0.05, 20_000), rng.lognormal(0, 1, 20_000)
    for k in (70, 300):
        c1, l1 = q.weighted_kmeans_1d(w, h, k, backend="numba")
        c2, l2 = q.weighted_kmeans_1d(w, h, k)  # "auto" takes the Lagrangian route above 16 centres
        assert c2.size == k
        assert _obj(w, h, c2, l2) <= _obj(w, h, c1, l1) * (1 + 1e-14)  # the optimum, to the last digits
        np.testing.assert_array_equal(np.bincount(l2, minlength=k) > 0, True)


def test_lagrangian_ties_fall_back_to_the_dp(monkeypatch):
    # equally spaced equal-weight points: F(K) is linear over ranges of K, where no price isolates one count
    searches = []
    search = q.exact._lagrangian_bounds
    monkeypatch.setattr(q.exact, "_lagrangian_bounds",
                        lambda *a, **kw: searches.append(search(*a, **kw)) or searches[-1])
    w = np.repeat(np.arange(8.0), 3)
    for k in range(1, 8):
        c1, l1 = q.weighted_kmeans_1d(w, None, k, backend="numba")
        c2, l2 = q.weighted_kmeans_1d(w, None, k, backend="lagrangian")
        assert c2.size == k and _close(_obj(w, None, c2, l2), _obj(w, None, c1, l1))
    assert any(b is None for b in searches) and any(b is not None for b in searches)


def test_huge_codebooks_fail_clearly_or_cost_nothing():
    with pytest.raises(ValueError, match="k="):
        q.uniform_quantize([0.0, 1.0, 2.0], 10**12)
    # the entropy of labels does not depend on how many codes are unused (no array of size k is made)
    assert q.label_entropy_bits([0, 0, 1, 1], 10**15) == pytest.approx(1.0)
    assert q.entropy_coded_bits([0, 0, 1, 1], 2**40, codebook_bits=0) == pytest.approx(4.0)


def test_check_masks_demands_boolean_masks_of_the_weight_shape():
    net = _net()
    masks = {name: torch.ones(m.weight.shape, dtype=torch.bool) for name, m in compressible_layers(net)}
    out = q.check_masks(masks, net)
    assert all(a.dtype == bool and a.shape == tuple(masks[k].shape) for k, a in out.items())
    with pytest.raises(TypeError, match=r"masks\['2'\] must be a boolean mask"):
        q.check_masks({**masks, "2": masks["2"].float()}, net)
    with pytest.raises(ValueError, match=r"masks\['2'\] has shape"):
        q.check_masks({**masks, "2": masks["2"].T}, net)
    with pytest.raises(ValueError, match="no entry for layer '2'"):
        q.check_masks({k: v for k, v in masks.items() if k != "2"}, net)


# --- chapter 7's experiment functions (poprisk.quantize.study) --------------------------------------------------

def test_study_dp_random_checks_pass_and_count_trials():
    from poprisk.quantize import study

    gap, monotone, violations = study.dp_random_checks(20, seed=1)
    assert gap < 1e-12 and monotone and violations == 0


def test_study_labelling_distortion_and_closed_form():
    from poprisk.quantize import study

    w, h = np.array([0.0, 1.0, 4.0, 6.0]), np.array([1.0, 3.0, 1.0, 1.0])
    # clusters {0,1} (centre 0.75) and {4,6} (centre 5): 0.75^2 + 3*0.25^2 + 1 + 1
    assert np.isclose(study.labelling_distortion(w, h, [0, 0, 1, 1], 2), 0.5625 + 0.1875 + 2.0)
    for beta in (0.0, 0.7, 30.0):
        assert np.allclose(q.drhw_pair_update(2.0, -3.0, 5.0, 4.0, beta),
                           study.drhw_pair_closed_form(2.0, -3.0, 5.0, 4.0, beta))
    assert study.worst_pair_distance_increase(np.random.default_rng(0), n_trials=10) <= 1e-12


def test_study_sweeps_and_solver_rows():
    import torch

    from poprisk.quantize import study

    rng = np.random.default_rng(0)
    w, h = rng.normal(size=200), rng.gamma(1.0, size=200) + 0.05
    centres, diameters, distortions, settled = study.drhw_sweep(w, h, 3, [0.0, 1.0, 100.0])
    assert centres.shape == (3, 3) and 0 <= settled <= 3
    assert diameters[-1] < diameters[0] and distortions[-1] > distortions[0]
    rows = study.solver_excess_rows({"a": (w, h)}, [2, 4])
    assert [r["K"] for r in rows] == [2, 4]
    assert all(r["Lloyd HW"] >= -1e-9 and r["plain K-means"] >= -1e-9 for r in rows)
    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.ReLU(), torch.nn.Linear(2, 1))
    imp = {"0": torch.zeros(2, 3), "2": torch.ones(1, 2)}
    layers = study.linear_layer_arrays(net, imp)
    assert list(layers) == ["0", "2"] and layers["0"][0].shape == (6,)
    assert study.zero_curvature_shares(layers, imp) == [("0", 6, 1.0), ("2", 2, 0.0)]
    W = rng.normal(size=(30, 2))
    H = np.broadcast_to(np.eye(2), (30, 2, 2)).copy()
    assert study.drhw_centre_path(W, H, 2, [0.0, 5.0]).shape == (2, 2, 2)
    diam, pairs = study.drhw_diameter_trace(W, H, 3, 5.0, n_iters=4)
    assert len(diam) == len(pairs) == 4
