"""Tests of poprisk.prune: magnitude and curvature (OBD) pruning."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch import nn

from poprisk import models, prune


def net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 4 * 4, 7), nn.ReLU(),
                         nn.Linear(7, 3))


def weights(model):
    return {name: m.weight.detach().clone() for name, m in models.compressible_layers(model)}


def n_weights(model):
    return sum(m.weight.numel() for _, m in models.compressible_layers(model))


@settings(max_examples=40, deadline=None)
@given(ratio=st.floats(0, 1), seed=st.integers(0, 10_000), scope=st.sampled_from(prune.SCOPES))
def test_magnitude_prune_counts_and_order(ratio, seed, scope):
    model = net(seed)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out, report = prune.magnitude_prune(model, ratio, scope=scope)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # original untouched
    old, new = weights(model), weights(out)
    for name, m in out.named_modules():  # biases untouched
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            assert torch.equal(m.bias, dict(model.named_modules())[name].bias)
    groups = [list(old)] if scope == "global" else [[k] for k in old]
    for group in groups:
        w = torch.cat([old[k].reshape(-1) for k in group])
        mask = torch.cat([report.masks[k].reshape(-1) for k in group])
        assert int((~mask).sum()) == round(ratio * w.numel())  # exactly the asked number
        if mask.any() and (~mask).any():
            assert w[~mask].abs().max() <= w[mask].abs().min()  # the smallest magnitudes went
    for k in old:
        torch.testing.assert_close(new[k], old[k] * report.masks[k])
        r = next(layer for layer in report.layers if layer.name == k)
        assert r.n_kept == int(report.masks[k].sum()) and r.n_weights == old[k].numel()
    if scope == "layer":
        for k, frac in report.per_layer.items():
            assert frac == (old[k].numel() - round(ratio * old[k].numel())) / old[k].numel()
    assert report.kept_fraction == pytest.approx(sum(r.n_kept for r in report.layers) / n_weights(model))


def test_extreme_ratios():
    model = net()
    out, report = prune.magnitude_prune(model, 0.0)
    assert report.kept_fraction == 1.0 and all(torch.equal(a, b) for a, b in zip(weights(model).values(),
                                                                                 weights(out).values()))
    out, report = prune.magnitude_prune(model, 1, scope="layer")
    assert report.kept_fraction == 0.0 and all((w == 0).all() for w in weights(out).values())


def test_curvature_prune_with_unit_h_is_magnitude_prune():
    model = net(3)
    ones = {k: torch.ones_like(v) for k, v in weights(model).items()}
    for scope in prune.SCOPES:
        a, ra = prune.magnitude_prune(model, 0.6, scope=scope)
        b, rb = prune.curvature_prune(model, 0.6, ones, scope=scope)
        assert all(torch.equal(ra.masks[k], rb.masks[k]) for k in ra.masks)


@settings(max_examples=25, deadline=None)
@given(ratio=st.floats(0.05, 0.95), seed=st.integers(0, 10_000), scope=st.sampled_from(prune.SCOPES))
def test_curvature_prune_removes_smallest_obd_saliency(ratio, seed, scope):
    model = net(seed)
    g = torch.Generator().manual_seed(seed)
    h = {k: torch.rand(v.shape, generator=g) * 10 ** torch.randint(-3, 3, v.shape, generator=g)
         for k, v in weights(model).items()}
    _, report = prune.curvature_prune(model, ratio, h, scope=scope)
    old = weights(model)
    groups = [list(old)] if scope == "global" else [[k] for k in old]
    for group in groups:
        sal = torch.cat([(0.5 * h[k] * old[k] ** 2).reshape(-1) for k in group]).double()
        mask = torch.cat([report.masks[k].reshape(-1) for k in group])
        if mask.any() and (~mask).any():
            assert sal[~mask].max() <= sal[mask].min() * (1 + 1e-6)


def test_curvature_prune_keeps_a_flat_but_large_weight_over_a_sharp_small_one():
    model = nn.Sequential(nn.Linear(2, 1, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 0.5]]))
    h = {"0": torch.tensor([[0.01, 10.0]])}  # saliencies 0.005 and 1.25
    _, mag = prune.magnitude_prune(model, 0.5)
    _, obd = prune.curvature_prune(model, 0.5, h)
    assert mag.masks["0"].tolist() == [[True, False]] and obd.masks["0"].tolist() == [[False, True]]


def test_validation_names_the_argument():
    model = net()
    h = {k: torch.ones_like(v) for k, v in weights(model).items()}
    for bad in (-0.1, 1.5, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="ratio"):
            prune.magnitude_prune(model, bad)
    for bad in (True, "half", None, [0.5]):
        with pytest.raises(TypeError, match="ratio"):
            prune.magnitude_prune(model, bad)
    with pytest.raises(ValueError, match="scope"):
        prune.magnitude_prune(model, 0.5, scope="net")
    with pytest.raises(ValueError, match="h has no entry for layer"):
        prune.curvature_prune(model, 0.5, {"0": h["0"]})
    with pytest.raises(ValueError, match=r"h\['0'\] has shape"):
        prune.curvature_prune(model, 0.5, {**h, "0": torch.ones(3)})
    with pytest.raises(ValueError, match="negative"):
        prune.curvature_prune(model, 0.5, {**h, "0": -h["0"]})
    with pytest.raises(ValueError, match="non-finite"):
        prune.curvature_prune(model, 0.5, {**h, "0": h["0"] * float("inf")})
    with pytest.raises(TypeError, match="h must"):
        prune.curvature_prune(model, 0.5, [1.0])
    with pytest.raises(ValueError, match="no Linear or Conv layer to compress"):
        prune.magnitude_prune(nn.Sequential(nn.ReLU()), 0.5)
    with pytest.raises(TypeError, match="model"):
        prune.magnitude_prune(np.zeros(3), 0.5)


# ----------------------------------------------------------------- reliability: every argument fails clearly
HOSTILE = [None, "abc", True, 1 + 2j, -0.5, 2.0, float("nan"), [0.5], {"a": 1}]


@pytest.mark.parametrize("fn", ["magnitude", "curvature", "saliency"])
@pytest.mark.parametrize("bad", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_ratios_fail_clearly(fn, bad):
    model = net()
    h = {k: torch.ones_like(v) for k, v in weights(model).items()}
    call = {"magnitude": lambda r: prune.magnitude_prune(model, r),
            "curvature": lambda r: prune.curvature_prune(model, r, h),
            "saliency": lambda r: prune.prune_by_saliency(model, r, h)}[fn]
    with pytest.raises((TypeError, ValueError), match="ratio"):
        call(bad)


@pytest.mark.parametrize("bad", [None, 3, "layer ", ["layer"], "LAYER"])
def test_hostile_scopes_fail_clearly(bad):
    with pytest.raises(ValueError, match="scope"):
        prune.magnitude_prune(net(), 0.5, scope=bad)


@pytest.mark.parametrize("which", ["transposed", "flat", "string", "bool", "nan", "ragged", "missing"])
@pytest.mark.parametrize("fn", ["curvature", "saliency"])
def test_per_layer_dicts_are_checked_exactly(which, fn):
    model = net()
    good = {k: torch.rand_like(v) + 0.1 for k, v in weights(model).items()}
    name = next(k for k, v in good.items() if v.ndim == 2 and v.shape[0] != v.shape[1])
    bad = dict(good)
    if which == "missing":
        del bad[name]
    else:
        bad[name] = {"transposed": good[name].T.contiguous(), "flat": good[name].reshape(-1), "string": "ones",
                     "bool": good[name] > 0.5, "nan": good[name] * float("nan"), "ragged": [[1.0], [1.0, 2.0]]}[which]
    arg = "h" if fn == "curvature" else "saliency"
    call = prune.curvature_prune if fn == "curvature" else prune.prune_by_saliency
    with pytest.raises((TypeError, ValueError), match=arg):
        call(model, 0.5, bad)
    call(model, 0.5, good)


def test_a_model_with_non_finite_weights_is_refused():
    model = net()
    with torch.no_grad():
        model[3].weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match="non-finite weights"):
        prune.magnitude_prune(model, 0.5)


def test_a_negative_saliency_is_a_valid_ranking():
    model = net()
    sal = {k: -v.abs() for k, v in weights(model).items()}
    _, report = prune.prune_by_saliency(model, 0.25, sal, scope="layer")
    assert report.kept_fraction == pytest.approx(0.75, abs=0.01)
