"""Tests of poprisk.theory_tables (chapter 10's tables) on small networks and synthetic sweeps."""

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from poprisk import bounds, experiments as ex
from poprisk import theory_tables as theory


def quantized_net(seed=0):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(20, 30), nn.ReLU(), nn.Linear(30, 3))
    with torch.no_grad():  # the first weight takes 4 values, as a quantized layer would
        w = net[0].weight
        w.copy_(torch.tensor([-0.2, -0.05, 0.05, 0.2])[torch.randint(0, 4, w.shape)])
    return net


def test_code_report_sums_to_the_network_code_and_its_checks_hold():
    net = quantized_net()
    report = theory.code_report(net, decode_up_to=100)
    assert report["tensor"].tolist() == [n for n, _ in net.named_parameters()]
    assert report["code bits"].sum() == bounds.network_code_bits(net)["total"]
    assert report["within entropy bound"].all() and report["at least its label index"].all()
    small = report.entries <= 100
    assert report.decodes[small].astype(bool).all() and report.decodes[~small].isna().all()
    # the quantized weight pays its two-part code, far below 32 bits per entry
    assert report["code bits"][0] < 3 * 600 and report["code bits"][2] == 1 + 32 * 90


def test_error_record_matches_evaluate():
    net = quantized_net(1)
    g = torch.Generator().manual_seed(0)
    split = SimpleNamespace(x_train=torch.randn(40, 20, generator=g), y_train=torch.randint(0, 3, (40,), generator=g),
                            x_test=torch.randn(30, 20, generator=g), y_test=torch.randint(0, 3, (30,), generator=g))
    rec = theory.error_record(net, split, seed=7, bits=2)
    pred = net(split.x_test).argmax(1)
    assert rec["seed"] == 7 and rec["bits"] == 2
    assert math.isclose(rec["test_err"], float((pred != split.y_test).double().mean()), abs_tol=1e-7)
    assert rec["code_bits"] == bounds.network_code_bits(net)["total"]


def test_frame_information_of_small_laws():
    law = pd.DataFrame(dict(S=[0, 0, 1, 1], W=[0, 1, 0, 1], p=[0.4, 0.1, 0.1, 0.4]))
    p = np.array([[0.4, 0.1], [0.1, 0.4]])
    want = float((p * np.log(p / 0.25)).sum())
    assert abs(theory.frame_information(law, "S", "W") - want) < 1e-12
    assert abs(theory.frame_information(law, "S", "S") - math.log(2)) < 1e-12  # I(S;S) = H(S)
    assert abs(theory.frame_information(law.assign(W=0), "S", "W")) < 1e-12
    with pytest.raises(ValueError, match="summing to 1"):
        theory.frame_information(law.assign(p=0.5), "S", "W")


def synthetic_sweep(shift):
    rows, losses, seeds = [], [], []
    rng = np.random.default_rng(0)
    for seed in range(4):
        base = rng.exponential(0.3, size=50)
        for exp, bits, d in (("baseline", np.nan, 0.0), ("quantize", 1, 0.3), ("quantize", 2, shift)):
            d *= 1 + 0.01 * (seed - 1.5)  # the effect varies a little across seeds, mean d
            rows.append(dict(row=len(rows), seed=seed, experiment=exp, method="none" if exp == "baseline"
                             else "kmeans", bits=bits, val_ce_cal=0.3 + d + 0.001 * seed,
                             test_ce_cal=float((base + d).mean()), test_acc=0.9 - d / 10))
            losses.append(base + d)
            seeds.append(seed)
    return pd.DataFrame(rows), ex.PerExample(losses={"test_ce_cal": np.array(losses)}, seeds=np.array(seeds))


@pytest.mark.parametrize("shift,word", [(0.1, "worse"), (-0.1, "better"), (0.001, "equivalent")])
def test_validation_verdicts_choose_on_validation_and_say_the_verdict(shift, word):
    sweep, per = synthetic_sweep(shift)
    v = theory.validation_verdicts(sweep, per, ("kmeans",))
    chosen = 2 if shift < 0.3 else 1  # the lower calibrated validation loss
    assert v.bits_on_validation.tolist() == [chosen, chosen]
    ce = v[v.metric == "test_ce_cal"].iloc[0]
    assert abs(ce["diff"] - shift) < 1e-9 and ce.boot_lo < shift < ce.boot_hi
    text = theory.verdict_sentences(v, margin=0.02)
    assert f"**{word}**" in text and "kmeans at 2 bits" in text


def test_importance_sources_compress_both_ways():
    g = torch.Generator().manual_seed(0)
    def digits(n):
        return torch.randn(n, 20, generator=g), torch.randint(0, 3, (n,), generator=g)
    (xa, ya), (xv, yv), (xt, yt) = digits(60), digits(60), digits(40)
    split = SimpleNamespace(x_train=xa, y_train=ya, x_val=xv, y_val=yv, x_test=xt, y_test=yt)
    trained = [SimpleNamespace(seed=s, model=quantized_net(s), split=split) for s in (0, 1)]
    hw = theory.importance_sources(trained, 50, bits=1)
    assert hw[["seed", "h_from"]].values.tolist() == [[0, "train"], [0, "validation"], [1, "train"],
                                                       [1, "validation"]]
    assert np.allclose(hw.gap, hw.test_ce - hw.train_ce) and hw.label_agreement.between(0, 1).all()
    assert (hw.label_agreement.values[::2] == hw.label_agreement.values[1::2]).all()
    assert (hw.code_bits < bounds.network_code_bits(quantized_net())["total"]).all()  # 1 bit per weight
