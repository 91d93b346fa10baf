"""The device path without a GPU: the library run on a pretend accelerator (``tests/device_guard.py``), where
``.numpy()`` of a tensor that would live on the GPU, or mixing it with host tensors, fails as on CUDA.

The first tests show the guard catches what it must (and lets ``.cpu().numpy()`` through); the others run the
library's device paths end to end: training, evaluation, every curvature estimator, pruning, quantization, the
chapter-9 sweeps and calibration. ``make device-path`` runs every notebook in FAST mode under the same guard.
"""

from __future__ import annotations

import pathlib
import sys

import numpy as np
import pytest
import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import device_guard as dg  # noqa: E402


guard_only = pytest.mark.skipif(dg.requested_device() == "cuda",
                                reason="tests the pretend accelerator; CUDA guards itself")


@pytest.fixture()
def guard(monkeypatch, test_device):
    """The accelerator of the end-to-end tests: the pretend one on the CPU, the real GPU under
    ``POPRISK_TEST_DEVICE=cuda`` (tools/gpu_check.sh), where CUDA itself refuses ``.numpy()`` of a GPU tensor."""
    if test_device.type == "cuda":
        monkeypatch.setenv("POPRISK_DEVICE", "cuda")
        yield test_device
        return
    monkeypatch.setenv("POPRISK_DEVICE", "cpu:0")
    g = dg.DeviceGuard()
    with g:
        yield dg.ACCEL


@guard_only
def test_guard_catches_numpy_of_a_device_tensor(guard):
    x = torch.randn(6, 3).to(guard)
    y = (x * 2).sum(0)
    for leak in (lambda: y.numpy(), lambda: np.asarray(y), lambda: y.detach().numpy()):
        with pytest.raises(dg.DeviceLeak):
            leak()
    assert y.cpu().numpy().shape == (3,) and y.detach().cpu().numpy().shape == (3,)
    assert np.isfinite(float(y[0])) and len(y.tolist()) == 3  # these work on CUDA too


@guard_only
def test_guard_follows_modules_gradients_and_device_attributes(guard):
    from poprisk import config

    dev = config.device()
    assert dev == guard
    net = torch.nn.Linear(3, 2).to(dev)
    x = torch.randn(5, 3, device=dev)
    net(x).square().sum().backward()
    assert dg.on_device(net.weight) and dg.on_device(net.weight.grad)
    with pytest.raises(dg.DeviceLeak):
        net.weight.grad.numpy()
    z = torch.zeros(4, device=net.weight.device)  # follows t.device
    assert dg.on_device(z)
    with pytest.raises(dg.DeviceMix):
        x + torch.ones(5, 3)  # a host tensor beside a device tensor
    assert dg.on_device(x + 1.0) and not dg.on_device(torch.ones(2))


def test_without_guard_numpy_works():
    assert torch.ones(2).numpy().sum() == 2 and not dg.on_device(torch.ones(2))


@pytest.fixture(scope="module")
def small_split():
    from poprisk import data

    return data.load_dataset("digits", n_test=300, seed=0)


def test_train_evaluate_predict_on_the_device(guard, small_split):
    from poprisk import models, train

    split = small_split.to(guard)
    net = models.MLP(64, (32,), 10).to(guard)
    train.fit(net, split.x_train[:300], split.y_train[:300], epochs=1, batch_size=50)
    metrics = train.evaluate(net, split.x_test, split.y_test)
    logits = train.predict(net, split.x_test)
    assert np.isfinite(metrics.loss) and logits.shape == (300, 10)
    logits.numpy()  # predict documents host logits


@pytest.mark.parametrize("method", __import__("poprisk.curvature", fromlist=["METHODS"]).METHODS)
def test_every_curvature_estimator_on_the_device(guard, small_split, method):
    from poprisk import curvature, models

    split = small_split.to(guard)
    torch.manual_seed(0)
    net = models.MLP(64, (8,), 10).to(guard).eval()
    loss = torch.nn.CrossEntropyLoss()
    h = curvature.hessian_diag(net, loss, (split.x_train[:40], split.y_train[:40]), method, n_probes=3)
    assert set(h) and all(v.shape == dict(net.named_modules())[k].weight.shape for k, v in h.items())
    curvature.flatten(h)


def test_curvature_costs_and_comparison_on_the_device(guard, small_split):
    from poprisk import curvature, models

    split = small_split.to(guard)
    net = models.MLP(64, (8,), 10).to(guard).eval()
    loss = torch.nn.CrossEntropyLoss()
    batch = (split.x_train[:30], split.y_train[:30])
    assert curvature.gradient_seconds(net, loss, batch) > 0
    curvature.compare_estimators(net, loss, batch, methods=("exact", "ggn", "hutchinson"))


def test_prune_and_quantize_on_the_device(guard, small_split):
    from poprisk import curvature, models, prune, quantize

    split = small_split.to(guard)
    net = models.MLP(64, (16,), 10).to(guard)
    h = curvature.positive(curvature.hessian_diag(net, torch.nn.CrossEntropyLoss(),
                                                  (split.x_train[:50], split.y_train[:50])))
    for result in (prune.magnitude_prune(net, 0.5), prune.curvature_prune(net, 0.5, h)):
        assert result is not None
    for method in quantize.METHODS:
        kw = {"beta": 1.0} if method.startswith("drhw") else {}
        quantize.quantize_model(net, method, 2, h=h, **kw)


def test_chapter9_sweeps_on_the_device(guard, tmp_path):
    from poprisk import experiments

    cfg = experiments.SweepConfig(dataset="digits", n_test=200, n_val=100, n_train=200, epochs=1, batch_size=50,
                                  seeds=(0,), methods=("kmeans", "hw_kmeans", "drhw", "noise"), bits=(2,),
                                  prune_ratios=(0.5,), curvature_samples=50, model_kwargs={"hidden": (16,)})
    frame = experiments.run_sweeps(cfg, cache_dir=tmp_path, device=guard, progress=False)
    assert len(frame) > 3 and np.isfinite(frame["test_ce"]).all()


def test_calibration_on_device_logits(guard):
    from poprisk import calibration

    logits = torch.randn(50, 10, device=guard)
    labels = torch.randint(0, 10, (50,), device=guard)
    t = calibration.fit_temperature(logits, labels)
    assert np.isfinite(calibration.cross_entropy(logits, labels, t))
    calibration.expected_calibration_error(logits, labels)



def test_model_cache_key_records_device_and_dtype(small_split):
    """CPU- and GPU-trained networks never share a cache entry (the pretend device is of type "cpu", so the
    key is checked directly with a CUDA device name, which needs no GPU to construct)."""
    from poprisk import experiments

    cfg = experiments.SweepConfig(dataset="digits", n_test=200, n_val=100, n_train=100, epochs=1, seeds=(0,))
    keys = {experiments.cache_key(cfg, 0, small_split, dev, dt)
            for dev in ("cpu", "cuda") for dt in (torch.float32, torch.float64)}
    assert len(keys) == 4
