"""Tests of poprisk.curvature: every estimator against a brute-force reference on tiny nets (float64)."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch import nn
from torch.nn import functional as F

from poprisk import curvature as cv
from poprisk import models
from poprisk import quantize

CE = nn.CrossEntropyLoss()


def mlp(act=nn.Tanh, seed=0, sizes=(5, 4, 3, 3)):
    torch.manual_seed(seed)
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers += [act(), nn.Dropout(0.5)]
    return nn.Sequential(*layers).double()


def cnn(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.Tanh(), nn.Conv2d(3, 2, 2, stride=2), nn.Tanh(),
                         nn.Flatten(), nn.Linear(2 * 2 * 2, 4)).double()


def data(n=7, d=5, c=3, seed=1, shape=None):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, *(shape or (d,)), generator=g, dtype=torch.float64)
    y = torch.randint(0, c, (n,), generator=g)
    return x, y


def exact_rows(model, loss_fn, x, y):
    """Hessian diagonal row by row with plain autograd (the reference of 'exact')."""
    model.eval()
    loss = loss_fn(model(x), y)
    out = {}
    for name, m in models.compressible_layers(model):
        g = torch.autograd.grad(loss, m.weight, create_graph=True)[0].reshape(-1)
        row_diag = [torch.autograd.grad(g[j], m.weight, retain_graph=True)[0].reshape(-1)[j] for j in range(g.numel())]
        out[name] = torch.stack(row_diag).reshape(m.weight.shape).detach()
    return out


def per_example_jacobians(model, x, name):
    """J_i = ∂f(x_i)/∂W for one layer, shape (N, C, *W.shape), one example at a time."""
    model.eval()
    w = dict(model.named_modules())[name].weight
    rows = []
    for i in range(x.shape[0]):
        z = model(x[i:i + 1])[0]
        rows.append(torch.stack([torch.autograd.grad(z[c], w, retain_graph=True)[0] for c in range(z.numel())]))
    return torch.stack(rows)


def brute_force(model, loss_fn, x, y, kind):
    """GGN / empirical-Fisher / authors' diagonals from explicit per-example Jacobians and output Hessians."""
    model.eval()
    z = model(x).detach()
    out = {}
    for name, m in models.compressible_layers(model):
        jac = per_example_jacobians(model, x, name).reshape(x.shape[0], z.shape[1], -1)
        diag = torch.zeros(jac.shape[-1], dtype=torch.float64)
        for i in range(x.shape[0]):
            zi = z[i:i + 1].clone().requires_grad_(True)
            li = loss_fn(zi, y[i:i + 1])
            gi = torch.autograd.grad(li, zi, create_graph=True)[0][0]
            hi = torch.stack([torch.autograd.grad(gi[c], zi, retain_graph=True)[0][0] for c in range(gi.numel())])
            gi = gi.detach()
            if kind == "ggn":
                mat = hi / x.shape[0]
            elif kind == "empirical_fisher":
                mat = torch.outer(gi, gi) / x.shape[0]
            elif kind == "authors_sq_ce":
                mat = 2 * (torch.outer(gi, gi) + li.detach() * hi)
            diag += torch.einsum("cp,cd,dp->p", jac[i], mat, jac[i])
        out[name] = diag.reshape(m.weight.shape)
    return cv.normalize(out) if kind == "authors_sq_ce" else out


def close(a, b, rtol=1e-9, atol=1e-12):
    assert list(a) == list(b)
    for k in a:
        assert a[k].shape == b[k].shape, k
        torch.testing.assert_close(a[k], b[k], rtol=rtol, atol=atol)


# ------------------------------------------------------------------------------------------------- exactness
@pytest.mark.parametrize("act", [nn.Tanh, nn.ReLU, nn.Softplus])
def test_exact_equals_autograd_rows(act):
    model, (x, y) = mlp(act), data()
    close(cv.hessian_diag(model, CE, (x, y), "exact"), exact_rows(model, CE, x, y))


