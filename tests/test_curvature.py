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
    with pytest.raises(TypeError, match="loss_fn.*class"):
        cv.hessian_diag(model, nn.CrossEntropyLoss, (x, y))

    class Detached(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(5, 3).double()

        def forward(self, inp):
            return self.fc(inp).detach()

    with pytest.raises(ValueError, match="model.*differentiabl"):
        cv.hessian_diag(Detached(), CE, (x, y))
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


# ------------------------------------------------------------------------- exact: fast path and general path
class Square(nn.Module):
    """h ↦ h ⊙ h: piecewise-linear parts, but a product of two activations that depend on the same weights."""

    def forward(self, h):
        return h * h


def pl_cnn(seed=0):
    """Every piecewise-linear layer type the fast path recognizes, in one small net."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.LeakyReLU(0.1), nn.MaxPool2d(2),
                        nn.Conv2d(4, 4, 2, groups=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Dropout(0.3), nn.Linear(4, 3)).double()
    net[1].running_mean.uniform_(-0.5, 0.5)
    net[1].running_var.uniform_(0.5, 2.0)
    return net


def _forbid(monkeypatch, name):
    def refuse(*args, **kwargs):
        raise AssertionError(f"{name} should not run here")
    monkeypatch.setattr(cv.estimators, name, refuse)


@pytest.mark.parametrize("net", ["relu_mlp", "pl_cnn"])
def test_exact_fast_path_on_piecewise_linear_nets(net, monkeypatch):
    if net == "pl_cnn":
        model, (x, y) = pl_cnn(), data(n=6, c=3, shape=(2, 6, 6))
    else:
        model, (x, y) = mlp(nn.ReLU, seed=5), data()
    reference = exact_rows(model, CE, x, y)
    close(cv.hessian_diag(model, CE, (x, y), "exact", exact_path="hvp"), reference)  # the independent path
    _forbid(monkeypatch, "_exact_hvp")  # the per-unit Hessian-vector path must not be taken
    close(cv.hessian_diag(model, CE, (x, y), "exact"), reference)
    close(cv.hessian_diag(model, CE, (x, y), "exact", batch_size=4, exact_path="factor"), reference)


@pytest.mark.parametrize("net", ["tanh", "square"])
def test_exact_general_path_where_the_fast_path_does_not_apply(net, monkeypatch):
    if net == "tanh":
        model = mlp(nn.Tanh)
    else:
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), Square(), nn.Linear(4, 3)).double()
    x, y = data()
    with pytest.raises(ValueError, match="exact_path"):
        cv.hessian_diag(model, CE, (x, y), "exact", exact_path="factor")
    with pytest.raises(ValueError, match="exact_path"):
        cv.hessian_diag(model, CE, (x, y), "exact", exact_path="fast")
    _forbid(monkeypatch, "_diag_from_seeds")  # a factor-only answer would miss the residual term
    h = cv.hessian_diag(model, CE, (x, y), "exact")
    close(h, exact_rows(model, CE, x, y))
    monkeypatch.undo()
    residual = cv.flatten(h) - cv.flatten(cv.hessian_diag(model, CE, (x, y), "ggn"))
    assert np.abs(residual).max() > 1e-6  # the residual diagonal is really non-zero on these nets


def test_piecewise_linear_detection():
    x, _ = data()
    img = torch.randn(2, 2, 6, 6, dtype=torch.float64)
    cases = [(mlp(nn.ReLU), x, True), (mlp(nn.Tanh), x, False), (pl_cnn(), img, True),
             (nn.Sequential(nn.Linear(5, 4), Square(), nn.Linear(4, 3)).double(), x, False),
             (models.MLP(in_features=5, hidden=(4,), n_classes=3).double(), x, True),
             (models.VGGSmall(width=1 / 64).double(), torch.randn(2, 3, 16, 16, dtype=torch.float64), True)]
    for model, inp, expected in cases:
        model.eval()
        assert cv.factors._piecewise_linear(model(inp), models.compressible_layers(model)) is expected
    bn = nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 3)).double().train()
    assert not cv.factors._piecewise_linear(bn(x), models.compressible_layers(bn))  # batch statistics


def _signed_loss(z, t):
    """A loss that is not convex in the outputs: its output Hessian has negative eigenvalues."""
    return (torch.cos(z) * t).sum(1).mean() + 0.1 * (z ** 2).sum(1).mean()


def test_non_convex_loss_exact_and_ggn_use_the_signed_output_hessian():
    model, (x, _) = mlp(nn.ReLU, seed=1), data()
    t = torch.rand(x.shape[0], 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    close(cv.hessian_diag(model, _signed_loss, (x, t), "exact"), exact_rows(model, _signed_loss, x, t))
    mats = cv.curvature_matrices(model, _signed_loss, (x, t))
    ggn = cv.hessian_diag(model, _signed_loss, (x, t), "ggn")
    close(ggn, cv.split_by_layer(mats["ggn"].diagonal(), model))
    assert (cv.flatten(ggn) < 0).any()  # the diagonal of G itself, not of its positive part


# ------------------------------------------------------------------------ convolution strategies and chunks
def conv_net(kind, seed=0):
    torch.manual_seed(seed)
    if kind == "conv1d":
        return nn.Sequential(nn.Conv1d(2, 3, 3, stride=2, padding=1, dilation=1), nn.ReLU(), nn.Flatten(),
                             nn.Linear(3 * 4, 3)).double(), (2, 8)
    if kind == "strided_dilated_grouped":
        return nn.Sequential(nn.Conv2d(2, 4, 3, stride=2, padding=2, dilation=2, groups=2), nn.Tanh(),
                             nn.Flatten(), nn.Linear(4 * 3 * 3, 3)).double(), (2, 6, 6)
    if kind == "reflect":  # no patch view: the torch.func per-example path
        return nn.Sequential(nn.Conv2d(2, 3, 3, padding=1, padding_mode="reflect"), nn.Tanh(), nn.Flatten(),
                             nn.Linear(3 * 4 * 4, 3)).double(), (2, 4, 4)
    if kind == "conv3d":
        return nn.Sequential(nn.Conv3d(1, 2, 2), nn.Tanh(), nn.Flatten(), nn.Linear(2 * 2 * 2 * 2, 3)).double(), \
            (1, 3, 3, 3)
    if kind == "sequence":  # a Linear applied at every position of a sequence
        return nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Flatten(), nn.Linear(3 * 5, 3)).double(), (5, 4)
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["conv1d", "strided_dilated_grouped", "reflect", "conv3d", "sequence"])
@pytest.mark.parametrize("pairs", [0, 10**6])
def test_conv_strategies_equal_brute_force(kind, pairs, monkeypatch):
    model, shape = conv_net(kind)
    x, y = data(n=5, shape=shape)
    reference = brute_force(model, CE, x, y, "ggn")
    monkeypatch.setattr(cv.products, "_PAIRS_MEMORY", pairs)  # 0: per-example products; huge: position pairs
    close(cv.hessian_diag(model, CE, (x, y), "ggn"), reference)


def test_memory_bound_chunks_do_not_change_the_result(monkeypatch):
    model, (x, y) = pl_cnn(), data(n=9, shape=(2, 6, 6))
    whole = {m: cv.hessian_diag(model, CE, (x, y), m) for m in ("ggn", "exact", "empirical_fisher")}
    monkeypatch.setattr(cv.plumbing, "_MEMORY_BYTES", 1)  # one example per chunk
    for m, h in whole.items():
        close(cv.hessian_diag(model, CE, (x, y), m), h)


# -------------------------------------------------------------------------- losses the estimators support
@pytest.mark.parametrize("loss_fn, match", [
    (nn.CrossEntropyLoss(reduction="sum"), "loss_fn.*reduction"),
    (nn.CrossEntropyLoss(reduction="none"), "loss_fn.*reduction"),
    (nn.CrossEntropyLoss(weight=torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)), "loss_fn.*weight"),
    (nn.NLLLoss(weight=torch.ones(3, dtype=torch.float64)), "loss_fn.*weight"),
    (lambda z, t: F.cross_entropy(z, t, reduction="sum"), "loss_fn.*mean"),
    (lambda z, t: F.cross_entropy(z, t, reduction="none"), "loss_fn.*scalar"),
    (lambda z, t: F.cross_entropy(z, t, weight=torch.tensor([1.0, 5.0, 0.2], dtype=torch.float64)),
     "loss_fn.*mean"),
    (lambda z, t: F.cross_entropy(z, t) * float("nan"), "loss_fn.*non-finite"),
    (lambda z, t: (z @ torch.ones(4, dtype=z.dtype)).mean(), "loss_fn.*failed"),
])
@pytest.mark.parametrize("method", ["exact", "ggn", "hutchinson", "empirical_fisher"])
def test_unsupported_losses_are_refused(loss_fn, match, method):
    model, (x, y) = mlp(nn.Tanh), data()
    with pytest.raises(ValueError, match=match):
        cv.hessian_diag(model, loss_fn, (x, y), method, n_probes=2)


def test_ignore_index_and_label_range():
    model, (x, y) = mlp(nn.Tanh), data()
    with pytest.raises(ValueError, match="ignore_index"):
        cv.hessian_diag(model, nn.CrossEntropyLoss(ignore_index=int(y[0])), (x, y))
    close(cv.hessian_diag(model, nn.CrossEntropyLoss(ignore_index=7), (x, y)), cv.hessian_diag(model, CE, (x, y)))
    for bad in (y + 3, y - 3):
        with pytest.raises(ValueError, match="data.*labels"):
            cv.hessian_diag(model, CE, (x, bad))


@pytest.mark.parametrize("method", ["exact", "ggn", "empirical_fisher"])
def test_label_smoothing_and_soft_targets_are_handled_exactly(method):
    model, (x, y) = mlp(nn.Tanh), data()
    smooth = nn.CrossEntropyLoss(label_smoothing=0.2)
    h = cv.hessian_diag(model, smooth, (x, y), method)
    if method == "exact":
        close(h, exact_rows(model, smooth, x, y))
    else:
        close(h, brute_force(model, smooth, x, y, method))
    soft = F.one_hot(y, 3).double() * 0.8 + 0.2 / 3  # the same loss with probability targets
    close(cv.hessian_diag(model, CE, (x, soft), method), h)


@pytest.mark.parametrize("method", ["mc_fisher", "authors_sq_ce"])
def test_methods_that_need_cross_entropy_refuse_other_losses(method):
    model, (x, _) = mlp(nn.Tanh), data()
    with pytest.raises(ValueError, match="loss_fn"):
        cv.hessian_diag(model, nn.MSELoss(), (x, torch.zeros(7, 3, dtype=torch.float64)), method)
    if method == "mc_fisher":
        with pytest.raises(ValueError, match="loss_fn"):
            cv.hessian_diag(model, nn.CrossEntropyLoss(label_smoothing=0.1), data(), method)


# ------------------------------------------------------------------------------------ inputs fail clearly
def _x():
    return data()[0]


def _y():
    return data()[1]


BAD_DATA = [
    (lambda: _x(), TypeError, "data"),
    (lambda: (_x(), _y(), _y()), TypeError, "data"),
    (lambda: (_x().numpy(), _y()), TypeError, "data: x"),
    (lambda: (_x(), _y().tolist()), TypeError, "data: y"),
    (lambda: (_x()[:0], _y()[:0]), ValueError, "data"),
    (lambda: (_x(), _y()[:3]), ValueError, "data"),
    (lambda: (torch.tensor(1.0, dtype=torch.float64), _y()), ValueError, "data: x"),
    (lambda: (_x().index_fill(0, torch.tensor([2]), float("nan")), _y()), ValueError, "data: x.*non-finite"),
    (lambda: (_x().index_fill(0, torch.tensor([2]), float("inf")), _y()), ValueError, "data: x.*non-finite"),
    (lambda: (_x().requires_grad_(True), _y()), ValueError, "data: x requires grad"),
    (lambda: (_x(), _y().double()), ValueError, "data: y"),
    (lambda: (_x(), _y().bool()), TypeError, "data: y"),
    (lambda: (_x(), _y().reshape(7, 1)), ValueError, "data: y"),
    (lambda: (_x().float(), _y()), TypeError, "data: x is torch.float32"),
    (lambda: (_x()[:, :4], _y()), ValueError, "model\\(x\\) failed.*data"),
    (lambda: (_x().long(), _y()), ValueError, "model\\(x\\) failed.*data"),
]


@pytest.mark.parametrize("make, error, match", BAD_DATA)
@pytest.mark.parametrize("method", ["ggn", "exact", "hutchinson"])
def test_bad_data_is_refused_naming_it(make, error, match, method):
    with pytest.raises(error, match=match):
        cv.hessian_diag(mlp(nn.Tanh), CE, make(), method, n_probes=2)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(n_probes=0), ValueError, "n_probes"), (dict(n_probes=2.5), TypeError, "n_probes"),
    (dict(n_probes=True), TypeError, "n_probes"), (dict(mc_samples=-1), ValueError, "mc_samples"),
    (dict(mc_samples="2"), TypeError, "mc_samples"), (dict(batch_size=0), ValueError, "batch_size"),
    (dict(batch_size=-1), ValueError, "batch_size"), (dict(batch_size=1.0), TypeError, "batch_size"),
    (dict(seed=-1), ValueError, "seed"), (dict(seed=None), TypeError, "seed"), (dict(seed=1.5), TypeError, "seed"),
    (dict(method=None), ValueError, "method"), (dict(method=["ggn"]), ValueError, "method"),
])
def test_bad_options_are_refused_naming_them(kwargs, error, match):
    model, (x, y) = mlp(nn.Tanh), data()
    with pytest.raises(error, match=match):
        cv.hessian_diag(model, CE, (x, y), **kwargs)


@pytest.mark.parametrize("method", ["ggn", "exact", "hutchinson", "mc_fisher"])
def test_non_finite_models_never_give_a_nan_diagonal(method):
    x, y = data()
    model = mlp(nn.ReLU)
    with torch.no_grad():
        model[0].weight[1, 2] = float("nan")
    with pytest.raises(ValueError, match="model.*non-finite"):
        cv.hessian_diag(model, CE, (x, y), method, n_probes=2)
    model = mlp(nn.ReLU)
    with torch.no_grad():
        model[0].weight.mul_(1e200)  # finite weights, overflowing outputs
        model[3].weight.mul_(1e200)
    with pytest.raises(ValueError, match="non-finite|not finite"):
        cv.hessian_diag(model, CE, (x, y), method, n_probes=2)
    bn = nn.Sequential(nn.Linear(5, 3), nn.BatchNorm1d(3, track_running_stats=False)).double()
    with pytest.raises(ValueError, match="model.*batch"):
        cv.hessian_diag(bn, CE, (x, y), method, n_probes=2)


def test_helpers_validate_their_dicts():
    good = {"a": torch.tensor([1.0, 2.0, 3.0]), "b": torch.tensor([[1.0, 0.5]])}
    cases = [
        (cv.normalize, ([1.0],), TypeError, "h must"), (cv.normalize, ({},), TypeError, "h must"),
        (cv.normalize, ({"a": [1.0]},), TypeError, "h\\['a'\\]"),
        (cv.normalize, ({"a": torch.tensor([1.0, float("nan")])},), ValueError, "non-finite"),
        (cv.normalize, ({"a": torch.tensor([1.0, -2.0])},), ValueError, "negative"),
        (cv.normalize, ({"a": torch.zeros(0)},), ValueError, "empty"),
        (cv.normalize, ({"a": torch.tensor([True])},), TypeError, "real"),
        (cv.positive, (good, 0.0), ValueError, "floor"), (cv.positive, (good, 1.5), ValueError, "floor"),
        (cv.positive, (good, float("nan")), ValueError, "floor"), (cv.positive, (good, "1e-3"), TypeError, "floor"),
        (cv.flatten, ({},), TypeError, "h must"),
        (cv.spearman, (good, {"a": good["a"]}), ValueError, "same layers"),
        (cv.spearman, (good, {"a": good["a"], "c": good["b"]}), ValueError, "same layers"),
        (cv.spearman, (good, {"a": good["a"], "b": good["b"].T}), ValueError, "same layers"),
        (cv.spearman, (good, {"a": torch.ones(3), "b": torch.ones(1, 2)}), ValueError, "undefined"),
        (cv.split_by_layer, ([1.0], mlp(nn.Tanh)), TypeError, "vector"),
        (cv.softmax_hessian_factor, (torch.tensor([[0.5, 0.6]]),), ValueError, "sum to 1"),
        (cv.softmax_hessian_factor, (torch.tensor([[1.0]]),), ValueError, "C >= 2"),
        (cv.softmax_hessian_factor, (torch.tensor([[0.5, float("nan")]]),), ValueError, "finite"),
        (cv.softmax_hessian_factor, ([[0.5, 0.5]],), TypeError, "p must"),
    ]
    for fn, args, error, match in cases:
        with pytest.raises(error, match=match):
            fn(*args)
    with pytest.raises(TypeError, match="per_layer"):
        cv.spearman(good, good, per_layer="yes")
    assert cv.spearman(good, {"b": good["b"], "a": good["a"]}) == pytest.approx(1.0)  # key order is irrelevant
    model, (x, y) = mlp(nn.Tanh), data()
    with pytest.raises(TypeError, match="methods"):
        cv.compare_estimators(model, CE, (x, y), "ggn")
    with pytest.raises(ValueError, match="reference"):
        cv.compare_estimators(model, CE, (x, y), ["ggn"], reference="newton")
    with pytest.raises(ValueError, match="repeats"):
        cv.compare_estimators(model, CE, (x, y), ["ggn"], repeats=0)
    with pytest.raises(ValueError, match="loss_fn"):
        cv.gradient_seconds(model, nn.CrossEntropyLoss(reduction="sum"), (x, y))
    with pytest.raises(ValueError, match="max_weights"):
        cv.curvature_matrices(model, CE, (x, y), max_weights=0)


def test_timings_synchronize_the_gpu(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: calls.append(device))
    cv.reference._sync(torch.device("cpu"))
    assert calls == []
    cv.reference._sync(torch.device("cuda", 0))
    assert calls == [torch.device("cuda", 0)]


# ------------------------------------------------------------------ chapter 8's reference helpers
def test_tiny_mlp_is_seeded_float64_with_dropout():
    a, b = cv.tiny_mlp(nn.Tanh, seed=3), cv.tiny_mlp(nn.Tanh, seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert [type(m).__name__ for m in a] == ["Linear", "Tanh", "Dropout", "Linear", "Tanh", "Dropout", "Linear"]
    assert next(a.parameters()).dtype == torch.float64
    with pytest.raises(ValueError, match="sizes"):
        cv.tiny_mlp(sizes=(4,))


def test_fisher_by_enumeration_is_the_expected_outer_product():
    net = cv.tiny_mlp(nn.Tanh, seed=1)
    x = torch.randn(5, 6, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    got = cv.fisher_diag_by_enumeration(net, nn.CrossEntropyLoss(), x, 3)
    want = 0.0
    net.eval()
    for i in range(5):  # autograd gradients of every label's loss, weighted by the model's p_ic
        p = torch.softmax(net(x[i:i + 1]), 1)[0].detach()
        for c in range(3):
            net.zero_grad()
            F.cross_entropy(net(x[i:i + 1]), torch.tensor([c])).backward()
            g = torch.cat([m.weight.grad.reshape(-1) for _, m in models.compressible_layers(net)])
            want = want + p[c].item() * g.numpy() ** 2 / 5
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-15)
    with pytest.raises(ValueError, match="n_classes"):
        cv.fisher_diag_by_enumeration(net, nn.CrossEntropyLoss(), x, 4)


def test_output_space_traces_match_their_definitions():
    z = torch.tensor([[2.0, -1.0, 0.5], [40.0, 0.0, -40.0]], dtype=torch.float64)
    y = torch.tensor([1, 0])
    t = cv.output_space_traces(z, y)
    p = torch.softmax(z, 1)
    lam = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]
    e = torch.eye(3, dtype=torch.float64)[y]
    torch.testing.assert_close(t["ggn"], torch.diagonal(lam, dim1=1, dim2=2).sum(1))
    torch.testing.assert_close(t["empirical_fisher"], ((p - e) ** 2).sum(1))
    torch.testing.assert_close(t["eps"], 1 - p[torch.arange(2), y], rtol=1e-9, atol=1e-15)


def test_tiny_mlp_leaves_the_global_generator_alone():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    a = cv.tiny_mlp(seed=0)
    assert torch.equal(torch.rand(3), expected)
    b = cv.tiny_mlp(seed=0)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
