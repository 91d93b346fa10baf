"""Tests of poprisk.protocol: the protocol-differences table and the calibration decomposition."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from poprisk import protocol

NEEDED = ("train_ce", "test_ce", "test_ce_cal", "base_train_ce", "base_test_ce", "base_test_ce_cal")


def frame(values):
    return pd.DataFrame([dict(zip(NEEDED, v)) for v in values])


def test_differences_cover_the_six_aspects_of_the_issue():
    table = protocol.protocol_differences()
    assert list(table["aspect"]) == ["data", "preprocessing", "sample", "initialization", "importance",
                                     "regularizer", "temperature"]
    assert list(table.columns) == ["aspect", "authors' code", "this book", "changes a conclusion?"]
    # nothing is claimed before a measurement is passed in
    verdicts = dict(zip(table["aspect"], table["changes a conclusion?"]))
    assert verdicts["preprocessing"] == "not measured here"
    assert verdicts["data"] == "not measurable offline"


def test_differences_take_the_measured_conclusions():
    table = protocol.protocol_differences({"normalization": "yes: HW K-means no longer helps"})
    verdicts = dict(zip(table["aspect"], table["changes a conclusion?"]))
    assert verdicts["preprocessing"] == "yes: HW K-means no longer helps"
    assert verdicts["sample"] == "not measured here"


@pytest.mark.parametrize("bad, error", [({"normalisation": "x"}, ValueError), ({"sample": ""}, ValueError),
                                        ({"sample": 3}, ValueError), (["sample"], TypeError)])
def test_differences_reject_bad_conclusions(bad, error):
    with pytest.raises(error):
        protocol.protocol_differences(bad)


def test_decomposition_on_a_hand_example():
    # W: train 0.001, test 0.48, calibrated test 0.35; Ŵ: train 0.02, test 0.38, calibrated test 0.375
    out = protocol.calibration_decomposition(frame([(0.02, 0.38, 0.375, 0.001, 0.48, 0.35)]))
    row = out.iloc[0]
    assert row["test_change"] == pytest.approx(-0.10)
    assert row["distortion"] == pytest.approx(0.019)
    assert row["gap_change"] == pytest.approx(-0.119)
    assert row["temperature_alone"] == pytest.approx(-0.13)
    assert row["beyond_calibration"] == pytest.approx(0.025)  # compression is worse once both are calibrated
    assert row["miscalibration_left"] == pytest.approx(0.005)


finite = st.floats(0.0, 5.0, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(*[finite] * 6), min_size=1, max_size=8))
def test_decomposition_adds_up(values):
    out = protocol.calibration_decomposition(frame(values))
    total = out["test_ce"] - out["base_test_ce"]
    np.testing.assert_allclose(out["distortion"] + out["gap_change"], total, atol=1e-12)
    np.testing.assert_allclose(out["temperature_alone"] + out["beyond_calibration"]
                               + out["miscalibration_left"], total, atol=1e-12)
    # the input columns are kept, and the input is not modified
    assert set(NEEDED) <= set(out.columns)
    assert list(frame(values).columns) == list(NEEDED)


def test_decomposition_renames_columns():
    f = frame([(0.02, 0.38, 0.375, 0.001, 0.48, 0.35)]).rename(columns={"test_ce_cal": "cal"})
    out = protocol.calibration_decomposition(f, columns={"test_ce_cal": "cal"})
    assert out["beyond_calibration"].iloc[0] == pytest.approx(0.025)


def test_decomposition_rejects_bad_input():
    good = frame([(0.02, 0.38, 0.375, 0.001, 0.48, 0.35)])
    with pytest.raises(TypeError):
        protocol.calibration_decomposition(good.to_dict())
    with pytest.raises(ValueError, match="lacks the columns"):
        protocol.calibration_decomposition(good.drop(columns="test_ce_cal"))
    with pytest.raises(ValueError, match="unknown keys"):
        protocol.calibration_decomposition(good, columns={"test_cal": "x"})
    with pytest.raises(ValueError, match="no rows"):
        protocol.calibration_decomposition(good.iloc[:0])
    nan = good.copy()
    nan.loc[0, "test_ce"] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        protocol.calibration_decomposition(nan)


# ------------------------------------------------------------------- intervals over a synthetic sweep

def synthetic_sweep(n_seeds=4, n_images=50, shift=-0.1, seed=0):
    """A baseline and one compressed setting per seed, per-example losses with a known mean shift."""
    from poprisk.experiments import PER_EXAMPLE_KINDS, PerExample

    rng = np.random.default_rng(seed)
    rows, losses = [], {k: [] for k in PER_EXAMPLE_KINDS}
    for s in range(n_seeds):
        base = rng.exponential(0.4, n_images)
        for experiment, loss in (("baseline", base), ("quantize", base + shift + rng.normal(0, 0.01, n_images))):
            cal = 0.7 * loss
            rows.append(dict(row=len(rows), experiment=experiment, seed=s, method="none" if experiment ==
                             "baseline" else "kmeans", test_ce=loss.mean(), test_ce_cal=cal.mean(),
                             test_ece=0.05, test_ece_cal=0.01))
            for k, v in (("test_ce", loss), ("test_ce_cal", cal), ("test_ce_fixed", 0.8 * loss)):
                losses[k].append(v)
    frame = pd.DataFrame(rows)
    per = PerExample({k: np.stack(v) for k, v in losses.items()}, frame["seed"].to_numpy())
    return frame, per


def test_paired_interval_recovers_a_known_shift_and_orders_its_intervals():
    frame, per = synthetic_sweep()
    r = protocol.paired_interval(frame, per, dict(experiment="quantize"), dict(experiment="baseline"))
    assert r["mean"] == pytest.approx(-0.1, abs=0.01)
    assert r["boot_lo"] < r["mean"] < r["boot_hi"] and r["seeds_lo"] < r["mean"] < r["seeds_hi"]
    assert r["n_seeds"] == 4
    alone = protocol.paired_interval(frame, per, dict(experiment="baseline"))
    np.testing.assert_allclose(alone["mean"], frame.query("experiment == 'baseline'")["test_ce"].mean())
    # the bootstrap over test images sees the spread of the 50 image losses, the seeds interval does not
    # (all seeds share the images), so for an absolute loss the bootstrap is the wider one here
    assert alone["boot_hi"] - alone["boot_lo"] > alone["seeds_hi"] - alone["seeds_lo"]


def test_paired_interval_calibrated_kind_and_bad_input():
    frame, per = synthetic_sweep()
    r = protocol.paired_interval(frame, per, dict(experiment="quantize"), dict(experiment="baseline"),
                                 kind="test_ce_cal")
    assert r["mean"] == pytest.approx(0.7 * -0.1, abs=0.01)
    with pytest.raises(ValueError, match="matches no row"):
        protocol.paired_interval(frame, per, dict(experiment="prune"))
    with pytest.raises(ValueError, match="different seeds"):
        protocol.paired_interval(frame, per, dict(experiment="quantize"),
                                 dict(experiment="baseline", seed=[0, 1]))


def test_calibration_table_rows_and_columns():
    frame, per = synthetic_sweep()
    table = protocol.calibration_table(frame, per, {"K-means": dict(experiment="quantize")})
    assert list(table["setting"]) == ["uncompressed", "K-means"]
    row = table.iloc[1]
    base = frame.query("experiment == 'baseline'")
    comp = frame.query("experiment == 'quantize'")
    assert row["change"] == pytest.approx(comp["test_ce"].mean() - base["test_ce"].mean())
    assert row["beyond calibration"] == pytest.approx(comp["test_ce_cal"].mean() - base["test_ce_cal"].mean())
    assert row["change 95% CI"].startswith("[−") and table.iloc[0]["change 95% CI"] == "–"
    with pytest.raises(ValueError):
        protocol.calibration_table(frame, per, {})


def test_change_table_brackets_each_change_by_its_bootstrap_interval():
    frame, per = synthetic_sweep()
    table = protocol.change_table(frame, per, {"K-means": dict(experiment="quantize"),
                                               "itself": dict(experiment="baseline")})
    km, itself = table.iloc[0], table.iloc[1]
    assert km["change"] == pytest.approx(-0.1, abs=0.01)
    assert km["change lo"] < km["change"] < km["change hi"] < 0
    assert km["beyond lo"] < km["beyond calibration"] < km["beyond hi"] < 0
    assert itself["change"] == itself["change lo"] == itself["change hi"] == 0.0
    assert km["beyond 95% CI"] == protocol.interval_text(km["beyond lo"], km["beyond hi"])
    with pytest.raises(ValueError, match="non-empty mapping"):
        protocol.change_table(frame, per, [])
    with pytest.raises(ValueError, match="matches no row"):
        protocol.change_table(frame, per, {"x": dict(experiment="prune")})


def test_interval_text():
    assert protocol.interval_text(-0.03125, 0.5) == "[−0.0312, 0.500]"


def test_settings_table_reads_dataclasses():
    import dataclasses

    @dataclasses.dataclass(frozen=True)
    class Cfg:
        n_train: int = 1000
        seeds: tuple = (0, 1, 2, 3)
        betas: tuple = (3.0, 30.0)
        replace: bool = True

    table = protocol.settings_table({"here": Cfg(), "there": Cfg(n_train=6000, replace=False)})
    values = dict(zip(table["setting"], table["here"]))
    assert values == {"training images per seed": "1000", "drawn with replacement": "yes", "seeds": "0–3 (4)",
                      "DRHW β grid": "3, 30"}
    assert dict(zip(table["setting"], table["there"]))["drawn with replacement"] == "no"
    with pytest.raises(ValueError, match="no configuration has"):
        protocol.settings_table({"here": Cfg()}, fields=["epochs"])
    with pytest.raises(TypeError):
        protocol.settings_table({"here": Cfg})
    with pytest.raises(ValueError):
        protocol.settings_table({})


def test_paired_verdict_words_and_correction():
    frame, per = synthetic_sweep(n_seeds=5, shift=-0.1)
    v = protocol.paired_verdict(frame, per, "K-means − none", dict(experiment="quantize"),
                                dict(experiment="baseline"))
    assert v["raw: verdict"] == "better" and v["own T: verdict"] == "better"
    assert v["raw: mean"] == pytest.approx(-0.1, abs=0.01)
    same = protocol.paired_verdict(frame, per, "none − none", dict(experiment="baseline"),
                                   dict(experiment="baseline"))
    assert same["raw: verdict"] == "equivalent"
    # a shift of half the margin is equivalent, of twice the margin better
    small, _ = synthetic_sweep(n_seeds=8, shift=-0.01)
    assert protocol.paired_verdict(small, _, "x", dict(experiment="quantize"),
                                   dict(experiment="baseline"))["raw: verdict"] == "equivalent"
    big, pb = synthetic_sweep(n_seeds=8, shift=-0.04)
    assert protocol.paired_verdict(big, pb, "x", dict(experiment="quantize"),
                                   dict(experiment="baseline"))["raw: verdict"] == "better"
    with pytest.raises(ValueError, match="n_tests"):
        protocol.paired_verdict(frame, per, "x", dict(experiment="quantize"), dict(experiment="baseline"),
                                n_tests=0)


def test_verdict_table_corrects_for_the_number_of_comparisons():
    frame, per = synthetic_sweep(n_seeds=6, shift=0.05)
    one = protocol.verdict_table(frame, per, {"a": (dict(experiment="quantize"), None)}, kind="test_ce")
    assert one.attrs["level"] == pytest.approx(0.9)
    assert one["verdict"].iloc[0] == "worse" and one["difference (nats)"].iloc[0] == pytest.approx(0.05, abs=0.01)
    many = protocol.verdict_table(frame, per, {str(i): (dict(experiment="quantize"), None) for i in range(10)},
                                  kind="test_ce")
    assert many.attrs["level"] == pytest.approx(0.99)
    w1, w10 = one["hi"].iloc[0] - one["lo"].iloc[0], many["hi"].iloc[0] - many["lo"].iloc[0]
    assert w10 > 1.2 * w1  # the corrected interval is wider
    with pytest.raises(TypeError, match="pair"):
        protocol.verdict_table(frame, per, {"a": dict(experiment="quantize")})


def test_fill_formats_numbers_and_refuses_mismatches():
    assert protocol.fill("{a} and {b}", a=-0.031234, b="K-means") == "−0.0312 and K-means"
    with pytest.raises(ValueError, match="without a value"):
        protocol.fill("{a} {b}", a=1.0)
    with pytest.raises(ValueError, match="without a placeholder"):
        protocol.fill("{a}", a=1.0, c=2)


def test_seed_verdict_table_words_and_level():
    rng = np.random.default_rng(0)
    table = protocol.seed_verdict_table({"helps": -0.1 + rng.normal(0, 0.01, 5),
                                         "same": rng.normal(0, 0.002, 5),
                                         "hurts": 0.05 + rng.normal(0, 0.01, 5)})
    assert list(table["verdict"]) == ["better", "equivalent", "worse"]
    assert table.attrs["level"] == pytest.approx(1 - 0.1 / 3)
    # a spread that puts the interval across both 0 and the margin decides nothing
    wide = protocol.seed_verdict_table({"x": rng.normal(0, 0.05, 5)})
    assert wide["verdict"].iloc[0] == "inconclusive"
    with pytest.raises(ValueError, match="two seeds"):
        protocol.seed_verdict_table({"x": [0.1]})


def test_predictor_rows_four_predictors():
    import torch

    from poprisk import data

    split = data.load_dataset("digits", n_test=200, seed=0).with_validation(100, seed=0)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(64, 10))
    rows, last = protocol.predictor_rows({"original": (net, 1.0), "copy": (net, 0.5)}, split)
    assert [r["model"] for r in rows] == ["original", "original + T", "copy", "copy + T"]
    assert rows[0]["T"] == 1.0 and rows[1]["test_acc"] == rows[0]["test_acc"]
    assert rows[1]["test_ce"] <= rows[0]["test_ce"] + 0.05 and rows[2]["ratio"] == 0.5
    assert set(last) == {"original", "original + T", "copy", "copy + T"}