def test_exact_conv_and_mse():
    model, (x, y) = cnn(), data(n=5, c=4, shape=(2, 4, 4))
    close(cv.hessian_diag(model, CE, (x, y), "exact"), exact_rows(model, CE, x, y))
    model, (x, _) = mlp(nn.Tanh), data()
    t = torch.randn(x.shape[0], 3, dtype=torch.float64)
    close(cv.hessian_diag(model, nn.MSELoss(), (x, t), "exact"), exact_rows(model, nn.MSELoss(), x, t))


def test_exact_has_negative_entries_for_tanh():
    model, (x, y) = mlp(nn.Tanh, seed=3, sizes=(5, 8, 3)), data(n=20)
    assert (cv.flatten(cv.hessian_diag(model, CE, (x, y), "exact")) < 0).any()


@pytest.mark.parametrize("kind", ["ggn", "empirical_fisher", "authors_sq_ce"])
@pytest.mark.parametrize("net", ["tanh", "relu", "cnn"])
def test_seed_methods_equal_brute_force(kind, net):
    if net == "cnn":
        model, (x, y) = cnn(), data(n=5, c=4, shape=(2, 4, 4))
    else:
        model, (x, y) = mlp(nn.Tanh if net == "tanh" else nn.ReLU), data()
    close(cv.hessian_diag(model, CE, (x, y), kind), brute_force(model, CE, x, y, kind))


@pytest.mark.parametrize("kind", ["ggn", "empirical_fisher"])
def test_generic_loss_path_equals_brute_force(kind):
    model, (x, _) = mlp(nn.Tanh), data()
    t = torch.randn(x.shape[0], 3, dtype=torch.float64)
    close(cv.hessian_diag(model, nn.MSELoss(), (x, t), kind), brute_force(model, nn.MSELoss(), x, t, kind))
    # a cross-entropy given as a plain function takes the generic path and agrees with the closed form
    close(cv.hessian_diag(model, lambda z, y: F.nll_loss(F.log_softmax(z, 1), y), data(), kind),
          cv.hessian_diag(model, CE, data(), kind))


def test_relu_exact_diagonal_is_ggn_diagonal():
    """Chapter 8's theorem: for a piecewise-linear net the residual term has a zero diagonal."""
    model, (x, y) = mlp(nn.ReLU, seed=2, sizes=(6, 10, 10, 4)), data(n=30, d=6, c=4)
    close(cv.hessian_diag(model, CE, (x, y), "exact"), cv.hessian_diag(model, CE, (x, y), "ggn"))


# --------------------------------------------------------------------------------------- stochastic methods
def test_mc_fisher_is_unbiased_for_ggn_and_seeded():
    model, (x, y) = mlp(nn.Tanh), data()
    ggn = cv.flatten(cv.hessian_diag(model, CE, (x, y), "ggn"))
    many = cv.flatten(cv.hessian_diag(model, CE, (x, y), "mc_fisher", mc_samples=20000, seed=1))
    assert np.abs(many - ggn).max() < 0.03 * np.abs(ggn).max()
    a = cv.hessian_diag(model, CE, (x, y), "mc_fisher", seed=5)
    close(a, cv.hessian_diag(model, CE, (x, y), "mc_fisher", seed=5), rtol=0, atol=0)
    assert not np.allclose(cv.flatten(a), cv.flatten(cv.hessian_diag(model, CE, (x, y), "mc_fisher", seed=6)))


def test_hutchinson_converges_to_exact_and_is_seeded():
    model, (x, y) = mlp(nn.Tanh), data()
    exact = cv.flatten(cv.hessian_diag(model, CE, (x, y), "exact"))
    est = cv.flatten(cv.hessian_diag(model, CE, (x, y), "hutchinson", n_probes=20000, seed=0))
    assert np.abs(est - exact).max() < 0.05 * np.abs(exact).max()
    a = cv.hessian_diag(model, CE, (x, y), "hutchinson", n_probes=3, seed=2)
    close(a, cv.hessian_diag(model, CE, (x, y), "hutchinson", n_probes=3, seed=2), rtol=0, atol=0)


