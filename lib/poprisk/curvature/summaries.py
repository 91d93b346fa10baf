"""Per-layer curvature maps as numbers (chapters 8, 9): normalising, clipping, flattening, rank correlation,
and splitting a flat vector by layer."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from poprisk import checks
from poprisk.curvature.plumbing import _check_h
from poprisk.models import compressible_layers


# ------------------------------------------------------------------------------------------------- helpers
def normalize(h: dict) -> dict:
    """Rescale every layer of a non-negative estimate to mean 1 (the authors' normalisation); an all-zero layer
    becomes all ones. Apply :func:`positive` first to an estimate that can be negative."""
    _check_h(h)
    out = {}
    for key, t in h.items():
        if (t < 0).any():
            raise ValueError(f"h[{key!r}] has negative entries; normalize needs non-negative importances "
                             "(apply positive() first)")
        t = t if t.is_floating_point() else t.to(torch.get_default_dtype())
        mean = t.mean()
        out[key] = t / mean if mean != 0 else torch.ones_like(t)
    return out


def positive(h: dict, floor: float = 1e-6) -> dict:
    """Clip a curvature estimate to strictly positive importances, layer by layer.

    Entries below ``floor · mean(|h_layer|)`` (negative ones included) are raised to that value, with
    ``0 < floor < 1``; an identically zero layer becomes all ones (nothing distinguishes its weights). Use it on
    ``"exact"`` and ``"hutchinson"`` estimates — whose negative entries mean *the loss is locally concave along
    that weight*, which a quadratic importance cannot express — before Hessian-weighted quantization or OBD
    pruning. Why clip rather than take absolute values: a negative curvature says that moving the weight does
    not raise the quadratic model of the loss, so the weight is among the *least* important, which clipping
    keeps and ``|h|`` would invert.
    """
    _check_h(h)
    floor = checks.real(floor, "floor", low=0.0, high=1.0, low_open=True, high_open=True)
    out = {}
    for key, t in h.items():
        t = t if t.is_floating_point() else t.to(torch.get_default_dtype())
        # the floor in float64, raised to the dtype's smallest normal: a half-precision floor underflows to 0
        scale = float(t.detach().abs().double().mean())
        low = max(floor * scale, float(torch.finfo(t.dtype).tiny))
        out[key] = t.clamp_min(low) if scale > 0 else torch.ones_like(t)
    return out


def flatten(h: dict) -> np.ndarray:
    """All entries of ``h`` as one float64 NumPy vector (layers in insertion order)."""
    _check_h(h)
    return np.concatenate([t.detach().cpu().double().numpy().reshape(-1) for t in h.values()])


def _rank_correlation(a: dict, b: dict, keys, drop_zeros: bool) -> float:
    """Spearman's ρ over ``keys``; NaN where it is undefined (fewer than two entries, or a constant side)."""
    from scipy.stats import spearmanr

    va, vb = flatten({k: a[k] for k in keys}), flatten({k: b[k] for k in keys})
    if drop_zeros:
        va, vb = va[vb != 0], vb[vb != 0]
    if va.size < 2 or np.ptp(va) == 0 or np.ptp(vb) == 0:
        return float("nan")
    return float(spearmanr(va, vb).statistic)


def spearman(a: dict, b: dict, *, per_layer: bool = False, drop_zeros: bool = False):
    """Spearman rank correlation between two curvature estimates with the same layers and shapes.

    Pooled over all weights of all layers (in ``a``'s order) by default; ``per_layer=True`` gives
    ``{layer: correlation}``. ``drop_zeros=True`` leaves out the entries where ``b`` (the reference) is exactly
    zero — weights fed by an input that is zero on every example (MNIST's border pixels) or by a dead unit, whose
    curvature every estimator gets exactly right and whose ties would inflate the correlation. Raises
    ``ValueError`` where the correlation is undefined (fewer than two entries left, or one side constant).
    """
    _check_h(a, "a")
    _check_h(b, "b")
    per_layer = checks.boolean(per_layer, "per_layer")
    drop_zeros = checks.boolean(drop_zeros, "drop_zeros")
    if set(a) != set(b) or any(a[k].shape != b[k].shape for k in a):
        raise ValueError("a and b must have the same layers with the same shapes; got "
                         f"{ {k: tuple(v.shape) for k, v in a.items()} } and { {k: tuple(v.shape) for k, v in b.items()} }")

    def rho(keys):
        value = _rank_correlation(a, b, keys, drop_zeros)
        if math.isnan(value):
            raise ValueError(f"the rank correlation over {keys} is undefined: fewer than two entries"
                             + (" where b is non-zero" if drop_zeros else "") + ", or a or b is constant there")
        return value

    if per_layer:
        return {k: rho([k]) for k in a}
    return rho(list(a))

def split_by_layer(vector: torch.Tensor, model: nn.Module) -> dict[str, torch.Tensor]:
    """Cut a flat vector over all Linear/Conv weights (e.g. ``curvature_matrices(...)["ggn"].diagonal()``) into
    ``{layer name: tensor shaped like its weight}``, the format of :func:`hessian_diag`."""
    layers = compressible_layers(model)
    if not isinstance(vector, torch.Tensor):
        raise TypeError(f"vector must be a torch tensor, got {type(vector).__name__}")
    sizes = [m.weight.numel() for _, m in layers]
    if vector.dim() != 1 or vector.numel() != sum(sizes):
        raise ValueError(f"vector must be 1-D with {sum(sizes)} entries, got shape {tuple(vector.shape)}")
    return {name: t.reshape(m.weight.shape) for (name, m), t in zip(layers, torch.split(vector, sizes))}

