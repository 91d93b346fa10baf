"""poprisk.selection refuses a metric column it cannot rank (non-numeric, complex, bool, NaN or inf), naming
the column, before it chooses anything (issue 22, cause 2)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from poprisk import selection


def frame(metric):
    return pd.DataFrame({"seed": [0, 0, 1, 1], "beta": [0.0, 1.0, 0.0, 1.0], "val_ce": metric})


def test_a_clean_frame_chooses_on_validation():
    assert selection.select_on_validation(frame([0.5, 0.4, 0.6, 0.3]), "beta") is not None


@pytest.mark.parametrize("metric, exc", [
    (["a", "b", "c", "d"], TypeError), ([True, False, True, False], TypeError),
    ([1 + 1j, 2, 3, 4], TypeError), ([0.5, np.nan, 0.6, 0.3], ValueError), ([0.5, np.inf, 0.6, 0.3], ValueError),
    ([0.5, -np.inf, 0.6, 0.3], ValueError), (pd.array([0.5, None, 0.6, 0.3], dtype="Float64"), ValueError)],
    ids=["str", "bool", "complex", "nan", "inf", "-inf", "NA"])
def test_a_metric_it_cannot_rank_is_refused_naming_it(metric, exc):
    with pytest.raises(exc, match="val_ce"):
        selection.select_on_validation(frame(metric), "beta")
