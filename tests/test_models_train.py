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
