"""Tests of poprisk.experiments (and of the VGG-style CIFAR model it trains) and poprisk.selection: the whole
config validated before any work, the validation protocol, the measured columns, the compressors and the
controls, the cache as train_models uses it, and selection on validation."""

from __future__ import annotations

import dataclasses
import math
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from poprisk import cache, calibration, data, experiments as ex, models, selection, stats, train


def random_split(n_train=90, n_test=40, shape=(784,), n_classes=10, seed=0) -> data.Split:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand((n_train + n_test, *shape), generator=g)
    y = torch.arange(n_train + n_test) % n_classes
    return data.Split(x[:n_train], y[:n_train], x[n_train:], y[n_train:], "random")


TINY = dict(model_kwargs=(("hidden", (16,)),), epochs=1, batch_size=10, n_train=50, n_val=30, seeds=(0, 1),
            bits=(1, 2), methods=("uniform", "kmeans", "hw_kmeans", "hw_exact", "drhw", "drhw_linear", "noise"),
            betas=(0.0, 30.0), linear_betas=(30.0,), prune_ratios=(0.0, 0.5), prune_quant_methods=("kmeans",),
            curvature_samples=30)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    cfg = ex.SweepConfig(**TINY, layers=("all", "output"))
    df, per = ex.run_sweeps(cfg, random_split(), cache_dir=tmp_path_factory.mktemp("cache"), device="cpu",
                            progress=False, per_example=True)
    return cfg, df, per


# ------------------------------------------------------------------------------------------- the CIFAR model

def test_vgg_small_shapes_and_layers():
    model = models.VGGSmall()
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [128, 128, 256, 256, 512, 512, 1024]
    assert model.classifier.in_features == 1024 and model.classifier.out_features == 10
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(bns) == 7 and all(not bn.affine for bn in bns)  # BatchNorm without affine (paper notes §6)


# ------------------------------------------------------------------------------------------------- config

@pytest.mark.parametrize("kwargs, error, match", [
    (dict(dataset="imagenet"), ValueError, "dataset"), (dict(model="resnet"), ValueError, "model"),
    (dict(seeds=(0, 0)), ValueError, "seeds"), (dict(seeds=()), ValueError, "seeds"),
    (dict(seeds=(-1,)), ValueError, r"seeds\[0\]"), (dict(seeds=(None,)), TypeError, "seeds"),
    (dict(seeds=(1.5,)), TypeError, "seeds"), (dict(seeds=0), TypeError, "seeds"),
    (dict(bits=(0,)), ValueError, "bits"), (dict(bits=(17,)), ValueError, "bits"),
    (dict(bits=(True,)), TypeError, "bits"), (dict(prune_ratios=(1.0,)), ValueError, "prune_ratios"),
    (dict(betas=(-1.0,)), ValueError, "betas"), (dict(betas=(math.nan,)), ValueError, "betas"),
    (dict(linear_betas=(math.inf,)), ValueError, "linear_betas"), (dict(epochs=0), ValueError, "epochs"),
    (dict(lr=0.0), ValueError, "lr"), (dict(lr=math.nan), ValueError, "lr"), (dict(lr=math.inf), ValueError, "lr"),
    (dict(lr="0.1"), TypeError, "lr"), (dict(momentum=math.nan), ValueError, "momentum"),
    (dict(momentum=1.0), ValueError, "momentum"), (dict(weight_decay=math.nan), ValueError, "weight_decay"),
    (dict(augment=True), ValueError, "augment"), (dict(augment="yes"), TypeError, "augment"),
    (dict(download="no"), TypeError, "download"), (dict(replace="no"), TypeError, "replace"),
    (dict(replace=1), TypeError, "replace"), (dict(prune_methods=("random",)), ValueError, "prune_methods"),
    (dict(methods=("magic",)), ValueError, "methods"), (dict(methods="kmeans"), TypeError, "methods"),
    (dict(prune_quant_methods=("noise",)), ValueError, "prune_quant_methods"),
    (dict(curvature="bogus"), ValueError, "curvature"), (dict(noise_reference="drhw"), ValueError, "noise_reference"),
    (dict(layers=("input",)), ValueError, "layers"), (dict(layers=()), ValueError, "layers"),
    (dict(normalize="zscore"), ValueError, "normalize"),
    (dict(dataset="cifar10", n_test=None, model="vgg_small", normalize="authors"), ValueError, "normalize"),
    (dict(n_train=0), ValueError, "n_train"), (dict(n_val=0), ValueError, "n_val"),
    (dict(n_val=None), TypeError, "n_val"), (dict(n_test=None), ValueError, "n_test"),
    (dict(split_seed=-2), ValueError, "split_seed"), (dict(fixed_temperature=0.0), ValueError, "fixed_temperature"),
    (dict(fixed_temperature=math.nan), ValueError, "fixed_temperature"), (dict(ece_bins=0), ValueError, "ece_bins"),
    (dict(model_kwargs={"hidden": (0,)}), ValueError, "hidden"),
    (dict(model_kwargs={"depth": 3}), ValueError, "model_kwargs"), (dict(iters=-1), ValueError, "iters"),
])
def test_config_validation(kwargs, error, match):
    with pytest.raises(error, match=match):
        ex.SweepConfig(**kwargs)


