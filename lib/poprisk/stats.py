"""Summaries, paired comparisons and intervals of sweep results (chapters 9 and 10).

A sweep result is a tidy :class:`pandas.DataFrame` (one row per seed × setting, :func:`poprisk.experiments.
run_sweeps`). This module turns it into the numbers a chapter reports, and says what randomness each interval
covers:

* :func:`t_interval` / :func:`summarize` — the **across-seed** Student-t interval
  ``mean ± t_{n−1, (1+level)/2} · s/√n`` of one value per seed (``s`` the sample standard deviation). It covers
  the randomness that differs between seeds — the training subsample, the initialisation, the SGD order —
  *with the test set held fixed*: every seed is scored on the same test images, so the test set's own sampling
  error is not in it. For absolute losses that error is often the larger one.
* :func:`paired_comparison` — the same interval for per-seed differences ``a − b`` of two settings evaluated on
  the same networks, with the paired t-test. Differences cancel most of the shared test-set error.
* :func:`bootstrap_interval` — a percentile bootstrap over **test images and seeds together**: each replicate
  resamples the seeds (with replacement) and, independently, the test images (with replacement, the same
  images for every seed, since all seeds share one test set), and recomputes the mean per-example loss (or
  the mean paired difference). It covers both the training randomness and the sampling of the test set from
  the population. Resampling both factors of a crossed design counts their interaction twice, so it errs on
  the wide side (Owen 2007, "the pigeonhole bootstrap"). Neither interval covers the luck of the one
  training pool all seeds draw from, nor a selection step made on the same data.

Verdicts (chapters 1, 9, 9b and 10). A loss difference ``d = a − b`` (lower is better) gets one of four
words from an interval ``[lo, hi]`` of level ``1 − 2α`` and an equivalence margin ``m > 0`` stated before the
data are seen (:func:`verdict`): **equivalent** when ``−m < lo`` and ``hi < m`` (the two one-sided tests of
TOST both reject at level ``α``: the difference is smaller than the margin either way), else **better** when
``hi < 0``, **worse** when ``lo > 0`` (the one-sided test of superiority or inferiority at level ``α``), else
**inconclusive**. With ``k`` settings compared, ``α`` is divided by ``k`` (Bonferroni) for the intervals
(:func:`interval_level`), and the TOST p-values of the across-seed t-test (:func:`tost`) are adjusted by
Holm's step-down rule (:func:`holm`).

Every helper refuses ambiguous input instead of guessing: a column name that is not in the frame, a string
``by`` (it means one column, never its letters), a group or a side that holds several rows for one seed
(the message names the seed and the columns in which those rows differ), and non-finite metric values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from poprisk import checks

__all__ = ["select", "t_interval", "summarize", "paired_comparison", "bootstrap_interval", "one_row_per_seed",
           "plain", "VERDICTS", "MARGIN", "holm", "tost", "verdict", "interval_level"]


# ---------------------------------------------------------------------------------------------- validation

def _frame(df, name: str = "df") -> pd.DataFrame:
    return checks.frame(df, name)


def _columns(value, name: str, df: pd.DataFrame, *, allow_empty: bool = False) -> list[str]:
    """A column name or a sequence of names, each present in ``df`` (a string is one column)."""
    cols = [value] if isinstance(value, str) else value
    if not isinstance(cols, (list, tuple)) or not all(isinstance(c, str) for c in cols):
        raise TypeError(f"{name} must be a column name or a list/tuple of column names, got {value!r}")
    cols = list(cols)
    if not cols and not allow_empty:
        raise ValueError(f"{name} must name at least one column")
    if len(set(cols)) != len(cols):
        raise ValueError(f"{name} names a column twice: {cols}")
    unknown = [c for c in cols if c not in df.columns]
    if unknown:
        raise ValueError(f"{name}: unknown column(s) {unknown}; the frame has {list(df.columns)}")
    return cols


def _level(level) -> float:
    return checks.real(level, "level", low=0.0, high=1.0, low_open=True, high_open=True)


def _finite_metric(df: pd.DataFrame, metric: str) -> np.ndarray:
    return checks.numeric_column(df, metric, "metric")


def _differing_columns(rows: pd.DataFrame, skip=()) -> list[str]:
    """Setting-like columns whose values differ among ``rows`` (for error messages)."""
    out = []
    for c in rows.columns:
        if c in skip:
            continue
        col = rows[c]
        if pd.api.types.is_float_dtype(col) and col.nunique(dropna=False) == len(rows) > 2:
            continue  # a measured number, not a setting
        if col.astype(str).nunique() > 1:
            out.append(c)
    return out[:8]


def plain(value):
    """A NumPy scalar as the Python scalar it holds (for tables and messages)."""
    return value.item() if isinstance(value, np.generic) else value


def one_row_per_seed(rows: pd.DataFrame, what: str = "rows", skip=()) -> None:
    """Refuse (``ValueError``) ``rows`` that hold more than one row for a seed, naming the seed and the
    columns in which its rows differ (``skip``: columns not to name, e.g. the metric)."""
    checks.frame(rows, "rows")
    checks.text(what, "what")
    if isinstance(skip, str) or not isinstance(skip, (list, tuple, set, frozenset)):
        raise TypeError(f"skip must be a list or tuple of column names, got {skip!r}")
    if "seed" not in rows.columns:
        return
    if rows["seed"].isna().any():
        raise ValueError(f"{what}: the seed column has missing values (NaN); every row needs its seed")
    dup = rows["seed"][rows["seed"].duplicated(keep=False)]
    if len(dup):
        seed = plain(dup.iloc[0])
        clash = rows[rows["seed"] == seed]
        raise ValueError(f"{what} has {len(clash)} rows for seed {seed!r}; they differ in "
                         f"{_differing_columns(clash, skip)} — add those columns to the conditions "
                         "(or to `by`) so that each seed has one row")


# ------------------------------------------------------------------------------------------------- select

def select(df: pd.DataFrame, **conditions) -> pd.DataFrame:
    """The rows of ``df`` matching every condition ``column=value``.

    ``value`` may be a scalar (equality; ``None`` or NaN match a missing value, e.g. ``beta=None`` for the
    methods without a β), a list/tuple/set (membership) or a callable ``value(column) -> bool mask``.
    An unknown column raises ``ValueError`` naming it. The index of ``df`` is kept.
    """
    df = _frame(df)
    _columns(list(conditions), "conditions", df, allow_empty=True)
    mask = np.ones(len(df), bool)
    for col, value in conditions.items():
        series = df[col]
        if callable(value):
            m = np.asarray(value(series), dtype=bool)
            if m.shape != (len(df),):
                raise ValueError(f"the predicate for {col!r} must return one bool per row")
        elif isinstance(value, (list, tuple, set, frozenset)):
            m = series.isin(list(value)).to_numpy()
        elif value is None or (isinstance(value, float) and math.isnan(value)):
            m = series.isna().to_numpy()
        else:
            m = (series == value).fillna(False).to_numpy(dtype=bool)
        mask &= m
    return df[mask]


# ---------------------------------------------------------------------------------------------- intervals

def _t_quantile(df, level: float):
    from scipy import stats

    return stats.t.ppf(0.5 + level / 2, df)


def t_interval(values, level: float = 0.95) -> dict:
    """Mean, sample standard deviation and the Student-t interval ``mean ± t_{n−1} · std/√n`` of ``values``
    (one per seed; see the module docstring for what it covers). Returns ``dict(mean, std, lo, hi, n)``;
    with one value ``std``, ``lo`` and ``hi`` are NaN (no spread to estimate)."""
    level = _level(level)
    arr = checks.reals(values, "values", ndim=1, min_size=1)
    mean = float(arr.mean())
    if arr.size == 1:
        return dict(mean=mean, std=math.nan, lo=math.nan, hi=math.nan, n=1)
    std = float(arr.std(ddof=1))
    half = float(_t_quantile(arr.size - 1, level)) * std / math.sqrt(arr.size)
    return dict(mean=mean, std=std, lo=mean - half, hi=mean + half, n=int(arr.size))


def summarize(df: pd.DataFrame, by, metrics, level: float = 0.95) -> pd.DataFrame:
    """One row per group of the ``by`` columns (groups in order of first appearance; missing values form
    their own group) with, for each metric, ``{metric}_mean``, ``_std``, ``_lo``, ``_hi`` (the across-seed
    Student-t interval of :func:`t_interval`) and the group size ``n``.

    ``by`` and ``metrics`` are a column name or a list of names (``by="method"`` is the column ``method``).
    When ``df`` has a ``seed`` column, every group must hold at most one row per seed — a group that mixes
    several settings of one seed (e.g. grouping DRHW rows by ``method`` only, across β) is refused with a
    message naming the seed and the columns that differ.
    """
    df = _frame(df)
    if df.empty:
        raise ValueError("summarize: the frame df has no rows (check the filter that made it)")
    by = _columns(by, "by", df, allow_empty=True)
    metrics = _columns(metrics, "metrics", df)
    clash = sorted(set(by) & set(metrics))
    if clash:
        raise ValueError(f"columns {clash} are both in `by` and in `metrics`")
    level = _level(level)
    values = {m: _finite_metric(df, m) for m in metrics}
    position = pd.Series(np.arange(len(df)), index=df.index)
    keys = [df[b] for b in by] if by else np.zeros(len(df), int)
    records = []
    for key, part in position.groupby(keys, sort=False, dropna=False):
        rows = df.iloc[part.to_numpy()]
        setting = {b: plain(rows[b].iloc[0]) for b in by}
        one_row_per_seed(rows, f"summarize: the group {setting}", skip=metrics)
        rec = dict(setting)
        for m in metrics:
            s = t_interval(values[m][part.to_numpy()], level)
            rec.update({f"{m}_mean": s["mean"], f"{m}_std": s["std"], f"{m}_lo": s["lo"], f"{m}_hi": s["hi"]})
        rec["n"] = len(rows)
        records.append(rec)
    return pd.DataFrame.from_records(records, columns=[*by, *(f"{m}_{x}" for m in metrics
                                                              for x in ("mean", "std", "lo", "hi")), "n"])


def paired_comparison(df: pd.DataFrame, a: Mapping, b: Mapping, metric: str = "test_ce",
                      level: float = 0.95) -> dict:
    """Paired comparison across seeds of two settings ``a`` and ``b`` of ``df`` (conditions for
    :func:`select`, e.g. ``dict(method="drhw", bits=2, beta=30.0)``).

    Each side must match exactly one row per seed (a side matching several rows of one seed is refused,
    naming the columns in which they differ), and both sides must cover the same seeds. Returns a plain
    dict: ``seeds``, the per-seed values ``a`` and ``b``, their differences ``diff = a − b``, its ``mean``,
    ``std`` and across-seed Student-t interval ``lo``/``hi`` at ``level``, the paired t statistic ``t`` and
    two-sided p-value ``p`` (NaN with one seed or identical differences), ``n``, and how many seeds favour
    each side (``a_lower``, ``b_lower``: lower is better for losses).
    """
    from scipy import stats

    df = _frame(df)
    for side, cond in (("a", a), ("b", b)):
        if not isinstance(cond, Mapping):
            raise TypeError(f"{side} must be a dict of column conditions, got {type(cond).__name__}")
    checks.text(metric, "metric")
    if df.empty:
        raise ValueError("paired_comparison: the frame df has no rows")
    _columns(metric, "metric", df)
    if "seed" not in df.columns:
        raise ValueError("paired_comparison needs a 'seed' column to pair the rows")
    level = _level(level)
    sides = {}
    for side, cond in (("a", a), ("b", b)):
        rows = select(df, **dict(cond))
        if rows.empty:
            raise ValueError(f"side {side} = {dict(cond)} matches no row")
        one_row_per_seed(rows, f"side {side} = {dict(cond)}", skip=(metric,))
        sides[side] = dict(zip(rows["seed"].tolist(), _finite_metric(rows, metric)))
    only_a, only_b = sorted(set(sides["a"]) - set(sides["b"])), sorted(set(sides["b"]) - set(sides["a"]))
    if only_a or only_b:
        raise ValueError(f"the sides cover different seeds: only a has {only_a}, only b has {only_b}; "
                         "filter the frame to the common seeds first")
    seeds = sorted(sides["a"])
    va = np.array([sides["a"][s] for s in seeds])
    vb = np.array([sides["b"][s] for s in seeds])
    diff = va - vb
    s = t_interval(diff, level)
    if len(seeds) > 1 and diff.std(ddof=1) > 0:
        res = stats.ttest_rel(va, vb)
        t, p = float(res.statistic), float(res.pvalue)
    else:
        t, p = math.nan, math.nan
    return {"seeds": seeds, "a": va.tolist(), "b": vb.tolist(), "diff": diff.tolist(), "mean": s["mean"],
            "std": s["std"], "lo": s["lo"], "hi": s["hi"], "t": t, "p": p, "n": len(seeds),
            "level": level, "metric": metric, "a_lower": int((diff < 0).sum()),
            "b_lower": int((diff > 0).sum())}


def _per_example(x, name: str) -> np.ndarray:
    arr = checks.reals(x, name, ndim=2)
    if arr.shape[0] < 1 or arr.shape[1] < 2:
        raise ValueError(f"{name} must be a 2-D array (seeds × test images) with at least 2 images, "
                         f"got shape {arr.shape}")
    return arr


def bootstrap_interval(a, b=None, *, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> dict:
    """Percentile bootstrap interval over test images **and** seeds of the mean per-example loss ``a`` —
    or, given ``b``, of the mean paired difference ``a − b`` (same networks' seeds and same images).

    ``a`` (and ``b``) are arrays shaped ``(n_seeds, n_images)``: row ``s`` holds seed ``s``'s per-example test
    losses, column ``i`` the same test image for every seed (e.g.
    :meth:`poprisk.experiments.PerExample.matrix`). Replicate ``r`` draws ``n_seeds`` seeds and ``n_images``
    images with replacement (independently; the same images for every drawn seed) and computes the mean of
    the resampled ``seeds × images`` block — via counts: ``c_seedᵀ X c_image / (n_seeds n_images)``. What it
    covers is in the module docstring; with one seed only the test images are resampled.

    Returns ``dict(mean, lo, hi, se, n_seeds, n_images, n_boot, level)``: the plain mean, the
    ``(1 ± level)/2`` percentiles of the replicates and their standard deviation. Seeded by ``seed``
    (``numpy.random.default_rng``), so the same call gives the same interval.
    """
    x = _per_example(a, "a")
    if b is not None:
        xb = _per_example(b, "b")
        if xb.shape != x.shape:
            raise ValueError(f"a and b must have the same shape (seeds × images), got {x.shape} and {xb.shape}")
        x = x - xb
    n_boot = checks.integer(n_boot, "n_boot", low=100, high=10**7)
    seed = checks.seed(seed)
    level = _level(level)
    rng = np.random.default_rng(int(seed))
    n_s, n_i = x.shape
    reps = np.empty(int(n_boot))
    chunk = max(1, 2**22 // n_i)  # bound the (chunk × n_images) count matrix to ~32 MB
    for start in range(0, int(n_boot), chunk):
        m = min(chunk, int(n_boot) - start)
        c_img = rng.multinomial(n_i, np.full(n_i, 1.0 / n_i), size=m).astype(np.float64)
        c_seed = (rng.multinomial(n_s, np.full(n_s, 1.0 / n_s), size=m).astype(np.float64) if n_s > 1
                  else np.ones((m, 1)))
        reps[start:start + m] = np.einsum("rs,rs->r", c_seed, c_img @ x.T) / (n_s * n_i)
    alpha = (1 - level) / 2
    lo, hi = np.quantile(reps, [alpha, 1 - alpha])
    return dict(mean=float(x.mean()), lo=float(lo), hi=float(hi), se=float(reps.std(ddof=1)),
                n_seeds=int(n_s), n_images=int(n_i), n_boot=int(n_boot), level=level)


# ------------------------------------------------------------------------------- equivalence and verdicts

#: The four words a verdict may use (module docstring).
VERDICTS = ("better", "worse", "equivalent", "inconclusive")
#: The book's equivalence margin in nats of test cross-entropy, fixed before chapter 9b's Fashion-MNIST run
#: was made (chapters 1 and 9 had been run before it was set): about a fifth of the 0.09–0.13 nats a
#: validation temperature buys, the smallest change the book would call a gain or a loss worth reporting.
MARGIN = 0.02


def _alpha(alpha) -> float:
    return checks.real(alpha, "alpha", low=0.0, high=0.5, low_open=True, high_open=True)


def _margin(margin) -> float:
    return checks.real(margin, "margin (nats)", low=0.0, low_open=True)


def interval_level(alpha: float = 0.05, n_tests: int = 1) -> float:
    """The level ``1 − 2α/k`` of the interval behind a verdict among ``k = n_tests`` settings (Bonferroni):
    its ends are the one-sided tests at ``α/k`` that TOST and the superiority test need."""
    alpha = _alpha(alpha)
    n_tests = checks.integer(n_tests, "n_tests", low=1)
    return 1.0 - 2.0 * alpha / n_tests


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjustment of ``k`` p-values: sorted ascending, ``p_(i) · (k − i + 1)``, made
    non-decreasing and capped at 1, returned in the input order. It controls the family-wise error rate like
    Bonferroni and is never less powerful. NaN stays NaN (and counts in ``k``)."""
    p = checks.reals(pvalues, "pvalues", ndim=1, finite=False, min_size=1)
    if np.isinf(p).any() or ((p < 0) | (p > 1)).any():
        raise ValueError(f"pvalues must lie in [0, 1] (or be NaN), got {p[np.isinf(p) | (p < 0) | (p > 1)][:5]}")
    k = p.size
    order = np.argsort(np.where(np.isfinite(p), p, np.inf), kind="stable")
    adj = np.full(k, np.nan)
    running = 0.0
    for rank, idx in enumerate(order):
        if not np.isfinite(p[idx]):
            continue
        running = max(running, min(1.0, p[idx] * (k - rank)))
        adj[idx] = running
    return adj


def tost(diff, margin: float = MARGIN) -> dict:
    """Two one-sided t-tests (TOST, Schuirmann 1987) that the mean of the per-seed differences ``diff`` lies
    inside ``(−margin, margin)``: ``p_lower`` tests H0 ``mean ≤ −margin``, ``p_upper`` H0 ``mean ≥ margin``
    (``scipy.stats.ttest_1samp``), ``p = max`` of the two (equivalence at level α iff ``p < α``). Also the
    one-sided p-values of ``mean < 0`` (``p_better``) and ``mean > 0`` (``p_worse``). NaN with fewer than two
    values or no spread."""
    from scipy import stats as st

    margin = _margin(margin)
    d = checks.reals(diff, "diff", ndim=1)
    out = dict(mean=float(d.mean()) if d.size else math.nan, n=int(d.size), margin=margin)
    if d.size < 2 or d.std(ddof=1) == 0:
        return {**out, "p_lower": math.nan, "p_upper": math.nan, "p": math.nan, "p_better": math.nan,
                "p_worse": math.nan}
    p_lower = float(st.ttest_1samp(d, -margin, alternative="greater").pvalue)
    p_upper = float(st.ttest_1samp(d, margin, alternative="less").pvalue)
    return {**out, "p_lower": p_lower, "p_upper": p_upper, "p": max(p_lower, p_upper),
            "p_better": float(st.ttest_1samp(d, 0.0, alternative="less").pvalue),
            "p_worse": float(st.ttest_1samp(d, 0.0, alternative="greater").pvalue)}


def verdict(lo: float, hi: float, margin: float = MARGIN) -> str:
    """One of :data:`VERDICTS` for a loss difference whose ``1 − 2α`` interval is ``[lo, hi]`` (module
    docstring): ``"equivalent"`` inside ``(−margin, margin)``, else ``"better"`` below 0, ``"worse"`` above 0,
    else ``"inconclusive"``."""
    margin = _margin(margin)
    lo, hi = checks.real(lo, "lo"), checks.real(hi, "hi")
    if lo > hi:
        raise ValueError(f"lo must not exceed hi, got [{lo}, {hi}]")
    if -margin < lo and hi < margin:
        return "equivalent"
    if hi < 0:
        return "better"
    if lo > 0:
        return "worse"
    return "inconclusive"
