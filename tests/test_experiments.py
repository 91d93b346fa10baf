"""Tests of poprisk.experiments (and of the VGG-style CIFAR model it trains): sweeps on random tensors of the
right shapes, the on-disk cache, the tables and their statistics, the error messages."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
import torch
from scipy import stats

from poprisk import data, experiments as ex, models


def random_split(n_train=60, n_test=40, shape=(784,), n_classes=10, seed=0) -> data.Split:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand((n_train + n_test, *shape), generator=g)
    y = torch.arange(n_train + n_test) % n_classes
    return data.Split(x[:n_train], y[:n_train], x[n_train:], y[n_train:], "random")


TINY = dict(model_kwargs=(("hidden", (16,)),), epochs=1, batch_size=10, n_train=50, seeds=(0, 1),
            bits=(1, 2), methods=("uniform", "kmeans", "hw_kmeans", "hw_exact", "drhw"), betas=(0.0, 30.0),
            prune_ratios=(0.0, 0.5), prune_quant_methods=("kmeans",), curvature_samples=30)


# ------------------------------------------------------------------------------------------- the CIFAR model

def test_vgg_small_shapes_and_layers():
    model = models.VGGSmall()
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [128, 128, 256, 256, 512, 512, 1024]
    assert model.classifier.in_features == 1024 and model.classifier.out_features == 10
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(bns) == 7 and all(not bn.affine for bn in bns)  # BatchNorm without affine (paper notes §6)
    assert sum(m == "M" for m in models.VGGSmall.STAGES) == 4


def test_vgg_small_thin_and_errors():
    thin = models.VGGSmall(in_channels=1, n_classes=5, width=1 / 16)
    assert thin(torch.rand(3, 1, 28, 28)).shape == (3, 5)
    with pytest.raises(ValueError, match="width"):
        models.VGGSmall(width=0)
    with pytest.raises(ValueError, match="n_classes"):
        models.VGGSmall(n_classes=0)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        thin(torch.rand(3, 784))
    with pytest.raises(ValueError, match="16"):
        thin(torch.rand(3, 1, 8, 8))


# ------------------------------------------------------------------------------------------------- config

@pytest.mark.parametrize("kwargs, match", [
    (dict(dataset="imagenet"), "dataset"), (dict(model="resnet"), "model"), (dict(seeds=(0, 0)), "seeds"),
    (dict(seeds=()), "seeds"), (dict(bits=(0,)), "bits"), (dict(prune_ratios=(1.0,)), "prune_ratios"),
    (dict(betas=(-1.0,)), "betas"), (dict(epochs=0), "epochs"), (dict(lr=0.0), "lr"),
    (dict(augment=True), "augment"), (dict(prune_methods=("random",)), "prune_methods"),
    (dict(n_train=0), "n_train"),
])
def test_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ex.SweepConfig(**kwargs)


def test_config_is_hashable_and_describes_itself():
    cfg = ex.SweepConfig(seeds=[0, 1], model_kwargs={"hidden": [8]})
    assert cfg.seeds == (0, 1) and cfg.model_kwargs == (("hidden", (8,)),)
    hash(cfg)
    text = cfg.describe()
    assert "seeds" in text and "(0, 1)" in text and text == ex.SweepConfig(seeds=(0, 1), model_kwargs={"hidden": (8,)}).describe()


def test_paper_scale_config_fails_clearly_without_torchvision(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)  # import torchvision -> ImportError
    with pytest.raises(RuntimeError, match="torchvision"):
        ex.paper_scale_config("mnist")
    cfg = ex.paper_scale_config("cifar10", check=False)
    assert cfg.model == "vgg_small" and cfg.n_train == 10000 and cfg.augment
    mnist = ex.paper_scale_config("mnist", check=False)
    assert (mnist.n_train, mnist.epochs, mnist.batch_size, mnist.lr, len(mnist.seeds)) == (6000, 25, 10, 0.01, 5)
    with pytest.raises(RuntimeError, match="Colab"):
        ex.load_split(mnist)
    with pytest.raises(ValueError, match="paper-scale dataset"):
        ex.paper_scale_config("mnist_sample")


# ----------------------------------------------------------------------------------------- train + cache

def test_train_models_caches_on_disk(tmp_path):
    cfg = ex.SweepConfig(**TINY)
    split = random_split()
    first = ex.train_models(cfg, split, cache_dir=tmp_path, device="cpu", progress=False)
    assert [t.cached for t in first] == [False, False]
    assert len(list(tmp_path.glob("*.pt"))) == 2
    again = ex.train_models(cfg, split, cache_dir=tmp_path, device="cpu", progress=False)
    assert [t.cached for t in again] == [True, True] and again[0].seconds == 0.0
    for a, b in zip(first, again):
        for (ka, va), (kb, vb) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
            assert ka == kb and torch.equal(va, vb)
        assert a.test_metrics == b.test_metrics
    # the two seeds draw different subsamples and initialisations
    assert not torch.equal(first[0].split.x_train, first[1].split.x_train)
    # a training setting or the data change the key; a compression setting does not
    assert ex.cache_key(cfg, 0) != ex.cache_key(cfg.replace_(epochs=2), 0)
    assert ex.cache_key(cfg, 0) == ex.cache_key(cfg.replace_(bits=(3,), methods=("uniform",)), 0)
    assert ex.split_fingerprint(split) != ex.split_fingerprint(random_split(seed=1))
    none = ex.train_models(cfg.replace_(seeds=(5,)), split, cache_dir=False, device="cpu", progress=False)
    assert not none[0].cached and len(list(tmp_path.glob("*.pt"))) == 2


def test_default_cache_dir_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("POPRISK_CACHE", str(tmp_path / "c"))
    assert ex.default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("POPRISK_CACHE")
    assert ex.default_cache_dir().name == "poprisk"


def test_train_models_rejects_bad_split():
    with pytest.raises(TypeError, match="Split"):
        ex.train_models(ex.SweepConfig(**TINY), split=(torch.zeros(3, 784), torch.zeros(3)), cache_dir=False)


# --------------------------------------------------------------------------------------------- compression

def test_compress_quantize_and_prune_ratios():
    torch.manual_seed(0)
    model = models.MLP(in_features=20, hidden=(30,), n_classes=4)
    q, ratio = ex.compress(model, method="kmeans", bits=2)
    for name, m in models.compressible_layers(q):
        assert m.weight.unique().numel() <= 4
    assert 0 < ratio < 2 / 32 + 1e-9 + 32 * 4 * 2 / (32 * (20 * 30 + 30 * 4))
    same, one = ex.compress(model)
    assert one == 1.0 and all(torch.equal(a, b) for a, b in zip(model.parameters(), same.parameters()))
    masks = {name: torch.rand(m.weight.shape) < 0.3 for name, m in models.compressible_layers(model)}
    pruned, pr = ex.compress(model, masks=masks)
    expected_bits = 0.0
    for name, m in models.compressible_layers(pruned):
        keep = masks[name]
        assert torch.all(m.weight[~keep] == 0)
        p = keep.float().mean().item()
        expected_bits += keep.numel() * -(p * math.log2(p) + (1 - p) * math.log2(1 - p)) + 32 * keep.sum().item()
    assert pr == pytest.approx(expected_bits / (32 * sum(m.weight.numel() for _, m in models.compressible_layers(model))))
    pq, pqr = ex.compress(model, method="kmeans", bits=1, masks=masks)
    for name, m in models.compressible_layers(pq):
        assert torch.all(m.weight[~masks[name]] == 0) and m.weight[masks[name]].unique().numel() <= 2
    assert pqr < pr
    with pytest.raises(ValueError, match="together"):
        ex.compress(model, method="kmeans")
    with pytest.raises(ValueError, match="method must be one of"):
        ex.compress(model, method="nope", bits=2)


# --------------------------------------------------------------------------------------------------- sweeps

def test_run_sweeps_on_random_mnist_shaped_data(tmp_path):
    cfg = ex.SweepConfig(**TINY)
    table = ex.run_sweeps(cfg, random_split(), cache_dir=tmp_path, device="cpu", progress=False)
    n_jobs = 2 * (4 + 2) + 2 * 2 + 2 * 2 * 1  # quantize (drhw at two betas) + prune + prune_quantize, per seed
    assert len(table) == 2 * (1 + n_jobs)
    assert table.unique("experiment") == ["baseline", "quantize", "prune", "prune_quantize"]
    for col in ("seed", "method", "bits", "train_ce", "test_ce", "gap", "train_acc", "test_acc", "ratio",
                "base_test_ce", "seconds"):
        assert col in table.columns
    for r in table:
        assert r["gap"] == pytest.approx(r["test_ce"] - r["train_ce"])
        assert 0 < r["ratio"] <= 1 and 0 <= r["test_acc"] <= 1 and np.isfinite(r["test_ce"])
    base = table.where(experiment="baseline", seed=0).rows[0]
    unpruned = table.where(experiment="prune", prune="magnitude", prune_ratio=0.0, seed=0).rows[0]
    assert unpruned["test_ce"] == pytest.approx(base["test_ce"]) and unpruned["ratio"] == 1.0
    q1 = table.where(experiment="quantize", bits=1).column("ratio")
    assert np.all(q1 < 1.5 / 32)
    summary = table.where(experiment="quantize").summarize(["method", "bits", "beta"], ["test_ce", "ratio"])
    assert len(summary) == 12 and all(r["n"] == 2 for r in summary)
    # DRHW with beta = 0 is HW K-means (Algorithm 1 reduces to Lloyd)
    hw = table.where(experiment="quantize", method="hw_kmeans")
    drhw0 = table.where(experiment="quantize", method="drhw", beta=0.0)
    assert hw.column("test_ce") == pytest.approx(drhw0.column("test_ce"))
    assert set(table.where(experiment="quantize").unique("beta")) == {None, 0.0, 30.0}
    with pytest.raises(ValueError, match="unknown quantization method"):
        ex.run_sweeps(cfg.replace_(methods=("magic",)), random_split(), cache_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="sweeps"):
        ex.run_sweeps(cfg, random_split(), sweeps=("train",), cache_dir=tmp_path, progress=False)


def test_sweep_with_cifar_model_on_random_images(tmp_path):
    cfg = ex.SweepConfig(**{**TINY, "model": "vgg_small", "model_kwargs": (("width", 1 / 16),),
                            "augment": True, "seeds": (0,), "bits": (2,), "prune_methods": ("magnitude",),
                            "methods": ("kmeans",), "n_train": 32})
    split = random_split(n_train=32, n_test=16, shape=(3, 32, 32))
    table = ex.run_sweeps(cfg, split, cache_dir=tmp_path, device="cpu", progress=False)
    assert len(table) == 1 + 1 + 2 + 2
    assert all(np.isfinite(r["test_ce"]) for r in table)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        ex.train_models(cfg, random_split(), cache_dir=False, progress=False)


def test_augment_images_shapes_and_determinism():
    x = torch.rand(5, 3, 8, 8)
    a = ex.augment_images(x, torch.Generator().manual_seed(1))
    b = ex.augment_images(x, torch.Generator().manual_seed(1))
    assert a.shape == x.shape and torch.equal(a, b)
    flips = ex.augment_images(x, torch.Generator().manual_seed(2), pad=0)
    for i in range(5):  # with no padding only flips remain
        assert torch.equal(flips[i], x[i]) or torch.equal(flips[i], x[i].flip(-1))


# ----------------------------------------------------------------------------------------------- statistics

def test_summarize_matches_student_t():
    vals = [0.30, 0.32, 0.35, 0.31, 0.33]
    s = ex.summarize(vals)
    lo, hi = stats.t.interval(0.95, len(vals) - 1, loc=np.mean(vals), scale=stats.sem(vals))
    assert s.mean == pytest.approx(np.mean(vals)) and s.std == pytest.approx(np.std(vals, ddof=1))
    assert (s.lo, s.hi) == (pytest.approx(lo), pytest.approx(hi)) and s.n == 5
    assert str(s) == ex.mean_pm_std(s.mean, s.std)
    single = ex.summarize([1.0])
    assert single.std == 0.0 and math.isnan(single.lo)
    with pytest.raises(ValueError, match="at least one"):
        ex.summarize([])


def test_paired_comparison_and_table_helpers():
    rows = [dict(seed=s, method=m, test_ce=v) for s, (a, b) in enumerate([(1.0, 1.1), (2.0, 2.3), (3.0, 3.2)])
            for m, v in (("drhw", a), ("hw", b))]
    t = ex.Table(rows)
    res = ex.paired_comparison(t, dict(method="drhw"), dict(method="hw"))
    assert res["seeds"] == [0, 1, 2] and res["diff"] == pytest.approx([-0.1, -0.3, -0.2])
    ref = stats.ttest_rel([1.0, 2.0, 3.0], [1.1, 2.3, 3.2])
    assert res["p"] == pytest.approx(ref.pvalue) and res["a_lower"] == 3 and res["b_lower"] == 0
    with pytest.raises(ValueError, match="no seed"):
        ex.paired_comparison(t, dict(method="drhw"), dict(method="kmeans"))
    assert len(t.where(method=lambda m: m.startswith("d"))) == 3
    with pytest.raises(KeyError, match="no column"):
        t.column("train_ce")
    text = t.to_text(["seed", "method", "test_ce"], digits=2)
    assert text.splitlines()[0].split() == ["seed", "method", "test_ce"] and "1.10" in text


def test_cache_key_changes_with_the_training_code(monkeypatch):
    cfg = ex.SweepConfig()
    before = ex.cache_key(cfg, 0)
    assert before == ex.cache_key(cfg, 0)
    monkeypatch.setattr(ex, "_training_code_fingerprint", lambda: "edited-train-loop")
    assert ex.cache_key(cfg, 0) != before