# -------------------------------------------------------------------------------------------- properties
@settings(max_examples=15, deadline=None)
@given(batch=st.integers(1, 9), method=st.sampled_from(["exact", "ggn", "empirical_fisher", "authors_sq_ce"]))
def test_chunking_does_not_change_the_result(batch, method):
    model, (x, y) = mlp(nn.Tanh), data(n=9)
    close(cv.hessian_diag(model, CE, (x, y), method, batch_size=batch), cv.hessian_diag(model, CE, (x, y), method))


@settings(max_examples=40, deadline=None)
@given(c=st.integers(2, 12), scale=st.sampled_from([0.1, 1.0, 10.0, 60.0]), seed=st.integers(0, 10_000))
def test_softmax_factor_reproduces_output_hessian(c, scale, seed):
    z = torch.randn(6, c, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * scale
    p = torch.softmax(z, 1)
    factor = cv.softmax_hessian_factor(p)
    assert factor.shape == (6, c, c - 1) and torch.isfinite(factor).all()
    torch.testing.assert_close(factor @ factor.transpose(1, 2), torch.diag_embed(p) - p[:, :, None] * p[:, None, :],
                               rtol=0, atol=1e-12)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 1000), method=st.sampled_from(["ggn", "mc_fisher", "empirical_fisher", "authors_sq_ce"]))
def test_psd_methods_are_non_negative(seed, method):
    model, (x, y) = mlp(nn.Tanh, seed=seed), data(seed=seed)
    assert (cv.flatten(cv.hessian_diag(model, CE, (x, y), method, seed=seed)) >= 0).all()


def test_authors_variant_has_mean_one_per_layer():
    model, (x, y) = mlp(nn.ReLU), data()
    for t in cv.hessian_diag(model, CE, (x, y), "authors_sq_ce").values():
        assert math.isclose(t.mean().item(), 1.0, rel_tol=1e-12)


