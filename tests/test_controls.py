"""Tests of poprisk.controls: the noise control matched on the training-loss rise (chapters 9 and 9b)."""

from __future__ import annotations

import pytest
import torch

from poprisk import config, controls, experiments as ex


def net_and_data():
    config.seed_everything(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(200, 8, generator=g), torch.randint(0, 3, (200,), generator=g)
    return model.eval(), x, y


def test_scaled_perturbation_is_linear_in_c_and_keeps_biases():
    model, _, _ = net_and_data()
    other = controls.scaled_perturbation(model, model, 0.0)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(1.0)
    half = controls.scaled_perturbation(model, other, 0.5)
    w, w_half = model[0].weight, half[0].weight
    assert torch.allclose(w_half - w, torch.full_like(w, 0.5))
    assert torch.equal(half[0].bias, model[0].bias)
    with pytest.raises(ValueError):
        controls.scaled_perturbation(model, torch.nn.Linear(8, 3), 1.0)


def test_match_training_loss_hits_its_target():
    model, x, y = net_and_data()
    noisy = controls.scaled_perturbation(model, model, 1.0)
    with torch.no_grad():
        for p in noisy.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=torch.Generator().manual_seed(2)))
    base = controls._train_ce(model, x, y)
    for target in (0.01, 0.2):
        c, rise = controls.match_training_loss(model, noisy, x, y, target)
        assert rise == pytest.approx(target, rel=2e-3)
        got = controls._train_ce(controls.scaled_perturbation(model, noisy, c), x, y) - base
        assert got == pytest.approx(target, rel=2e-3)
    with pytest.raises(ValueError):
        controls.match_training_loss(model, noisy, x, y, 0.0)


def test_loss_matched_noise_on_a_small_sweep():
    cfg = ex.SweepConfig(dataset="digits", n_test=300, n_val=200, n_train=300, seeds=(0,), epochs=3,
                         methods=("kmeans",), bits=(2,), curvature_samples=200)
    trained = ex.train_models(cfg, cache_dir=False, progress=False)
    frame, per = controls.loss_matched_noise(cfg, trained, bits=2)
    by = frame.set_index("experiment")
    assert list(by.index) == ["baseline", "quantize", "noise_hw", "noise_loss"]
    assert by.loc["noise_loss", "train_rise"] == pytest.approx(by.loc["quantize", "train_rise"], rel=2e-3)
    assert by.loc["noise_hw", "scale"] == 1.0 and by.loc["noise_loss", "scale"] > 1.0
    table = controls.noise_table(frame, per)
    assert len(table) == 4 and set(table["verdict for the noise"]) <= {"better", "worse", "equivalent",
                                                                       "inconclusive"}
