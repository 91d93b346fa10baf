import pytest
import torch

from poprisk import models, train


def test_mlp_shape_and_init():
    net = models.MLP()
    assert sum(p.numel() for p in net.parameters()) == 784 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10
    assert net(torch.zeros(5, 1, 28, 28)).shape == (5, 10)
    linear = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert all(torch.count_nonzero(m.bias) == 0 for m in linear)
    bound = (6 / (784 + 256)) ** 0.5  # Xavier-uniform limit of the first layer
    assert linear[0].weight.abs().max() <= bound


@pytest.mark.parametrize("kwargs,match", [({"in_features": 0}, "in_features"), ({"hidden": (4, -1)}, "hidden"),
                                          ({"dropout": 1.0}, "dropout"), ({"n_classes": 1.5}, "n_classes")])
def test_mlp_validation(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        models.MLP(**kwargs)


def _toy(seed=0, n=200):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long()
    return x, y


def test_fit_learns_and_is_reproducible():
    x, y = _toy()
    nets = []
    for _ in range(2):
        torch.manual_seed(0)
        net = models.MLP(8, (16,), 2, dropout=0.0)
        hist = train.fit(net, x, y, epochs=15, batch_size=20, lr=0.05, seed=1, progress=False)
        nets.append(net)
    assert hist.epoch_loss[-1] < hist.epoch_loss[0]
    assert train.evaluate(nets[0], x, y).accuracy > 0.9
    for p, q in zip(nets[0].parameters(), nets[1].parameters()):
        assert torch.equal(p, q)


def test_evaluate_matches_direct_computation():
    x, y = _toy(1, 300)
    net = models.MLP(8, (16,), 2)
    m = train.evaluate(net, x, y, batch_size=7)  # batching must not change the result
    net.eval()
    logits = net(x)
    assert m.loss == pytest.approx(torch.nn.functional.cross_entropy(logits, y).item(), rel=1e-5)
    assert m.accuracy == pytest.approx((logits.argmax(1) == y).float().mean().item())


def test_fit_validation():
    x, y = _toy()
    net = models.MLP(8, (4,), 2)
    with pytest.raises(ValueError, match="y must have shape"):
        train.fit(net, x, y[:-1], progress=False)
    with pytest.raises(ValueError, match="epochs"):
        train.fit(net, x, y, epochs=0, progress=False)
    with pytest.raises(ValueError, match="non-finite"):
        train.evaluate(net, x * float("nan"), y)
    with pytest.raises(TypeError, match="torch tensor"):
        train.evaluate(net, x.numpy(), y)


def test_fit_applies_transform_to_every_batch():
    x, y = _toy()
    seen = []

    def transform(xb, gen):
        assert isinstance(gen, torch.Generator)
        seen.append(xb.shape[0])
        return xb * 0  # the network sees only zeros: it cannot learn the labels

    net = models.MLP(8, (16,), 2, dropout=0.0)
    train.fit(net, x, y, epochs=2, batch_size=30, lr=0.05, progress=False, transform=transform)
    assert seen == [30] * 6 + [20] + [30] * 6 + [20]
    assert train.evaluate(net, x, y).accuracy < 0.8


def test_sgd_uses_fused_kernel_and_matches_plain_sgd():
    torch.manual_seed(0)
    a, b = models.MLP(8, (16,), 2, dropout=0.0), models.MLP(8, (16,), 2, dropout=0.0)
    b.load_state_dict(a.state_dict())
    fused = train.sgd(a.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    plain = torch.optim.SGD(b.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    assert fused.defaults["fused"] is True  # the pinned CPU build of PyTorch has the fused kernel
    x, y = _toy()
    for opt, net in ((fused, a), (plain, b)):
        for _ in range(5):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x), y).backward()
            opt.step()
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.allclose(p, q, atol=1e-6)


def test_fit_syncs_the_host_once_per_epoch_not_per_batch(monkeypatch):
    """Every Tensor -> Python conversion (bool, item, float, int) is a host sync on a GPU; fit does one per
    epoch (the divergence check and the epoch's mean loss), whatever the number of mini-batches."""
    x, y = _toy()
    net = models.MLP(8, (16,), 2, dropout=0.0)
    syncs = []
    for name in ("__bool__", "item", "__float__", "__int__"):
        original = getattr(torch.Tensor, name)
        monkeypatch.setattr(torch.Tensor, name,
                            lambda self, *a, _f=original, _n=name, **k: syncs.append(_n) or _f(self, *a, **k))
    train._fit(net, x, y, 3, 5, 0.05, 0.9, 0.0, 0, False, "train", None, x.device)
    assert x.shape[0] // 5 >= 10 and len(syncs) == 3, syncs


def test_divergence_is_reported_in_the_epoch_it_happens():
    x, y = _toy()
    calls = []
    batches = -(-x.shape[0] // 20)

    def poison_in_epoch_two(xb, gen):  # the 3rd mini-batch of epoch 2 turns non-finite
        calls.append(1)
        return xb * float("nan") if len(calls) == batches + 3 else xb

    net = models.MLP(8, (16,), 2, dropout=0.0)
    with pytest.raises(ValueError, match=r"non-finite \(nan\) in epoch 2 .* diverged"):
        train.fit(net, x, y, epochs=4, batch_size=20, lr=0.05, progress=False, transform=poison_in_epoch_two)
    assert len(calls) == 2 * batches  # the rest of epoch 2 ran; epoch 3 did not start