def test_memory_estimate_refuses_exact_quantizer_at_high_bits(monkeypatch):
    monkeypatch.setattr(ex.settings, "machine_memory_bytes", lambda: 16 * 2**30)
    # the first layer of the 784-256-256-10 MLP has 200,704 weights: K = 65,536 needs ~49 GiB of pointers
    assert ex.hw_exact_memory_bytes(200704, 2**16) / 2**30 == pytest.approx(49, abs=1)
    with pytest.raises(ValueError, match=r"hw_exact at 16 bits .*49\.\d GiB.*'net\.1'"):
        ex.SweepConfig(methods=("hw_exact",), bits=(2, 16))
    with pytest.raises(ValueError, match="prune_quant_bits"):
        ex.SweepConfig(prune_quant_methods=("hw_exact",), prune_quant_bits=16)
    with pytest.raises(ValueError, match="noise_reference"):
        ex.SweepConfig(methods=("noise",), noise_reference="hw_exact", bits=(16,))
    ex.SweepConfig(methods=("kmeans",), bits=(16,))  # Lloyd needs no K × n table
    ex.SweepConfig(methods=("hw_exact",), bits=(8,))


def test_config_is_hashable_and_describes_itself():
    cfg = ex.SweepConfig(seeds=[0, 1], model_kwargs={"hidden": [8]})
    assert cfg.seeds == (0, 1) and cfg.model_kwargs == (("hidden", (8,)),)
    hash(cfg)
    table = cfg.describe()
    assert isinstance(table, pd.DataFrame) and "(0, 1)" in table.set_index("field").loc["seeds", "value"]
    assert cfg.as_dict()["seeds"] == [0, 1] and cfg.replace_(epochs=3).epochs == 3
    with pytest.raises(ValueError, match="lr"):
        cfg.replace_(lr=-1.0)
    numpy_cfg = ex.SweepConfig(**{**TINY, "seeds": (np.int64(1),), "lr": np.float64(0.01), "epochs": np.int32(1),
                                  "model_kwargs": {"hidden": (np.int64(16),)}})
    assert cache.canonical_json(numpy_cfg.as_dict())  # plain JSON: the cache can store it
    sub = ex.prepare_split(numpy_cfg, random_split()).subsample_train(50, 1)
    assert ex.cache_key(numpy_cfg, 1, sub) == ex.cache_key(ex.SweepConfig(**{**TINY, "seeds": (1,)}), 1, sub)


def test_paper_scale_config_fails_clearly_without_torchvision(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)  # import torchvision -> ImportError
    with pytest.raises(RuntimeError, match="torchvision"):
        ex.paper_scale_config("mnist")
    cfg = ex.paper_scale_config("cifar10", check=False)
    assert cfg.model == "vgg_small" and cfg.n_train == 10000 and cfg.augment and cfg.n_val == 5000
    assert (cfg.epochs, cfg.batch_size, cfg.lr, cfg.weight_decay) == (25, 10, 0.01, 1e-4)  # retrain.py defaults
    mnist = ex.paper_scale_config("mnist", check=False)
    assert (mnist.n_train, mnist.epochs, mnist.batch_size, mnist.lr, len(mnist.seeds)) == (6000, 25, 10, 0.01, 5)
    with pytest.raises(RuntimeError, match="Colab"):
        ex.load_split(mnist)
    with pytest.raises(ValueError, match="paper-scale dataset"):
        ex.paper_scale_config("mnist_sample")


# ------------------------------------------------------------------------------------------------ protocol

