"""Unstructured weight pruning: by magnitude and by curvature (chapters 8 and 9).

Pruning sets a fraction ``ratio`` of the weights of every Linear/Conv layer to zero (biases are never touched)
and keeps the rest unchanged. Which weights go is decided by a *saliency* — the smallest saliencies are pruned:

* :func:`magnitude_prune` — saliency ``|w|`` :cite:`han2015learning`;
* :func:`curvature_prune` — Optimal Brain Damage :cite:`lecun1990optimal`: the quadratic model of the loss
  increase caused by zeroing weight ``j`` alone at a minimum is ``δL_j ≈ ½ h_j w_j²`` with ``h_j`` the Hessian
  diagonal (:func:`poprisk.curvature.hessian_diag`), so the saliency is ``h_j w_j² / 2``.

``scope="global"`` ranks all weights of all layers together (one threshold); ``scope="layer"`` prunes the same
fraction in every layer. In both cases exactly ``round(ratio · n)`` weights are pruned (per layer, or in total),
ties broken by position, so the result is deterministic. Each function returns the pruned **copy** of the
model (the original is not modified) and a :class:`PruneReport`.

Bad input raises before any work, naming the argument: ``TypeError`` for a wrong kind (a model that is not an
``nn.Module``, a ratio that is a string or a bool, a per-layer dict that is not a dict), ``ValueError`` for a
wrong value (a ratio outside ``[0, 1]``, an unknown scope, a per-layer entry that is missing, not of its
weight's exact shape, non-finite, or negative for a curvature; a model with non-finite weights). Per-layer dicts
are checked by :func:`poprisk.quantize.check_importances`, the library's one check for them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import nn

from poprisk import checks
from poprisk.models import compressible_layers
from poprisk.quantize import check_importances

SCOPES = ("global", "layer")


@dataclass(frozen=True)
class LayerPruneReport:
    """What pruning did to one layer."""

    name: str
    n_weights: int
    n_kept: int

    @property
    def kept_fraction(self) -> float:
        return self.n_kept / self.n_weights


@dataclass(frozen=True)
class PruneReport:
    """Per-layer kept fractions and the boolean masks (``True`` = kept) of a pruning."""

    layers: list[LayerPruneReport]
    masks: dict[str, torch.Tensor] = field(repr=False)

    @property
    def kept_fraction(self) -> float:
        """Fraction of all prunable weights that were kept."""
        return sum(r.n_kept for r in self.layers) / sum(r.n_weights for r in self.layers)

    @property
    def per_layer(self) -> dict[str, float]:
        """``{layer name: kept fraction}``."""
        return {r.name: r.kept_fraction for r in self.layers}


def _check_ratio(ratio) -> float:
    """The fraction of weights pruned: a real number in [0, 1]."""
    return checks.real(ratio, "ratio", low=0.0, high=1.0)


def _check_scope(scope) -> str:
    if not isinstance(scope, str) or scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
    return scope


def _layers(model) -> list:
    """The compressible layers of ``model``, whose weights must be finite (a NaN weight would be ranked and kept)."""
    layers = compressible_layers(model)
    bad = [name for name, m in layers if not torch.isfinite(m.weight.detach()).all()]
    if bad:
        raise ValueError(f"model has non-finite weights in layers {bad}")
    return layers


def _smallest_mask(saliency: torch.Tensor, n_prune: int) -> torch.Tensor:
    """Boolean keep-mask of a flat saliency vector with its ``n_prune`` smallest entries removed (stable ties)."""
    keep = torch.ones(saliency.numel(), dtype=torch.bool, device=saliency.device)
    if n_prune > 0:
        order = torch.sort(saliency, stable=True).indices
        keep[order[:n_prune]] = False
    return keep


def prune_by_saliency(model: nn.Module, ratio: float, saliency: dict, *, scope: str = "global"):
    """Zero the ``ratio`` fraction of weights with the smallest ``saliency`` (``{layer: tensor like weight}``).

    The building block of :func:`magnitude_prune` and :func:`curvature_prune`; returns
    ``(pruned_copy, PruneReport)``.
    """
    ratio = _check_ratio(ratio)
    scope = _check_scope(scope)
    layers = _layers(model)
    flat = {name: torch.from_numpy(a.reshape(-1))
            for name, a in check_importances(saliency, model, name="saliency", sign="any").items()}
    masks = {}
    if scope == "global":
        allsal = torch.cat([flat[name] for name, _ in layers])
        keep = _smallest_mask(allsal, round(ratio * allsal.numel()))
        start = 0
        for name, m in layers:
            count = m.weight.numel()
            masks[name] = keep[start:start + count]
            start += count
    else:
        for name, m in layers:
            masks[name] = _smallest_mask(flat[name], round(ratio * m.weight.numel()))
    out = copy.deepcopy(model)
    modules = dict(out.named_modules())
    reports, shaped = [], {}
    for name, m in layers:
        w = modules[name].weight
        mask = masks[name].reshape(w.shape).to(w.device)
        with torch.no_grad():
            w.mul_(mask.to(w.dtype))
        shaped[name] = mask
        reports.append(LayerPruneReport(name=name, n_weights=w.numel(), n_kept=int(mask.sum())))
    return out, PruneReport(reports, shaped)


def magnitude_prune(model: nn.Module, ratio: float, *, scope: str = "global"):
    """Prune the ``ratio`` fraction of Linear/Conv weights with the smallest ``|w|`` (biases untouched).

    Returns ``(pruned_copy, PruneReport)``; ``model`` itself is not modified."""
    ratio, scope = _check_ratio(ratio), _check_scope(scope)
    saliency = {name: m.weight.detach().abs() for name, m in _layers(model)}
    return prune_by_saliency(model, ratio, saliency, scope=scope)


def curvature_prune(model: nn.Module, ratio: float, h: dict, *, scope: str = "global"):
    """Optimal-Brain-Damage pruning: remove the weights with the smallest saliency ``h_j w_j² / 2``.

    ``h`` is a non-negative curvature estimate ``{layer name: tensor like weight}`` — typically
    ``poprisk.curvature.hessian_diag(model, loss_fn, data)`` (the GGN diagonal); clip exact/Hutchinson estimates
    with :func:`poprisk.curvature.positive` first. With ``h ≡ 1`` this is :func:`magnitude_prune`.
    Returns ``(pruned_copy, PruneReport)``; ``model`` itself is not modified.
    """
    ratio, scope = _check_ratio(ratio), _check_scope(scope)
    layers = _layers(model)
    try:
        curvature = check_importances(h, model, name="h", sign="nonnegative")
    except ValueError as exc:
        raise ValueError(f"{exc} (clip a Hessian estimate first: poprisk.curvature.positive)") from None
    saliency = {name: 0.5 * torch.from_numpy(curvature[name]) * m.weight.detach().cpu().double().square()
                for name, m in layers}
    return prune_by_saliency(model, ratio, saliency, scope=scope)
