"""Tests of poprisk.stats: selection of rows, across-seed t intervals, paired comparisons and the bootstrap
over test images and seeds — and their refusal of ambiguous input (issue 14, class 3)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from poprisk import stats


def sweep_like() -> pd.DataFrame:
    rows = []
    for seed in range(4):
        rows.append(dict(seed=seed, experiment="baseline", method="none", bits=None, beta=None,
                         test_ce=1.0 + 0.1 * seed))
        for bits in (1, 2):
            rows.append(dict(seed=seed, experiment="quantize", method="kmeans", bits=bits, beta=None,
                             test_ce=0.9 + 0.1 * seed + 0.01 * bits))
            for beta in (0.0, 30.0):
                rows.append(dict(seed=seed, experiment="quantize", method="drhw", bits=bits, beta=beta,
                                 test_ce=0.8 + 0.1 * seed + 0.01 * bits + 0.001 * beta + 0.003 * seed ** 2))
    df = pd.DataFrame(rows)
    df["bits"] = pd.Series([r["bits"] for r in rows], dtype=object)
    df["beta"] = pd.Series([r["beta"] for r in rows], dtype=object)
    return df


# ------------------------------------------------------------------------------------------------- select

def test_select_scalars_none_lists_and_predicates():
    df = sweep_like()
    assert len(stats.select(df, method="drhw", beta=30.0)) == 8
    assert len(stats.select(df, beta=None)) == 4 * 3  # baseline and kmeans rows have no beta
    assert set(stats.select(df, bits=[1]).method) == {"kmeans", "drhw"}
    assert len(stats.select(df, seed=lambda s: s >= 2, experiment="baseline")) == 2
    assert stats.select(df, method="drhw").index.tolist() == df.index[df.method == "drhw"].tolist()
    with pytest.raises(ValueError, match=r"unknown column.*'metod'"):
        stats.select(df, metod="drhw")
    with pytest.raises(TypeError, match="DataFrame"):
        stats.select(df.to_dict("records"), method="drhw")


# ---------------------------------------------------------------------------------------------- intervals

def test_t_interval_matches_scipy():
    vals = [0.30, 0.32, 0.35, 0.31, 0.33]
    s = stats.t_interval(vals)
    lo, hi = sps.t.interval(0.95, len(vals) - 1, loc=np.mean(vals), scale=sps.sem(vals))
    assert s["mean"] == pytest.approx(np.mean(vals)) and s["std"] == pytest.approx(np.std(vals, ddof=1))
    assert (s["lo"], s["hi"]) == (pytest.approx(lo), pytest.approx(hi)) and s["n"] == 5
    one = stats.t_interval([1.0])
    assert one["mean"] == 1.0 and math.isnan(one["std"]) and math.isnan(one["lo"])
    for bad, match in (([], "at least one"), ([1.0, math.nan], "finite")):
        with pytest.raises(ValueError, match=match):
            stats.t_interval(bad)
    with pytest.raises(ValueError, match="level"):
        stats.t_interval(vals, level=1.5)
    for bad in (["a", "b"], "0.3", None, [True, False]):
        with pytest.raises(TypeError, match="values"):
            stats.t_interval(bad)


def test_summarize_groups_by_whole_column_names_and_matches_t():
    df = sweep_like()
    q = stats.select(df, experiment="quantize")
    out = stats.summarize(q, ["method", "bits", "beta"], "test_ce")
    assert len(out) == 6 and (out["n"] == 4).all()
    assert list(out.columns) == ["method", "bits", "beta", "test_ce_mean", "test_ce_std", "test_ce_lo",
                                 "test_ce_hi", "n"]
    first = out.iloc[0]  # groups in order of first appearance: kmeans at 1 bit
    assert (first["method"], first["bits"]) == ("kmeans", 1)
    vals = stats.select(q, method="kmeans", bits=1)["test_ce"].to_numpy()
    lo, hi = sps.t.interval(0.95, 3, loc=vals.mean(), scale=sps.sem(vals))
    assert first["test_ce_lo"] == pytest.approx(lo) and first["test_ce_hi"] == pytest.approx(hi)
    # a string `by` is one column, not its letters
    base = stats.summarize(stats.select(df, experiment="baseline"), "method", "test_ce")
    assert list(base["method"]) == ["none"] and base["n"].tolist() == [4]
    # the whole frame in one group is refused because every seed has many rows in it
    with pytest.raises(ValueError, match=r"seed 0.*differ in.*(method|bits|beta)"):
        stats.summarize(df, [], "test_ce")


def test_summarize_refuses_ambiguous_and_bad_input():
    df = sweep_like()
    with pytest.raises(ValueError, match=r"has 2 rows for seed 0.*'beta'"):
        stats.summarize(stats.select(df, method="drhw"), ["method", "bits"], "test_ce")
    with pytest.raises(ValueError, match=r"unknown column.*'test_loss'"):
        stats.summarize(df, "method", "test_loss")
    with pytest.raises(ValueError, match=r"by: unknown column.*'m'"):
        stats.summarize(df, ["m", "e"], "test_ce")
    with pytest.raises(TypeError, match="numeric"):
        stats.summarize(df, "seed", "method")
    nan = df.copy()
    nan.loc[3, "test_ce"] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        stats.summarize(stats.select(nan, experiment="quantize"), ["method", "bits", "beta"], "test_ce")
    with pytest.raises(ValueError, match="no rows"):
        stats.summarize(stats.select(df, method="nothing"), "method", "test_ce")
    with pytest.raises(ValueError, match="both"):
        stats.summarize(df, ["seed", "test_ce"], "test_ce")
    single = stats.summarize(stats.select(df, experiment="baseline", seed=0), "method", "test_ce")
    assert single["n"].tolist() == [1] and math.isnan(single["test_ce_std"][0])


def test_paired_comparison_matches_ttest_and_refuses_ambiguity():
    df = sweep_like()
    a, b = dict(method="drhw", bits=2, beta=30.0), dict(method="kmeans", bits=2)
    res = stats.paired_comparison(df, a, b)
    va = stats.select(df, **a).sort_values("seed")["test_ce"].to_numpy()
    vb = stats.select(df, **b).sort_values("seed")["test_ce"].to_numpy()
    ref = sps.ttest_rel(va, vb)
    assert res["seeds"] == [0, 1, 2, 3] and res["diff"] == pytest.approx(list(va - vb))
    assert res["p"] == pytest.approx(ref.pvalue) and res["t"] == pytest.approx(ref.statistic)
    assert res["a_lower"] + res["b_lower"] == 4 and res["n"] == 4
    with pytest.raises(ValueError, match=r"side a .* 2 rows for seed 0.*'beta'"):
        stats.paired_comparison(df, dict(method="drhw", bits=2), b)
    with pytest.raises(ValueError, match="side b .* matches no row"):
        stats.paired_comparison(df, a, dict(method="uniform"))
    with pytest.raises(ValueError, match=r"different seeds: only a has \[0\]"):
        stats.paired_comparison(df[~((df.seed == 0) & (df.method == "kmeans"))], a, b)
    with pytest.raises(ValueError, match="unknown column"):
        stats.paired_comparison(df, a, b, metric="val_ce")
    with pytest.raises(TypeError, match="dict"):
        stats.paired_comparison(df, "drhw", b)


# ---------------------------------------------------------------------------------------------- bootstrap

def test_bootstrap_is_seeded_and_pairs_differences():
    rng = np.random.default_rng(0)
    a = rng.normal(1.0, 0.5, size=(5, 300))
    b = a - 0.1 + rng.normal(0, 0.05, size=a.shape)
    one = stats.bootstrap_interval(a, b, seed=3)
    assert one == stats.bootstrap_interval(a, b, seed=3)
    assert one == stats.bootstrap_interval(a - b, seed=3)
    assert one["lo"] < 0.1 < one["hi"] and one["mean"] == pytest.approx((a - b).mean())
    assert one["hi"] - one["lo"] < stats.bootstrap_interval(a, seed=3)["hi"] - stats.bootstrap_interval(a, seed=3)["lo"]
    assert stats.bootstrap_interval(a, b, seed=4) != one


@settings(max_examples=8, deadline=None)
@given(st.integers(0, 2**16), st.sampled_from([(6, 400), (12, 150)]), st.floats(0.2, 2.0))
def test_bootstrap_se_covers_seeds_and_images(seed, shape, ratio):
    """In an additive two-way design X[s, i] = a_s + b_i the mean's variance is var(a)/S + var(b)/N; the
    bootstrap over both factors must reproduce it (it would miss a term if it resampled only one)."""
    rng = np.random.default_rng(seed)
    n_s, n_i = shape
    a_s = rng.normal(0, ratio, n_s)
    b_i = rng.normal(0, 1.0, n_i)
    x = a_s[:, None] + b_i[None, :]
    target = math.sqrt(a_s.var() / n_s + b_i.var() / n_i)
    got = stats.bootstrap_interval(x, n_boot=3000, seed=1)
    assert got["se"] == pytest.approx(target, rel=0.12)
    only_images = math.sqrt(b_i.var() / n_i)
    assert got["se"] > only_images * 1.02  # the seed term is really in it


def test_bootstrap_single_seed_resamples_images_only_and_refuses_bad_input():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1, 500))
    got = stats.bootstrap_interval(x, n_boot=4000, seed=0)
    assert got["se"] == pytest.approx(x.std() / math.sqrt(500), rel=0.08) and got["n_seeds"] == 1
    for bad, match in ((np.zeros(10), "2-D"), (np.full((2, 3), np.nan), "non-finite"), (np.zeros((2, 1)), "2-D")):
        with pytest.raises(ValueError, match=match):
            stats.bootstrap_interval(bad)
    with pytest.raises(ValueError, match="same shape"):
        stats.bootstrap_interval(np.zeros((2, 5)), np.zeros((3, 5)))
    with pytest.raises(ValueError, match="n_boot"):
        stats.bootstrap_interval(np.zeros((2, 5)), n_boot=10)
    with pytest.raises(ValueError, match="seed"):
        stats.bootstrap_interval(np.zeros((2, 5)), seed=-1)


# ------------------------------------------------------------------------------- equivalence and verdicts

@pytest.mark.parametrize("lo, hi, word", [(-0.01, 0.01, "equivalent"), (0.004, 0.013, "equivalent"),
                                          (-0.05, -0.01, "better"), (0.01, 0.05, "worse"),
                                          (-0.03, 0.01, "inconclusive"), (-0.001, 0.03, "inconclusive")])
def test_verdict_words(lo, hi, word):
    assert stats.verdict(lo, hi, 0.02) == word


def test_verdict_depends_on_the_margin():
    assert stats.verdict(0.004, 0.013, 0.01) == "worse"
    assert stats.verdict(0.004, 0.013, 0.04) == "equivalent"
    for bad in (0, -1, float("inf"), True):
        with pytest.raises(ValueError, match="margin"):
            stats.verdict(0, 0.1, bad)
    with pytest.raises(ValueError, match="lo must not exceed"):
        stats.verdict(0.1, 0.0)


def test_holm_against_a_hand_computation():
    adj = stats.holm([0.01, 0.04, 0.03, 0.005])
    # sorted 0.005, 0.01, 0.03, 0.04 -> ×4, ×3, ×2, ×1 = 0.02, 0.03, 0.06, 0.04 -> monotone 0.02, 0.03, 0.06, 0.06
    np.testing.assert_allclose(adj, [0.03, 0.06, 0.06, 0.02])
    assert np.isnan(stats.holm([0.01, float("nan")])[1])
    with pytest.raises(ValueError):
        stats.holm([1.5])


def test_tost_matches_scipy_and_the_interval():
    from scipy import stats as st

    rng = np.random.default_rng(1)
    d = rng.normal(0.003, 0.004, 12)
    r = stats.tost(d, 0.02)
    assert r["p_lower"] == pytest.approx(st.ttest_1samp(d, -0.02, alternative="greater").pvalue)
    assert r["p"] == max(r["p_lower"], r["p_upper"]) < 0.05
    # TOST at α rejects iff the (1 − 2α) t-interval lies inside the margin
    t = stats.t_interval(d, 1 - 2 * 0.05)
    assert (r["p"] < 0.05) == (-0.02 < t["lo"] and t["hi"] < 0.02)
    assert stats.tost(d + 0.03, 0.02)["p"] > 0.5
    assert np.isnan(stats.tost([0.1], 0.02)["p"])


def test_interval_level():
    assert stats.interval_level(0.05, 1) == pytest.approx(0.9)
    assert stats.interval_level(0.05, 5) == pytest.approx(0.98)
    with pytest.raises(ValueError):
        stats.interval_level(0.05, 0)
    with pytest.raises(ValueError):
        stats.interval_level(0.7, 1)


def test_one_row_per_seed_names_the_differing_columns():
    ok = pd.DataFrame({"seed": [0, 1], "bits": [2, 2]})
    stats.one_row_per_seed(ok)
    with pytest.raises(ValueError, match=r"2 rows for seed 0; they differ in .*bits"):
        stats.one_row_per_seed(pd.DataFrame({"seed": [0, 0], "bits": [2, 3]}))
