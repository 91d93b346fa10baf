"""What is measured on one network of a sweep (:func:`measure`: the metrics of a row and its per-example
test losses) and the per-example losses of a whole sweep (:class:`PerExample`, for the bootstrap intervals
of :mod:`poprisk.stats`); chapter 9."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from poprisk import calibration, checks, data, stats, train

#: The per-example test losses :class:`PerExample` keeps for each row.
PER_EXAMPLE_KINDS = ("test_ce", "test_ce_cal", "test_ce_fixed")


def measure(model: nn.Module, split: data.Split, *, fixed_temperature: float, bins: int = 15):
    """The metrics of one network (a row of the sweep table, see the module docstring) and its per-example
    test losses ``{kind: float64 array}`` for :data:`PER_EXAMPLE_KINDS`. ``T`` is fitted on the validation
    logits only; the test set is only scored."""
    if not isinstance(split, data.Split) or split.x_val is None:
        raise ValueError("measure needs a poprisk.data.Split with a validation set (prepare_split)")
    fixed_temperature = checks.real(fixed_temperature, "fixed_temperature", low=calibration.T_MIN,
                                    high=calibration.T_MAX)
    parts = {"train": (split.x_train, split.y_train), "val": (split.x_val, split.y_val),
             "test": (split.x_test, split.y_test)}
    logits, labels = {}, {}
    for part, (x, y) in parts.items():
        z = train.predict(model, x)
        if not torch.isfinite(z).all():
            raise ValueError(f"the network's {part} outputs are not finite (NaN or inf): its weights are broken")
        logits[part], labels[part] = z, y.detach().cpu()
    T = calibration.fit_temperature(logits["val"], labels["val"])
    row, per = {}, {}
    for suffix, temp in (("", 1.0), ("_cal", T), ("_fixed", fixed_temperature)):
        for part in parts:
            ce = calibration.per_example_ce(logits[part], labels[part], temp)
            row[f"{part}_ce{suffix}"] = float(ce.mean())
            if part == "test":
                per[f"test_ce{suffix}"] = ce
        row[f"gap{suffix}"] = row[f"test_ce{suffix}"] - row[f"train_ce{suffix}"]
        row[f"test_ece{suffix}"] = calibration.expected_calibration_error(
            calibration.temperature_scale(logits["test"], temp), labels["test"], bins)
    for part in parts:
        row[f"{part}_acc"] = float((logits[part].argmax(1) == labels[part]).double().mean())
    row["temperature"] = T
    row["logit_norm"] = float(logits["test"].double().norm(dim=1).mean())
    return row, per


# ---------------------------------------------------------------------------------------------------- sweeps

#: Setting columns of a sweep table, in order (then the metrics of :func:`measure`, ``ratio``,

@dataclass(frozen=True)
class PerExample:
    """Per-example test losses of every row of a sweep table, keyed by the table's ``row`` column.

    ``losses[kind]`` is a float64 array ``(n_rows, n_test)`` for each kind of :data:`PER_EXAMPLE_KINDS`
    (raw, calibrated on validation, fixed temperature); column ``i`` is the same test image in every row
    (all seeds share the test set). ``seeds[r]`` is row ``r``'s seed.
    """

    losses: dict
    seeds: np.ndarray

    def matrix(self, rows: pd.DataFrame, kind: str = "test_ce", seeds=None) -> np.ndarray:
        """The ``(len(seeds), n_test)`` per-example losses of ``rows`` (one row per seed; ``seeds`` default:
        the sorted seeds of ``rows``), in the order of ``seeds`` — the input of
        :func:`poprisk.stats.bootstrap_interval`. Pass the same ``seeds`` for both sides of a comparison."""
        if kind not in self.losses:
            raise ValueError(f"kind must be one of {tuple(self.losses)}, got {kind!r}")
        if not isinstance(rows, pd.DataFrame) or not {"row", "seed"} <= set(rows.columns):
            raise TypeError("rows must be a DataFrame of sweep rows (with the 'row' and 'seed' columns)")
        if rows.empty:
            raise ValueError("rows is empty (check the filter that made it)")
        stats.one_row_per_seed(rows, "rows", skip=("row",))
        by_seed = dict(zip(rows["seed"].tolist(), rows["row"].tolist()))
        seeds = sorted(by_seed) if seeds is None else list(seeds)
        missing = [s for s in seeds if s not in by_seed]
        if missing:
            raise ValueError(f"rows have no row for seed(s) {missing}")
        index = np.array([by_seed[s] for s in seeds])
        if index.min() < 0 or index.max() >= len(self.seeds) or (self.seeds[index] != np.array(seeds)).any():
            raise ValueError("rows do not come from the sweep these per-example losses belong to")
        return self.losses[kind][index]

    def bootstrap(self, rows: pd.DataFrame, by, kind: str = "test_ce", *, against: pd.DataFrame | None = None,
                  against_kind: str | None = None, level: float = 0.95, n_boot: int = 2000,
                  seed: int = 0) -> pd.DataFrame:
        """One row per group of the ``by`` columns of ``rows`` (rows of this sweep) with the bootstrap interval
        over test images and seeds (:func:`poprisk.stats.bootstrap_interval`) of the group's mean ``kind``
        loss — or, given ``against`` (reference rows of the same sweep, one per seed, e.g.
        ``stats.select(df, experiment="baseline")``), of the paired difference ``kind − against_kind``
        (default: the same kind) on the same seeds and images. Columns: the ``by`` columns, ``mean``, ``lo``,
        ``hi``, ``se``, ``n_seeds``. Each group must hold one row per seed (refused otherwise, naming the
        columns in which its rows differ)."""
        if not isinstance(rows, pd.DataFrame) or rows.empty:
            raise ValueError("rows must be a non-empty DataFrame of sweep rows")
        by = [by] if isinstance(by, str) else list(by)
        unknown = [c for c in by if c not in rows.columns]
        if unknown:
            raise ValueError(f"by: unknown column(s) {unknown}; the frame has {list(rows.columns)}")
        records = []
        position = pd.Series(np.arange(len(rows)), index=rows.index)
        keys = [rows[b] for b in by] if by else np.zeros(len(rows), int)
        for _, part in position.groupby(keys, sort=False, dropna=False):
            group = rows.iloc[part.to_numpy()]
            stats.one_row_per_seed(group, f"the group {({c: group[c].iloc[0] for c in by})}", skip=("row",))
            seeds = sorted(group["seed"].tolist())
            a = self.matrix(group, kind, seeds)
            b = None if against is None else self.matrix(against, against_kind or kind, seeds)
            res = stats.bootstrap_interval(a, b, n_boot=n_boot, level=level, seed=seed)
            records.append({**{c: stats.plain(group[c].iloc[0]) for c in by}, "mean": res["mean"],
                            "lo": res["lo"], "hi": res["hi"], "se": res["se"], "n_seeds": res["n_seeds"]})
        return pd.DataFrame.from_records(records, columns=[*by, "mean", "lo", "hi", "se", "n_seeds"])