def test_prepare_split_validation_is_fixed_disjoint_and_normalized():
    cfg = ex.SweepConfig(**TINY)
    raw = random_split()
    split = ex.prepare_split(cfg, raw)
    assert split.x_val.shape[0] == 30 and split.x_train.shape[0] == 60 and torch.equal(split.x_test, raw.x_test)
    rows = {tuple(r.tolist()) for r in raw.x_train}
    val = {tuple(r.tolist()) for r in split.x_val}
    assert val <= rows and not val & {tuple(r.tolist()) for r in split.x_train}
    assert torch.equal(ex.prepare_split(cfg, raw).x_val, split.x_val)  # a fixed split, not per seed
    sub0, sub1 = split.subsample_train(50, 0), split.subsample_train(50, 1)
    assert torch.equal(sub0.x_val, sub1.x_val) and not torch.equal(sub0.x_train, sub1.x_train)
    authors = ex.prepare_split(cfg.replace_(normalize="authors"), raw)
    assert torch.allclose(authors.x_val, (split.x_val - 0.1307) / 0.3081)
    assert torch.allclose(authors.x_test, (raw.x_test - 0.1307) / 0.3081)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ex.prepare_split(cfg, data.Split(raw.x_train * 3, raw.y_train, raw.x_test, raw.y_test, "x"))
    with pytest.raises(ValueError, match="n_val"):
        ex.prepare_split(cfg.replace_(n_val=90), raw)
    with pytest.raises(ValueError, match="validation images"):
        ex.prepare_split(cfg.replace_(n_val=20), split)
    with pytest.raises(TypeError, match="Split"):
        ex.prepare_split(cfg, (raw.x_train, raw.y_train))


