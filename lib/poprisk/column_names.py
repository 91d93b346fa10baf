"""Reader names for the code identifiers that result tables carry as column names (every chapter's tables).

A chapter computes with short identifiers (``train_ce``, ``gap_change``); a reader should see
``train CE (nats)``. :func:`reader_name` is the one place that turns the first into the second, so
:func:`poprisk.tables.show` renames every column it puts on the page and no chapter keeps its own list.
A name is the quantity, a modifier for the summary statistic (``_mean``, ``_lo``, ``_hi``) or the
calibrated variant (``_cal``), and the unit last in parentheses.
"""

from __future__ import annotations

import re

__all__ = ["READER_NAMES", "is_code_identifier", "reader_name"]

# quantity -> (reader name, unit or None); the modifiers below compose with every entry. The one-word
# entries are used only under a modifier (``gap_mean``): alone, a plain word is already a reader's word.
READER_NAMES: dict[str, tuple[str, str | None]] = {
    "train_ce": ("train CE", "nats"),
    "val_ce": ("val. CE", "nats"),
    "test_ce": ("test CE", "nats"),
    "train_acc": ("train acc.", None),
    "test_acc": ("test acc.", None),
    "train_ece": ("train ECE", None),
    "test_ece": ("test ECE", None),
    "train_err": ("train error", "0–1"),
    "test_err": ("test error", "0–1"),
    "gap_01": ("0–1 gap", None),
    "gap_ce": ("CE gap", "nats"),
    "gap": ("CE gap", "nats"),
    "test_change": ("test-CE change", "nats"),
    "gap_change": ("gap change", "nats"),
    "temperature_alone": ("temperature alone", "nats"),
    "beyond_calibration": ("beyond calibration", "nats"),
    "miscalibration_left": ("miscalibration left", "nats"),
    "distinct_images": ("distinct images", None),
    "logit_norm": ("test-logit norm", None),
    "temperature": ("temperature T", None),
    "ratio": ("compression ratio", None),
    "prune_ratio": ("pruned share", None),
    "code_bits": ("code length", "bits"),
    "H_bound_nats": ("H(Ŵ) bound", "nats"),
    "mi_bound_01": ("MI bound on the 0–1 gap", None),
    "orders_apart": ("log₁₀(bound / gap)", None),
    "h_from": ("h computed from", None),
    "label_agreement": ("label agreement", None),
    "d_sub": ("subspace dim.", None),
}

# suffix -> how it changes the quantity's name
_MODIFIERS = (("_mean", "{}"), ("_lo", "{}, 95% low"), ("_hi", "{}, 95% high"), ("_cal", "calibrated {}"))

_IDENTIFIER = re.compile(r"[A-Za-z0-9]+(?:_[A-Za-z0-9]+)+")


def is_code_identifier(name: str) -> bool:
    """Whether ``name`` reads as a snake_case identifier (``test_ce``, ``gap_01``), not as notation with a
    subscript (``D_q``, ``L_S (0–1)``, ``σ_w²``): one word of ASCII letters and digits joined by ``_``,
    some part at least two characters long."""
    return bool(_IDENTIFIER.fullmatch(name)) and any(len(part) > 1 for part in name.split("_"))


def _parts(name: str) -> tuple[str, str | None] | None:
    if name in READER_NAMES:
        return READER_NAMES[name]
    for suffix, form in _MODIFIERS:
        if name.endswith(suffix) and (inner := _parts(name[: -len(suffix)])) is not None:
            return form.format(inner[0]), inner[1]
    return None


def reader_name(name: str) -> str:
    """The reader's column header for ``name``: ``"test_ce_cal_mean"`` → ``"calibrated test CE (nats)"``.

    A known identifier (:data:`READER_NAMES`, with the ``_mean``/``_lo``/``_hi``/``_cal`` modifiers) gets its
    name and unit; any other snake_case identifier has its underscores read as spaces, so that no code
    identifier reaches the page; every other header is returned unchanged.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a string, got {type(name).__name__}")
    if not is_code_identifier(name):
        return name  # a plain word ("gap", "ratio") may mean different things in different tables
    parts = _parts(name)
    if parts is None:
        return name.replace("_", " ")
    label, unit = parts
    return f"{label} ({unit})" if unit else label
