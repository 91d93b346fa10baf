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
                                     "regularizer"]
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