def test_bad_setting_fails_before_any_training(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(train, "fit", boom)
    with pytest.raises(ValueError, match="n_val"):
        ex.train_models(ex.SweepConfig(**{**TINY, "n_val": 200}), random_split(), cache_dir=False, progress=False)
    with pytest.raises(ValueError, match="sweeps"):
        ex.run_sweeps(ex.SweepConfig(**TINY), random_split(), sweeps=("train",), cache_dir=False, progress=False)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        ex.train_models(ex.SweepConfig(**{**TINY, "model": "vgg_small", "model_kwargs": (("width", 0.1),),
                                          "dataset": "cifar10", "n_test": None}),
                        random_split(), cache_dir=False, progress=False)


# ----------------------------------------------------------------------------------------- train + cache

def test_train_models_caches_and_verifies(tmp_path):
    cfg = ex.SweepConfig(**TINY)
    split = random_split()
    first = ex.train_models(cfg, split, cache_dir=tmp_path, device="cpu", progress=False)
    assert [t.cached for t in first] == [False, False] and len(list(tmp_path.glob("*.pt"))) == 2
    again = ex.train_models(cfg, split, cache_dir=tmp_path, device="cpu", progress=False)
    assert [t.cached for t in again] == [True, True] and again[0].seconds == 0.0
    for a, b in zip(first, again):
        assert all(torch.equal(x, y) for x, y in zip(a.model.state_dict().values(), b.model.state_dict().values()))
        assert a.test_metrics == b.test_metrics and a.val_metrics == b.val_metrics
    assert not torch.equal(first[0].split.x_train, first[1].split.x_train)
    with pytest.raises(ValueError, match="not trained with this cfg"):
        ex.run_sweeps(cfg.replace_(normalize="authors"), trained=first, progress=False)
    with pytest.raises(ValueError, match="seeds"):
        ex.run_sweeps(cfg.replace_(seeds=(1, 0)), trained=first, progress=False)
    none = ex.train_models(cfg.replace_(seeds=(5,)), split, cache_dir=False, device="cpu", progress=False)
    assert not none[0].cached and len(list(tmp_path.glob("*.pt"))) == 2
    # one entry damaged: reported by path, moved aside, retrained to the same network
    victim = sorted(tmp_path.glob("*.pt"))[0]
    victim.write_bytes(victim.read_bytes()[:100])
    with pytest.warns(cache.CacheWarning, match=str(victim)):
        third = ex.train_models(cfg, split, cache_dir=tmp_path, device="cpu", progress=False)
    assert sorted(t.cached for t in third) == [False, True]
    assert [t.test_metrics for t in third] == [t.test_metrics for t in first]


def test_cache_key_covers_what_the_weights_depend_on(monkeypatch):
    cfg = ex.SweepConfig(**TINY)
    sub = ex.prepare_split(cfg, random_split()).subsample_train(50, 0)
    key = ex.cache_key(cfg, 0, sub)
    assert key == ex.cache_key(cfg, 0, sub)
    assert key != ex.cache_key(cfg.replace_(epochs=2), 0, sub) and key != ex.cache_key(cfg, 1, sub)
    assert key != ex.cache_key(cfg.replace_(normalize="authors"), 0, sub)
    assert key == ex.cache_key(cfg.replace_(bits=(3,), methods=("uniform",), fixed_temperature=1.5), 0, sub)
    assert key != ex.cache_key(cfg, 0, sub.subsample_train(50, 3))  # the training tensors themselves
    assert key != ex.cache_key(cfg, 0, sub, device="cuda") and key != ex.cache_key(cfg, 0, sub, dtype=torch.float64)
    monkeypatch.setenv("POPRISK_THREADS", "2")
    assert ex.cache_key(cfg, 0, sub) != key
    monkeypatch.delenv("POPRISK_THREADS")
    monkeypatch.setattr(cache, "code_fingerprint", lambda: "edited-library")
    assert ex.cache_key(cfg, 0, sub) != key


def test_code_edit_retrains_and_unwritable_cache_keeps_networks(tmp_path, monkeypatch):
    cfg = ex.SweepConfig(**{**TINY, "seeds": (0,)})
    split = random_split()
    assert not ex.train_models(cfg, split, cache_dir=tmp_path, device="cpu", progress=False)[0].cached
    monkeypatch.setattr(cache, "code_fingerprint", lambda: "edited-library")
    assert not ex.train_models(cfg, split, cache_dir=tmp_path, device="cpu", progress=False)[0].cached
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.warns(cache.CacheWarning, match="cannot write") as record:
        nets = ex.train_models(cfg.replace_(seeds=(0, 1)), split, cache_dir=blocker / "c", device="cpu",
                               progress=False)
    assert len(record) == 1 and len(nets) == 2 and all(math.isfinite(t.test_metrics.loss) for t in nets)


def test_default_cache_dir_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("POPRISK_CACHE", str(tmp_path / "c"))
    assert ex.default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("POPRISK_CACHE")
    assert ex.default_cache_dir().name == "poprisk"


# --------------------------------------------------------------------------------------------- compression

def _mlp():
    torch.manual_seed(0)
    model = models.MLP(in_features=20, hidden=(30,), n_classes=4)
    h = {name: torch.rand(m.weight.shape, dtype=torch.float64) + 0.1 for name, m in models.compressible_layers(model)}
    return model, h


def test_compress_quantize_prune_and_ratios():
    model, _ = _mlp()
    q, ratio = ex.compress(model, method="kmeans", bits=2)
    assert all(m.weight.unique().numel() <= 4 for _, m in models.compressible_layers(q))
    assert 0 < ratio < 2 / 32 + 32 * 4 * 2 / (32 * (20 * 30 + 30 * 4))
    same, one = ex.compress(model)
    assert one == 1.0 and all(torch.equal(a, b) for a, b in zip(model.parameters(), same.parameters()))
    masks = {name: torch.rand(m.weight.shape) < 0.3 for name, m in models.compressible_layers(model)}
    pruned, pr = ex.compress(model, masks=masks)
    expected = 0.0
    for name, m in models.compressible_layers(pruned):
        keep = masks[name]
        assert torch.all(m.weight[~keep] == 0)
        p = keep.float().mean().item()
        expected += keep.numel() * -(p * math.log2(p) + (1 - p) * math.log2(1 - p)) + 32 * keep.sum().item()
    assert pr == pytest.approx(expected / (32 * (20 * 30 + 30 * 4)))
    with pytest.raises(ValueError, match="together"):
        ex.compress(model, method="kmeans")
    with pytest.raises(ValueError, match="method must be one of"):
        ex.compress(model, method="nope", bits=2)
    with pytest.raises(ValueError, match="needs the importances"):
        ex.compress(model, method="hw_kmeans", bits=2)


def test_compress_refuses_transposed_importances():
    model, h = _mlp()
    bad = {**h, "net.1": h["net.1"].T.contiguous()}  # (20, 30) instead of (30, 20): same size
    for method in ("hw_kmeans", "hw_exact", "drhw", "noise"):
        with pytest.raises(ValueError, match=r"h\['net\.1'\] has shape \(20, 30\)"):
            ex.compress(model, method=method, bits=2, h=bad, beta=1.0)
    with pytest.raises(ValueError, match="no entry for layer 'net.1'"):
        ex.compress(model, method="hw_kmeans", bits=2, h={"net.4": h["net.4"]})
    with pytest.raises(ValueError, match=r"h\['net\.1'\] has shape"):  # checked even where h is not used
        ex.compress(model, method="kmeans", bits=2, h=bad)
    masks = {name: torch.ones(m.weight.shape, dtype=torch.bool) for name, m in models.compressible_layers(model)}
    with pytest.raises(ValueError, match=r"masks\['net\.4'\] has shape \(30, 4\)"):
        ex.compress(model, masks={**masks, "net.4": masks["net.4"].T})
    with pytest.raises(TypeError, match="boolean"):
        ex.compress(model, masks={**masks, "net.4": masks["net.4"].float()})
    with pytest.raises(ValueError, match="finite"):
        ex.compress(model, method="hw_kmeans", bits=2, h={**h, "net.4": h["net.4"] * math.nan})


def test_layer_subsets_touch_only_their_layers():
    model, _ = _mlp()
    assert ex.selected_layers(model, "hidden") == ["net.1"] and ex.selected_layers(model, "output") == ["net.4"]
    out, ratio = ex.compress(model, method="kmeans", bits=1, layers="output")
    assert torch.equal(out.net[1].weight, model.net[1].weight) and out.net[4].weight.unique().numel() <= 2
    _, full = ex.compress(model, method="kmeans", bits=1)
    coded_out = full * 32 * 720 - (ex.compress(model, method="kmeans", bits=1, layers="hidden")[1] * 32 * 720
                                   - 32 * 120)
    assert ratio * 32 * 720 == pytest.approx(32 * 600 + coded_out)  # untouched layers count 32 bits per weight
    with pytest.raises(ValueError, match="layers"):
        ex.compress(model, method="kmeans", bits=1, layers="input")


def test_noise_control_matches_the_reference_distortion_exactly():
    model, h = _mlp()
    for bits, ref in ((1, "kmeans"), (2, "hw_exact")):
        quantized, _ = ex.compress(model, method=ref, bits=bits, h=h)
        noisy, ratio = ex.compress(model, method="noise", bits=bits, h=h, seed=4, noise_reference=ref)
        assert ratio == 1.0
        for name, m in models.compressible_layers(model):
            w = m.weight.detach().double()
            d_q = (h[name] * (dict(quantized.named_modules())[name].weight.double() - w) ** 2).sum()
            d_n = (h[name] * (dict(noisy.named_modules())[name].weight.double() - w) ** 2).sum()
            # float32 storage of the perturbed weights is the only error
            assert d_n.item() == pytest.approx(d_q.item(), rel=1e-4)
        assert ex.hw_distortion(model, noisy, h) == pytest.approx(ex.hw_distortion(model, quantized, h), rel=1e-4)
        again, _ = ex.compress(model, method="noise", bits=bits, h=h, seed=4, noise_reference=ref)
        assert all(torch.equal(a, b) for a, b in zip(noisy.parameters(), again.parameters()))
        other, _ = ex.compress(model, method="noise", bits=bits, h=h, seed=5, noise_reference=ref)
        assert not torch.equal(other.net[1].weight, noisy.net[1].weight)
    with pytest.raises(ValueError, match="needs the importances"):
        ex.compress(model, method="noise", bits=2)


# --------------------------------------------------------------------------------------------------- sweeps

def test_run_sweeps_rows_and_columns(sweep):
    _, df, _ = sweep
    n_quant = 2 * (4 + 2 + 1 + 1)  # per bits: uniform, kmeans, hw_kmeans, hw_exact; drhw × 2 β; drhw_linear; noise
    n_jobs = 2 * (n_quant + 2 * 2 + 2 * 2 * 1)  # two layer subsets × (quantize + prune + prune_quantize)
    assert len(df) == 2 * (1 + n_jobs) and df["row"].tolist() == list(range(len(df)))
    assert list(dict.fromkeys(df.experiment)) == ["baseline", "quantize", "prune", "prune_quantize"]
    for col in ex.SETTING_COLUMNS + ("train_ce", "val_ce", "test_ce", "gap", "test_ece", "temperature", "val_ce_cal",
                                     "test_ce_cal", "test_ece_cal", "test_ce_fixed", "test_ece_fixed",
                                     "logit_norm", "ratio", "hw_distortion", "base_test_ce", "seconds"):
        assert col in df.columns, col
    numeric = df.select_dtypes("number")
    assert np.isfinite(numeric.to_numpy()).all()
    assert np.allclose(df.gap, df.test_ce - df.train_ce) and np.allclose(df.gap_cal, df.test_ce_cal - df.train_ce_cal)
    assert ((df.ratio > 0) & (df.ratio <= 1)).all() and df.test_acc.between(0, 1).all()
    assert (df.val_ce_cal <= df.val_ce + 1e-9).all()  # T minimises the validation loss, and T = 1 is allowed
    assert df.temperature.between(calibration.T_MIN, calibration.T_MAX).all()
    assert df.bits.dropna().map(type).eq(int).all() and df.loc[df.experiment == "baseline", "bits"].isna().all()
    base = stats.select(df, experiment="baseline", seed=0).iloc[0]
    unpruned = stats.select(df, experiment="prune", prune="magnitude", prune_ratio=0.0, seed=0, layers="all").iloc[0]
    assert unpruned.test_ce == pytest.approx(base.test_ce) and unpruned.ratio == 1.0
    assert (stats.select(df, experiment="quantize", bits=1, layers="all", method=lambda m: m != "noise").ratio
            < 1.5 / 32).all()
    hw = stats.select(df, experiment="quantize", method="hw_kmeans").sort_values(["seed", "bits", "layers"])
    drhw0 = stats.select(df, experiment="quantize", method="drhw", beta=0.0).sort_values(["seed", "bits", "layers"])
    assert hw.test_ce.to_numpy() == pytest.approx(drhw0.test_ce.to_numpy())  # β = 0 is HW K-means
    noise = stats.select(df, experiment="quantize", method="noise").sort_values(["seed", "bits", "layers"])
    km = stats.select(df, experiment="quantize", method="kmeans").sort_values(["seed", "bits", "layers"])
    assert (noise.ratio == 1.0).all()
    assert noise.hw_distortion.to_numpy() == pytest.approx(km.hw_distortion.to_numpy(), rel=1e-4)
    assert set(stats.select(df, method="drhw_linear").beta) == {30.0}


def test_calibrated_and_fixed_columns_agree_with_calibration(sweep):
    cfg, df, _ = sweep
    tm = ex.train_models(cfg, random_split(), cache_dir=False, device="cpu", progress=False)[0]
    z_val, z_test = train.predict(tm.model, tm.split.x_val), train.predict(tm.model, tm.split.x_test)
    row = stats.select(df, experiment="baseline", seed=0).iloc[0]
    T = calibration.fit_temperature(z_val, tm.split.y_val)
    assert row.temperature == pytest.approx(T)
    assert row.test_ce_cal == pytest.approx(calibration.cross_entropy(z_test, tm.split.y_test, T))
    assert row.test_ce_fixed == pytest.approx(calibration.cross_entropy(z_test, tm.split.y_test, 2.0))
    assert row.test_ece == pytest.approx(calibration.expected_calibration_error(z_test, tm.split.y_test))
    assert row.logit_norm == pytest.approx(z_test.double().norm(dim=1).mean().item())


def test_per_example_losses_are_keyed_by_row(sweep):
    _, df, per = sweep
    assert per.losses["test_ce"].shape == (len(df), 40)
    for kind in ex.PER_EXAMPLE_KINDS:
        assert per.losses[kind].mean(axis=1) == pytest.approx(df[kind].to_numpy())
    rows = stats.select(df, experiment="quantize", method="kmeans", bits=2, layers="all")
    mat = per.matrix(rows.iloc[::-1], "test_ce_cal")  # order of the rows does not matter: seeds do
    assert mat.shape == (2, 40) and mat.mean(axis=1) == pytest.approx(rows.sort_values("seed").test_ce_cal.to_numpy())
    base = per.matrix(stats.select(df, experiment="baseline"), "test_ce", seeds=[1, 0])
    assert base.mean(axis=1) == pytest.approx(stats.select(df, experiment="baseline").test_ce.to_numpy()[::-1])
    diff = stats.bootstrap_interval(mat, per.matrix(stats.select(df, experiment="baseline"), "test_ce_cal"))
    assert diff["n_seeds"] == 2 and diff["lo"] <= diff["mean"] <= diff["hi"]
    with pytest.raises(ValueError, match="seed 0"):
        per.matrix(stats.select(df, experiment="quantize", method="drhw", bits=2, layers="all"))
    q = stats.select(df, experiment="quantize", bits=2, layers="all")
    table = per.bootstrap(q, ["method", "beta"], "test_ce_cal", against=stats.select(df, experiment="baseline"),
                          n_boot=500)
    assert len(table) == 8 and list(table.columns) == ["method", "beta", "mean", "lo", "hi", "se", "n_seeds"]
    km = table[table.method == "kmeans"].iloc[0]
    assert km["mean"] == pytest.approx(diff["mean"]) and (table.lo <= table["mean"]).all()
    assert per.bootstrap(q, ["method", "beta"], n_boot=500)["mean"].tolist() == pytest.approx(
        stats.summarize(q, ["method", "beta"], "test_ce")["test_ce_mean"].tolist())
    with pytest.raises(ValueError, match=r"2 rows for seed 0.*beta"):
        per.bootstrap(q, "method")
    with pytest.raises(ValueError, match=r"no row for seed\(s\) \[7\]"):
        per.matrix(rows, seeds=[0, 7])
    with pytest.raises(ValueError, match="kind"):
        per.matrix(rows, "train_ce")


def test_sweep_with_cifar_model_on_random_images(tmp_path):
    cfg = ex.SweepConfig(**{**TINY, "model": "vgg_small", "model_kwargs": (("width", 1 / 16),), "augment": True,
                            "seeds": (0,), "bits": (2,), "prune_methods": ("magnitude",), "methods": ("kmeans",),
                            "n_train": 32, "n_val": 8, "dataset": "cifar10", "n_test": None})
    split = random_split(n_train=40, n_test=16, shape=(3, 32, 32))
    df = ex.run_sweeps(cfg, split, sweeps=("quantize", "prune"), cache_dir=tmp_path, device="cpu", progress=False)
    assert len(df) == 1 + 1 + 2 and np.isfinite(df.test_ce_cal).all()


def test_augment_images_shapes_and_determinism():
    x = torch.rand(5, 3, 8, 8)
    a = ex.augment_images(x, torch.Generator().manual_seed(1))
    assert a.shape == x.shape and torch.equal(a, ex.augment_images(x, torch.Generator().manual_seed(1)))
    flips = ex.augment_images(x, torch.Generator().manual_seed(2), pad=0)
    for i in range(5):  # with no padding only flips remain
        assert torch.equal(flips[i], x[i]) or torch.equal(flips[i], x[i].flip(-1))


# ------------------------------------------------------------------------------------------------ selection

def test_select_on_validation_uses_validation_only(sweep):
    _, df, _ = sweep
    among = dict(experiment="quantize", method="drhw", bits=2, layers="all")
    sel = selection.select_on_validation(df, "beta", among)
    means = stats.select(df, **among).groupby("beta").val_ce.mean()
    assert sel.setting == {"beta": float(means.idxmin())} and sel.scores["chosen"].sum() == 1
    assert sel.rows.seed.tolist() == [0, 1] and (sel.rows.beta == means.idxmin()).all()
    assert "test_ce" in sel.rows.columns  # the test numbers are reported, not used
    # with the test loss flipped, the choice does not move
    flipped = df.assign(test_ce=-df.test_ce)
    assert selection.select_on_validation(flipped, "beta", among).setting == sel.setting
    both = selection.select_on_validation(df, ["bits", "beta"], dict(experiment="quantize", method="drhw",
                                                                      layers="all"))
    assert set(both.setting) == {"bits", "beta"} and len(both.scores) == 4
    own = selection.select_on_validation(df, "beta", among, per_seed=True)
    for seed, setting in own.setting.items():
        mine = stats.select(df, seed=seed, **among)
        assert setting["beta"] == mine.loc[mine.val_ce.idxmin(), "beta"]
    acc = selection.select_on_validation(df, "beta", among, metric="val_acc", mode="max")
    assert acc.metric == "val_acc"
    with pytest.raises(ValueError, match="validation column"):
        selection.select_on_validation(df, "beta", among, metric="test_ce")
    with pytest.raises(ValueError, match=r"2 rows for seed 0.*layers"):
        selection.select_on_validation(df, "beta", dict(experiment="quantize", method="drhw", bits=2))
    with pytest.raises(ValueError, match="different seeds"):
        selection.select_on_validation(df[~((df.seed == 1) & (df.beta == 30.0))], "beta", among)
    with pytest.raises(ValueError, match="unknown column"):
        selection.select_on_validation(df, "gamma", among)
    with pytest.raises(ValueError, match="no row"):
        selection.select_on_validation(df, "beta", dict(method="drhw", bits=7))


def test_sweep_does_not_depend_on_the_callers_thread_count():
    cfg = ex.SweepConfig(**{**TINY, "seeds": (0,), "methods": ("kmeans", "hw_exact", "noise"), "bits": (2,)})
    trained = ex.train_models(cfg, random_split(), cache_dir=False, device="cpu", progress=False)
    before = torch.get_num_threads()
    frames = []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            frames.append(ex.run_sweeps(cfg, trained=trained, sweeps=("quantize",), progress=False))
            assert torch.get_num_threads() == n  # restored after the sweep
    finally:
        torch.set_num_threads(before)
    a, b = (f.drop(columns="seconds") for f in frames)
    pd.testing.assert_frame_equal(a, b, check_exact=True)


HOSTILE = (None, "no", "", math.nan, math.inf, -1, 0, 1.5, True, (), ("x",), (math.nan,), (-1,), [None], object())


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(ex.SweepConfig)])
def test_every_field_refuses_hostile_values_or_stores_a_valid_one(field):
    """Each hostile value is either refused with TypeError/ValueError naming the field, or stored as a value of
    the field's kind (bools are bools, numbers finite, sequences tuples) — never another exception."""
    default = getattr(ex.SweepConfig(), field)
    for value in HOSTILE:
        try:
            cfg = ex.SweepConfig(**{field: value})
        except (TypeError, ValueError) as exc:
            assert field in str(exc) or field.rstrip("s") in str(exc), (field, value, exc)
            continue
        stored = getattr(cfg, field)
        if stored is None and field in ("n_train", "n_test"):  # documented: the whole pool / official test set
            continue
        if isinstance(default, bool):
            assert isinstance(stored, bool), (field, value)
        elif isinstance(default, float):
            assert isinstance(stored, float) and math.isfinite(stored), (field, value)
        elif isinstance(default, tuple):
            assert isinstance(stored, tuple), (field, value)
            assert all(not isinstance(v, float) or math.isfinite(v) for v in stored), (field, value)
        elif isinstance(default, int):
            assert isinstance(stored, int) and not isinstance(stored, bool), (field, value)
        assert cache.canonical_json(cfg.as_dict())