def test_model_state_is_restored_and_untouched():
    model, (x, y) = mlp(nn.ReLU), data()
    model.train()
    model[0].weight.requires_grad_(False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for method in cv.METHODS:
        cv.hessian_diag(model, CE, (x, y), method, n_probes=2)
    assert model.training and not model[0].weight.requires_grad and model[3].weight.requires_grad
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


def test_mlp_float32_keys_shapes_and_quantizer_handoff():
    from poprisk.models import MLP

    torch.manual_seed(0)
    model = MLP(in_features=20, hidden=(16, 16), n_classes=5)
    x, y = torch.rand(50, 20), torch.randint(0, 5, (50,))
    h = cv.hessian_diag(model, CE, (x, y))  # the default method
    assert list(h) == ["net.1", "net.4", "net.7"]
    for name, m in models.compressible_layers(model):
        assert h[name].shape == m.weight.shape and h[name].dtype == torch.float32
    out, report = quantize.quantize_model(model, "hw_kmeans", 4, h=cv.positive(h))
    assert len(report.layers) == 3


def test_split_is_accepted():
    from poprisk.data import Split

    x, y = data()
    split = Split(x, y, x[:2], y[:2], "toy")
    model = mlp(nn.Tanh)
    close(cv.hessian_diag(model, CE, split), cv.hessian_diag(model, CE, (x, y)))


# -------------------------------------------------------------------------------------------------- helpers
def test_positive_clips_relative_to_layer_scale():
    h = {"a": torch.tensor([-2.0, 0.0, 1e-9, 3.0]), "b": torch.zeros(3)}
    p = cv.positive(h, floor=1e-3)
    floor_a = 1e-3 * h["a"].abs().mean()
    assert torch.all(p["a"] > 0) and torch.equal(p["b"], torch.ones(3))
    torch.testing.assert_close(p["a"], torch.tensor([floor_a, floor_a, floor_a, 3.0]))
    with pytest.raises(ValueError, match="floor"):
        cv.positive(h, floor=0)
    with pytest.raises(TypeError, match="h must"):
        cv.positive([1.0])


def test_spearman():
    a = {"x": torch.arange(6.0).reshape(2, 3), "y": torch.tensor([3.0, 1.0])}
    b = {"x": torch.arange(6.0).reshape(2, 3) ** 3, "y": torch.tensor([9.0, 2.0])}
    assert cv.spearman(a, a) == pytest.approx(1.0)
    assert cv.spearman(a, b, per_layer=True) == pytest.approx({"x": 1.0, "y": 1.0})
    with pytest.raises(ValueError, match="same layers"):
        cv.spearman(a, {"x": a["x"]})


# ---------------------------------------------------------------------------------------------- validation
def test_validation_names_the_argument():
    model, (x, y) = mlp(nn.Tanh), data()
    with pytest.raises(ValueError, match="method"):
        cv.hessian_diag(model, CE, (x, y), "newton")
    with pytest.raises(TypeError, match="loss_fn"):
        cv.hessian_diag(model, "ce", (x, y))
    with pytest.raises(TypeError, match="data"):
        cv.hessian_diag(model, CE, x)
    with pytest.raises(ValueError, match="data"):
        cv.hessian_diag(model, CE, (x, y[:3]))
    with pytest.raises(ValueError, match="n_probes"):
        cv.hessian_diag(model, CE, (x, y), "hutchinson", n_probes=0)
    with pytest.raises(ValueError, match="mc_samples"):
        cv.hessian_diag(model, CE, (x, y), "mc_fisher", mc_samples=0)
    with pytest.raises(ValueError, match="batch_size"):
        cv.hessian_diag(model, CE, (x, y), batch_size=0)
    with pytest.raises(ValueError, match="seed"):
        cv.hessian_diag(model, CE, (x, y), seed=-1)
    with pytest.raises(ValueError, match="loss_fn"):
        cv.hessian_diag(model, nn.MSELoss(), (x, torch.zeros(7, 3, dtype=torch.float64)), "mc_fisher")
    with pytest.raises(ValueError, match="non-finite"):
        cv.hessian_diag(model, CE, (x * float("nan"), y))
    with pytest.raises(ValueError, match="no Linear or Conv layer to compress"):
        cv.hessian_diag(nn.Sequential(nn.Tanh()), CE, (x, y))
    with pytest.raises(TypeError, match="model"):
        cv.hessian_diag("net", CE, (x, y))


@pytest.mark.parametrize("act", [nn.Tanh, nn.ReLU])
def test_curvature_matrices_decompose_and_match_the_diagonals(act):
    model, (x, y) = mlp(act, seed=4), data(n=6)
    mats = cv.curvature_matrices(model, CE, (x, y))
    torch.testing.assert_close(mats["hessian"], mats["ggn"] + mats["residual"], rtol=1e-10, atol=1e-12)
    assert torch.linalg.eigvalsh(mats["ggn"]).min() > -1e-12
    close(cv.split_by_layer(mats["hessian"].diagonal(), model), cv.hessian_diag(model, CE, (x, y), "exact"))
    close(cv.split_by_layer(mats["ggn"].diagonal(), model), cv.hessian_diag(model, CE, (x, y), "ggn"))
    with pytest.raises(ValueError, match="max_weights"):
        cv.curvature_matrices(model, CE, (x, y), max_weights=10)
    with pytest.raises(ValueError, match="vector"):
        cv.split_by_layer(torch.zeros(3), model)


def test_compare_estimators_rows_and_gradient_timer():
    model, (x, y) = mlp(nn.ReLU), data()
    model[0].weight.grad = torch.ones_like(model[0].weight)
    assert cv.gradient_seconds(model, CE, (x, y)) > 0
    assert torch.equal(model[0].weight.grad, torch.ones_like(model[0].weight)) and model[3].weight.grad is None
    rows, est = cv.compare_estimators(model, CE, (x, y), ["ggn", "exact", "hutchinson"], repeats=2, n_probes=4)
    assert [r["method"] for r in rows] == ["ggn", "exact", "hutchinson"] and set(est) == {"ggn", "exact", "hutchinson"}
    by = {r["method"]: r for r in rows}
    assert by["exact"]["spearman"] == pytest.approx(1.0) and by["ggn"]["spearman"] == pytest.approx(1.0)
    assert all(r["seconds"] > 0 and r["x_gradient"] > 0 for r in rows)
    with pytest.raises(ValueError, match="methods"):
        cv.compare_estimators(model, CE, (x, y), ["newton"])
