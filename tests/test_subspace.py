"""Tests of poprisk.subspace: the projection, the functional network, training and coordinate coding."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from poprisk import bounds, models, quantize, subspace, train
from torch import nn


@pytest.fixture(scope="module")
def tiny():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(300, 20, generator=gen)
    y = (x[:, :3].sum(1) > 0).long() + (x[:, 3] > 0.5).long()
    torch.manual_seed(0)
    return models.MLP(in_features=20, hidden=(16,), n_classes=3, dropout=0.0), x, y


def test_sparse_projection_columns():
    d, m = 2000, 30
    a = subspace.sparse_projection(d, m, seed=3)
    dense = a.to_dense().double()
    assert dense.shape == (d, m)
    assert torch.allclose(dense.norm(dim=0), torch.ones(m, dtype=torch.float64), atol=1e-6)
    t = math.isqrt(d - 1) + 1
    assert ((dense != 0).sum(0) <= t).all()
    assert torch.equal(dense, subspace.sparse_projection(d, m, seed=3).to_dense().double())
    assert not torch.equal(dense, subspace.sparse_projection(d, m, seed=4).to_dense().double())
    gram = dense.T @ dense
    off = gram - torch.diag(torch.diag(gram))
    assert off.abs().max() < 0.35  # nearly orthogonal columns: ‖Au‖ ≈ ‖u‖


def test_weights_forward_and_gradient_match_an_independent_computation(tiny):
    model, x, y = tiny
    space = subspace.Subspace.build(model, 12, seed=1)
    w0 = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    assert torch.equal(space.weights(torch.zeros(12)), w0)
    u = torch.randn(12, generator=torch.Generator().manual_seed(2)) * 0.3
    net = space.materialize(u)
    assert torch.allclose(net(x), space.forward(u, x), atol=1e-5)
    assert space.error(u, x, y) == pytest.approx(1 - train.evaluate(net, x, y).accuracy)
    # ∂L/∂u = Aᵀ ∂L/∂w, with ∂L/∂w taken from the ordinary module
    nn.functional.cross_entropy(net(x), y).backward()
    grad_w = torch.cat([p.grad.reshape(-1) for p in net.parameters()])
    expected = space.projection.to_dense().T @ grad_w
    uu = u.clone().requires_grad_(True)
    nn.functional.cross_entropy(space.forward(uu, x), y).backward()
    assert torch.allclose(uu.grad, expected, atol=1e-5)


def test_fit_subspace_lowers_the_loss_and_is_deterministic(tiny):
    model, x, y = tiny
    space = subspace.Subspace.build(model, 40, seed=0)
    u1, hist = subspace.fit_subspace(space, x, y, epochs=15, batch_size=50, lr=0.05, seed=0)
    u2, _ = subspace.fit_subspace(space, x, y, epochs=15, batch_size=50, lr=0.05, seed=0)
    assert torch.equal(u1, u2)
    start = nn.functional.cross_entropy(space.forward(torch.zeros(40), x), y).item()
    assert hist[-1] < 0.8 * start


def test_quantize_coordinates_code_and_values(tiny):
    model, x, y = tiny
    space = subspace.Subspace.build(model, 40, seed=0)
    u, _ = subspace.fit_subspace(space, x, y, epochs=15, batch_size=50, lr=0.05)
    plain = subspace.quantize_coordinates(space, u, 4, x, y, epochs=0)
    centers, _ = quantize.weighted_kmeans_1d(u.double().numpy(), None, 4)
    assert np.array_equal(plain.centers, np.unique(centers.astype(np.float16)).astype(np.float64))
    assert np.array_equal(plain.centers.astype(np.float16).astype(np.float64), plain.centers)
    assert plain.labels.shape == (40,) and plain.labels.max() < plain.code.k <= 4
    assert np.array_equal(plain.labels, quantize.assign(u.double().numpy(), plain.centers))
    assert plain.bits == 1 + bounds.elias_gamma_bits(40) + plain.code.total  # flag + gamma(m) + code
    # the charged length is that of a real, decodable code
    word = subspace.encode_description(plain.u.double().numpy(), quantized=True)
    assert len(word) == plain.bits
    assert np.array_equal(subspace.decode_description(word), plain.centers[plain.labels])
    raw = subspace.encode_description(u.numpy(), quantized=False)
    assert len(raw) == subspace.raw_bits(40) == 1 + 11 + 32 * 40
    assert np.array_equal(subspace.decode_description(raw), u.numpy().astype(np.float64))
    with pytest.raises(ValueError, match="after the codeword"):
        subspace.decode_description(word + "0")
    assert plain.code.codebook == 16 * plain.code.k
    # a vanishing learning rate leaves K-means as it is: the training loop changes nothing else
    still = subspace.quantize_coordinates(space, u, 4, x, y, epochs=2, lr=1e-12, batch_size=50)
    assert np.array_equal(still.centers, plain.centers)
    assert np.array_equal(still.labels, plain.labels)
    # at one bit the quantization loss is large and quantization-aware training recovers part of it
    two = subspace.quantize_coordinates(space, u, 2, x, y, epochs=0)
    qat = subspace.quantize_coordinates(space, u, 2, x, y, epochs=30, lr=0.01, batch_size=50)
    ce = [nn.functional.cross_entropy(space.forward(q.u, x), y).item() for q in (two, qat)]
    assert ce[1] < ce[0]


def test_bad_input(tiny):
    model, x, y = tiny
    with pytest.raises(ValueError, match="m"):
        subspace.sparse_projection(100, 0, 0)
    with pytest.raises(ValueError, match="seed"):
        subspace.sparse_projection(100, 3, -1)
    with pytest.raises(TypeError, match="model"):
        subspace.Subspace.build("mlp", 3)
    space = subspace.Subspace.build(model, 5)
    with pytest.raises(ValueError, match="u must be"):
        space.forward(torch.zeros(4), x)
    with pytest.raises(ValueError, match="x and y"):
        subspace.fit_subspace(space, x, y[:10])
    with pytest.raises(ValueError, match="epochs"):
        subspace.quantize_coordinates(space, torch.zeros(5), 2, x, y, epochs=-1)
    with pytest.raises(ValueError, match="lr"):
        subspace.fit_subspace(space, x, y, lr=0)


def test_certificate_search_rows_are_the_decoded_networks_with_their_bounds(tiny):
    model, x, y = tiny
    rows, coded = subspace.certificate_search(lambda: model, x, y, x, y, dims=(20,), levels=(3,),
                                              fit=dict(epochs=3, batch_size=50), qat_epochs=1)
    assert [(r["K"], r["qat_epochs"]) for r in rows][0] == ("float32", 0) and len(rows) == 3
    assert rows[0]["bits"] == subspace.raw_bits(20)
    for i, r in enumerate(rows):
        space, values = coded[i]
        assert r["train_err"] == space.error(values, x, y)
        assert r["occam"] == bounds.occam_bound(r["train_err"], r["bits"], x.shape[0], 0.05)
        word = subspace.encode_description(values.numpy(), quantized=r["K"] != "float32")
        assert len(word) == r["bits"]


# --------------------------------------------- hostile inputs: refused before training, naming the argument

NUMBER_FAULTS = [(float("inf"), ValueError), (float("nan"), ValueError), (-0.1, ValueError), (0, ValueError),
                 (True, TypeError), ("0.1", TypeError), (None, TypeError)]
INT_FAULTS = [(0, ValueError), (-3, ValueError), (2.5, TypeError), (True, TypeError), ("5", TypeError),
              (None, TypeError)]
SEED_FAULTS = [(-1, ValueError), (1.5, TypeError), (True, TypeError), ("0", TypeError), (None, TypeError)]


def _calls(space, x, y):
    return {"fit_subspace": lambda **kw: subspace.fit_subspace(space, x, y, epochs=1, **kw),
            "quantize_coordinates": lambda **kw: subspace.quantize_coordinates(space, torch.zeros(5), 2, x, y,
                                                                               epochs=1, **kw)}


@pytest.mark.parametrize("entry", ["fit_subspace", "quantize_coordinates"])
@pytest.mark.parametrize("arg, value, exc", [("lr", v, e) for v, e in NUMBER_FAULTS]
                         + [("batch_size", v, e) for v, e in INT_FAULTS]
                         + [("seed", v, e) for v, e in SEED_FAULTS], ids=repr)
def test_hyper_parameters_are_checked_naming_them(tiny, entry, arg, value, exc):
    model, x, y = tiny
    space = subspace.Subspace.build(model, 5)
    with pytest.raises(exc, match=arg):
        _calls(space, x, y)[entry](**{arg: value})


def _bad_data(x, y):
    nan_x = x.clone()
    nan_x[3, 2] = float("nan")
    inf_x = x.clone()
    inf_x[0, 0] = float("inf")
    return {"nan x": (nan_x, y, ValueError, "x"), "inf x": (inf_x, y, ValueError, "x"),
            "integer x": (x.long(), y, ValueError, "x"), "wrong width": (x[:, :7], y, ValueError, "x"),
            "numpy x": (x.numpy(), y, TypeError, "x"), "list y": (x, y.tolist(), TypeError, "y"),
            "float y": (x, y.float(), TypeError, "y"), "label too big": (x, y + 3, ValueError, "y"),
            "negative label": (x, y - 1, ValueError, "y"), "2-D y": (x, y[:, None], ValueError, "y"),
            "short y": (x, y[:10], ValueError, "x and y"), "empty": (x[:0], y[:0], ValueError, "x and y")}


@pytest.mark.parametrize("case", list(_bad_data(torch.zeros(4, 20), torch.zeros(4, dtype=torch.long))))
def test_bad_data_is_refused_before_training(tiny, case, monkeypatch):
    model, x, y = tiny
    bx, by, exc, name = _bad_data(x, y)[case]
    space = subspace.Subspace.build(model, 5)
    monkeypatch.setattr(torch.optim, "Adam", lambda *a, **k: pytest.fail("trained before checking"))
    u = torch.zeros(5)
    for call in (lambda: subspace.fit_subspace(space, bx, by), lambda: space.error(u, bx, by),
                 lambda: subspace.quantize_coordinates(space, u, 2, bx, by, epochs=1)):
        with pytest.raises(exc, match=name):
            call()


@pytest.mark.parametrize("u, exc", [(torch.tensor([0.0, float("nan"), 0, 0, 0]), ValueError),
                                    (torch.tensor([0.0, float("inf"), 0, 0, 0]), ValueError),
                                    (torch.zeros(5, dtype=torch.bool), TypeError),
                                    (torch.zeros(5, dtype=torch.complex64), TypeError),
                                    (np.zeros(5), ValueError), (torch.zeros(5, 1), ValueError)], ids=str)
def test_bad_coordinates_are_refused(tiny, u, exc):
    model, x, y = tiny
    space = subspace.Subspace.build(model, 5)
    for call in (lambda: space.weights(u), lambda: space.error(u, x, y), lambda: space.materialize(u),
                 lambda: subspace.quantize_coordinates(space, u, 2, x, y, epochs=0)):
        with pytest.raises(exc, match="u must"):
            call()


def test_coordinates_beyond_float16_are_refused(tiny):
    model, x, y = tiny
    space = subspace.Subspace.build(model, 5)
    with pytest.raises(ValueError, match="u must lie within"):
        subspace.quantize_coordinates(space, torch.tensor([0.0, 7e4, 0, 0, 0]), 2, x, y, epochs=0)
    with pytest.raises(TypeError, match="code"):
        subspace.description_bits(5, 12)
    for bad, exc in ((0, ValueError), (2.0, TypeError), (True, TypeError)):
        with pytest.raises(exc, match="m"):
            subspace.Subspace.build(model, bad)