def test_training_payload_and_fingerprint_follow_the_data():
    cfg = ex.SweepConfig(seeds=(0,), n_train=50, epochs=1)
    split = ex.prepare_split(cfg, data.load_dataset("digits", n_test=100, seed=0))
    model = ex.build_model(cfg, split)
    assert isinstance(model, models.MLP) and model(split.x_test[:2]).shape == (2, 10)
    fp = ex.tensor_fingerprint(split.x_train, split.y_train)
    assert fp == ex.tensor_fingerprint(split.x_train.clone(), split.y_train)
    assert fp != ex.tensor_fingerprint(split.x_train * 2, split.y_train)
    payload = ex.training_payload(cfg, 0, split, "cpu", torch.float32)
    assert payload["data"] == fp and payload["seed"] == 0 and payload["settings"]["epochs"] == 1
    assert ex.training_payload(cfg.replace_(epochs=2), 0, split, "cpu", torch.float32) != payload
    ex.check_memory(cfg, model)  # no hw_exact beyond this machine: passes
    with pytest.raises(TypeError, match="tensor_fingerprint takes torch tensors"):
        ex.tensor_fingerprint(np.zeros(3))


def test_per_layer_arrays_flattens_checked_entries():
    model, h = _mlp()
    flat = ex.per_layer_arrays(h, model, "h")
    assert {k: v.shape for k, v in flat.items()} == {k: (v.numel(),) for k, v in h.items()}
    assert all(v.dtype == np.float64 for v in flat.values())
    masks = {k: torch.ones_like(v, dtype=torch.bool) for k, v in h.items()}
    assert all(v.dtype == bool for v in ex.per_layer_arrays(masks, model, "masks", boolean=True).values())
