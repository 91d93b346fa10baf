"""Quantizing a whole model (chapters 7, 9): the quantizers by name (:data:`METHODS`), the check of a
``{layer: h}`` dict (:func:`check_importances`), :func:`quantize_model` and its reports. Torch is imported
inside the functions, so that ``import poprisk.quantize`` stays free of it."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from poprisk.quantize.base import _check_k, _scalar_problem, _to_numpy
from poprisk.quantize.coding import distortion, entropy_coded_bits, label_entropy_bits
from poprisk.quantize.exact import weighted_kmeans_1d
from poprisk.quantize.lloyd import drhw_kmeans, drhw_linear, hw_kmeans, kmeans, uniform_quantize

# ----------------------------------------------------------------------------------------------- models

@dataclass(frozen=True)
class LayerReport:
    """What quantizing one layer did: its size, codebook, distortion and entropy-coded size."""

    name: str
    n_weights: int
    k: int
    centers: np.ndarray
    distortion: float
    entropy_bits: float
    coded_bits: float


@dataclass(frozen=True)
class QuantizationReport:
    layers: list[LayerReport]

    def __post_init__(self):
        if not self.layers or not all(isinstance(layer, LayerReport) for layer in self.layers):
            raise ValueError("layers must be a non-empty list of LayerReport")

    @property
    def compression_ratio(self) -> float:
        """Entropy-coded size over the 32-bit float size of the quantized weights (biases excluded)."""
        coded = sum(layer.coded_bits for layer in self.layers)
        return coded / (32.0 * sum(layer.n_weights for layer in self.layers))


def _no_lloyd(fn):
    # the non-iterative quantizers accept (and ignore) the Lloyd keywords, so a sweep can pass them to every method
    def call(w, h, k, *, iters=None, init=None, seed=None):
        return fn(w, h, k)
    return call


def _drhw(w, h, k, *, beta=None, **kw):
    if beta is None:
        raise ValueError("method 'drhw' needs beta=... (the diameter penalty)")
    return drhw_kmeans(w, h, k, beta, **kw)


def _drhw_linear(w, h, k, *, beta=None, iters=30, init="authors", seed=None):
    # ``beta`` carries the authors' λ (diameter_reg) so that a sweep passes one keyword to both DRHW methods;
    # the method draws no random numbers, so ``seed`` is accepted and has no effect
    if beta is None:
        raise ValueError("method 'drhw_linear' needs beta=... (the authors' diameter_reg λ)")
    return drhw_linear(w, h, k, beta, iters=iters, init=init)


#: Scalar quantizers by name: each maps ``(w, h, k, **kw)`` to ``(centers, labels)``. ``"uniform"`` and
#: ``"kmeans"`` ignore ``h``; ``"drhw"`` needs ``beta`` (Algorithm 1's β); ``"drhw_linear"`` needs ``beta`` too,
#: there the authors' linear weight λ (:func:`drhw_linear`); ``"hw_exact"`` is :func:`weighted_kmeans_1d`.
METHODS = {
    "uniform": _no_lloyd(lambda w, h, k: uniform_quantize(w, k)),
    "kmeans": lambda w, h, k, **kw: kmeans(w, k, **kw),
    "hw_kmeans": lambda w, h, k, **kw: hw_kmeans(*_scalar_problem(w, h), k, **kw),
    "hw_exact": _no_lloyd(weighted_kmeans_1d),
    "drhw": lambda w, h, k, **kw: _drhw(*_scalar_problem(w, h), k, **kw),
    "drhw_linear": _drhw_linear,
}

SIGNS = ("positive", "nonnegative", "any")


def _per_layer(values, model, name: str, kinds: str):
    """``[(layer, name[layer], array)]`` of a dict with an entry of exactly each compressible layer's weight
    shape (dtype kind in ``kinds``); the structural half of :func:`check_importances` and :func:`check_masks`."""
    from poprisk.models import compressible_layers

    if not isinstance(name, str):
        raise TypeError(f"name must be a string, got {type(name).__name__}")
    layers = compressible_layers(model)
    if not isinstance(values, dict):
        raise TypeError(f"{name} must be a dict {{layer name: array shaped like its weight}}, got "
                        f"{type(values).__name__}")
    missing = [n for n, _ in layers if n not in values]
    if missing:
        raise ValueError(f"{name} has no entry for layer {missing[0]!r} (missing: {missing})")
    out = []
    for layer, module in layers:
        arg = f"{name}[{layer!r}]"
        arr = _to_numpy(values[layer], arg, kinds)
        want = tuple(module.weight.shape)
        if arr.shape != want:
            raise ValueError(f"{arg} has shape {arr.shape}, expected the weight's shape {want}")
        out.append((layer, arg, arr))
    return out


def check_importances(h, model, *, name: str = "h", sign: str = "positive") -> dict[str, np.ndarray]:
    """Validate a per-weight dict ``{layer name: values}`` against ``model``; return float64 NumPy arrays.

    ``model``'s compressible layers (:func:`poprisk.models.compressible_layers`) must each have an entry (extra
    entries are ignored) holding a real array or tensor (any device) of **exactly** that layer's weight shape — a
    transposed array of the same size would pair each weight with another weight's importance and is refused —
    with finite values that are ``sign="positive"`` (what the HW quantizers need), ``"nonnegative"`` (a
    curvature for pruning) or ``"any"`` (a saliency). Raises ``TypeError``/``ValueError`` naming
    ``name[layer]``. The one check of the library for such dicts: :func:`quantize_model`, :mod:`poprisk.prune`
    and :func:`poprisk.experiments.per_layer_arrays` use it (keep-masks: :func:`check_masks`).
    """
    if not isinstance(sign, str) or sign not in SIGNS:
        raise ValueError(f"sign must be one of {SIGNS}, got {sign!r}")
    out = {}
    for layer, arg, arr in _per_layer(h, model, name, "iuf"):
        if not np.isfinite(arr).all():
            raise ValueError(f"{arg} contains non-finite values (NaN or inf)")
        if (sign == "positive" and (arr <= 0).any()) or (sign == "nonnegative" and (arr < 0).any()):
            raise ValueError(f"{arg} must be {'strictly positive' if sign == 'positive' else 'non-negative'}")
        out[layer] = arr
    return out


def check_masks(masks, model, *, name: str = "masks") -> dict[str, np.ndarray]:
    """Validate a dict of boolean keep-masks ``{layer name: mask shaped exactly like its weight}`` against
    ``model`` (the structural checks of :func:`check_importances`); return boolean NumPy arrays (chapter 9's
    pruning sweeps)."""
    out = {}
    for layer, arg, arr in _per_layer(masks, model, name, "biuf"):
        if arr.dtype != bool:
            raise TypeError(f"{arg} must be a boolean mask, got dtype {arr.dtype}")
        out[layer] = arr
    return out


def quantize_model(model, method: str = "kmeans", k: int = 4, h: dict | None = None, **kw):
    """Quantize every Linear/Conv weight of a copy of ``model`` per layer; biases are left untouched.

    Parameters
    ----------
    method : a key of :data:`METHODS` (``"uniform"``, ``"kmeans"``, ``"hw_kmeans"``, ``"hw_exact"``, ``"drhw"``,
        ``"drhw_linear"``).
    k : codebook size per layer (``2**bits``).
    h : importances per layer, ``{module_name: tensor shaped exactly like its weight}`` (checked by
        :func:`check_importances`); ``None`` means all ones.
    kw : passed to the quantizer (``iters``, ``init``, ``seed``, ``beta`` …).

    Returns ``(compressed_model, QuantizationReport)``; the original model is not modified.
    """
    import torch

    from poprisk.models import compressible_layers

    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}, got {method!r}")
    layers = compressible_layers(model)
    k = _check_k(k)
    hs = None if h is None else check_importances(h, model)
    out = copy.deepcopy(model)
    modules = dict(out.named_modules())
    reports = []
    for name, m in layers:
        w = m.weight.detach().cpu().double().numpy().reshape(-1)
        if not np.isfinite(w).all():
            raise ValueError(f"model has non-finite weights in layer {name!r}")
        hl = None if hs is None else hs[name].reshape(-1)
        centers, labels = METHODS[method](w, hl, k, **kw)
        target = modules[name].weight
        with torch.no_grad():
            target.copy_(torch.as_tensor(centers[labels], dtype=target.dtype).reshape(target.shape))
        reports.append(LayerReport(
            name=name, n_weights=w.size, k=k, centers=np.asarray(centers),
            distortion=distortion(w, hl, centers, labels),
            entropy_bits=label_entropy_bits(labels, k),
            coded_bits=entropy_coded_bits(labels, k),
        ))
    return out, QuantizationReport(reports)
