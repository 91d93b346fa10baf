"""Choosing a setting on validation data, reporting it on the test set (chapter 9).

A sweep (:func:`poprisk.experiments.run_sweeps`) evaluates many settings — DRHW's β, the number of bits, the
pruning fraction — on the same networks. Reading the best one off the *test* loss and then reporting that
same test loss overstates the gain: the minimum of many noisy estimates is biased low (chapter 9's exercise
shows by how much). :func:`select_on_validation` makes the choice on a validation metric (by default the mean
validation cross-entropy across seeds, ``val_ce``) and returns the chosen setting with its rows, whose test
columns are then an honest report: the test set did not take part in the choice.

Two rules, both stated in the result: candidates are compared by the **mean across seeds** of the metric
(``per_seed=False``; every seed uses the one chosen setting), or every seed picks its own best
(``per_seed=True``); ties go to the first candidate in the order of the frame. Only validation metrics
(columns starting with ``val_``) may choose: a test or train column is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from poprisk import stats

__all__ = ["Selection", "select_on_validation"]


@dataclass(frozen=True)
class Selection:
    """What :func:`select_on_validation` chose.

    ``setting``: ``{column: value}`` of the chosen candidate (``per_seed=False``) or ``{seed: {column:
    value}}`` (``per_seed=True``). ``scores``: one row per candidate with the metric's across-seed mean
    (``{metric}_mean``), its per-candidate ``n`` and a ``chosen`` flag (``per_seed=False``), or one row per
    seed × candidate (``per_seed=True``). ``rows``: the chosen rows of the frame (one per seed, all columns,
    test columns included) — what a chapter reports.
    """

    setting: dict
    scores: pd.DataFrame
    rows: pd.DataFrame
    metric: str
    per_seed: bool


def select_on_validation(df: pd.DataFrame, choose, among: Mapping | None = None, *, metric: str = "val_ce",
                         mode: str = "min", per_seed: bool = False) -> Selection:
    """Pick the value(s) of the ``choose`` column(s) (e.g. ``"beta"``, ``"bits"``, ``"prune_ratio"`` or
    ``["bits", "beta"]``) among the rows matching ``among`` (conditions for :func:`poprisk.stats.select`, e.g.
    ``dict(experiment="quantize", method="drhw", bits=2, layers="all")``) that minimise (``mode="min"``) or
    maximise (``"max"``) the validation ``metric``.

    Every candidate must hold exactly one row per seed and all candidates the same seeds (refused otherwise,
    naming the clash: add the missing setting columns to ``among`` or ``choose``).
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    if among is not None and not isinstance(among, Mapping):
        raise TypeError(f"among must be a dict of column conditions, got {type(among).__name__}")
    if not isinstance(metric, str) or not metric.startswith("val_"):
        raise ValueError(f"metric must be a validation column (its name starts with 'val_'), got {metric!r}: "
                         "the test set only reports, it never chooses")
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
    if not isinstance(per_seed, bool):
        raise TypeError(f"per_seed must be True or False, got {per_seed!r}")
    choose = [choose] if isinstance(choose, str) else list(choose) if isinstance(choose, (list, tuple)) else choose
    if not isinstance(choose, list) or not choose or not all(isinstance(c, str) for c in choose):
        raise TypeError(f"choose must be a column name or a list of column names, got {choose!r}")
    unknown = [c for c in choose + [metric, "seed"] if c not in df.columns]
    if unknown:
        raise ValueError(f"unknown column(s) {unknown}; the frame has {list(df.columns)}")
    rows = stats.select(df, **dict(among or {}))
    if rows.empty:
        raise ValueError(f"no row matches among={dict(among or {})}")
    values = rows[metric]
    if values.dtype == bool or not pd.api.types.is_numeric_dtype(values) \
            or pd.api.types.is_complex_dtype(values):
        raise TypeError(f"metric column {metric!r} must hold real numbers, got dtype {values.dtype}")
    finite = np.isfinite(values.to_numpy(dtype=float, na_value=np.nan))
    if not finite.all():
        raise ValueError(f"metric column {metric!r} has {int((~finite).sum())} missing or non-finite value(s) "
                         "among the candidate rows: a choice between them would be arbitrary")
    if rows["seed"].isna().any():
        raise ValueError("the seed column has missing values among the candidate rows")
    groups = list(rows.groupby(choose, sort=False, dropna=False))
    seeds = None
    for key, part in groups:
        stats.one_row_per_seed(part, f"the candidate {dict(zip(choose, _tuple(key)))}", skip=(metric,))
        got = sorted(part["seed"].tolist())
        if seeds is None:
            seeds = got
        elif got != seeds:
            raise ValueError(f"the candidates cover different seeds ({seeds} vs {got} for "
                             f"{dict(zip(choose, _tuple(key)))}); filter the frame to common seeds first")
    stats.t_interval(rows[metric].to_numpy(dtype=float))  # refuses non-finite metric values
    better = (lambda a, b: a < b) if mode == "min" else (lambda a, b: a > b)
    if not per_seed:
        scores = pd.DataFrame([{**dict(zip(choose, _tuple(key))), f"{metric}_mean": float(part[metric].mean()),
                                "n": len(part)} for key, part in groups])
        best = 0
        for i in range(1, len(scores)):
            if better(scores[f"{metric}_mean"].iloc[i], scores[f"{metric}_mean"].iloc[best]):
                best = i
        scores["chosen"] = [i == best for i in range(len(scores))]
        setting = dict(zip(choose, _tuple(groups[best][0])))
        return Selection(setting, scores, groups[best][1].sort_values("seed"), metric, per_seed)
    chosen_rows, setting = [], {}
    for seed in seeds:
        mine = rows[rows["seed"] == seed]
        best = mine.index[0]
        for idx in mine.index[1:]:
            if better(mine.at[idx, metric], mine.at[best, metric]):
                best = idx
        chosen_rows.append(best)
        setting[seed] = {c: mine.at[best, c] for c in choose}
    scores = rows[["seed", *choose, metric]].assign(chosen=rows.index.isin(chosen_rows))
    return Selection(setting, scores.reset_index(drop=True), rows.loc[chosen_rows], metric, per_seed)


def _tuple(key) -> tuple:
    return key if isinstance(key, tuple) else (key,)
