"""The compressors of the sweeps behind one registry (chapter 9): the quantizers of
:mod:`poprisk.quantize`, the pruners of :mod:`poprisk.prune` and the noise control.

:data:`REGISTRY` maps a name to a :class:`Compressor`. A *quantizer* or the *control* rewrites one layer's
flat weights, ``run(w, h, keep, opts) -> (new weights, coded bits)``; a *pruner* chooses keep-masks,
``run(model, ratio, h, scope) -> (pruned model, report)``. A new compressor is one small function and one
entry here; :func:`compress` and the sweeps find it by name and never branch on method names.
"""

from __future__ import annotations

import copy
import functools
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from poprisk import checks, models, quantize

#: The perturbation control of the quantize sweep (not a quantizer: nothing is compressed).
NOISE = "noise"
#: Quantizers that use the importances ``h``; ``"uniform"`` and ``"kmeans"`` ignore them.
WEIGHTED_METHODS = ("hw_kmeans", "hw_exact", "drhw", "drhw_linear")
#: Quantizers with a diameter weight, and the :class:`SweepConfig` field that holds each one's grid.
BETA_GRIDS = {"drhw": "betas", "drhw_linear": "linear_betas"}
#: Quantizers the noise control may take its distortion from (no β to choose).
NOISE_REFERENCES = ("uniform", "kmeans", "hw_kmeans", "hw_exact")
LAYER_SUBSETS = ("all", "hidden", "output")
PRUNE_METHODS = ("magnitude", "curvature")
#: Methods iterated by Lloyd-type updates (they take ``iters``).
_ITERATIVE = ("kmeans", "hw_kmeans", "drhw", "drhw_linear")


@dataclass(frozen=True)
class Compressor:
    """One entry of :data:`REGISTRY`: its ``kind`` (``"quantizer"``, ``"pruner"`` or ``"control"``), the
    function that runs it (signatures in the module docstring) and whether it needs the importances ``h``."""

    kind: str
    run: Callable
    needs_h: bool


@dataclass(frozen=True)
class LayerOptions:
    """What a layer compressor needs beyond the weights: ``bits``, ``beta``, ``iters``, ``seed``, the layer's
    ``index`` (it seeds the noise) and the noise control's ``reference`` quantizer."""

    bits: int
    beta: float | None
    iters: int
    seed: int
    index: int
    reference: str


def _choice(value, name: str, allowed) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name} must be one of {tuple(allowed)}, got {value!r}")
    return value


def importances(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, method: str = "ggn",
                floor: float = 1e-6, batch_size: int | None = 1000) -> dict[str, torch.Tensor]:
    """Positive importances per layer for the Hessian-weighted methods: the Hessian-diagonal estimate
    ``method`` of the mean cross-entropy on ``(x, y)`` (:func:`poprisk.curvature.hessian_diag`), clipped below
    at ``floor`` times its mean absolute value (:func:`poprisk.curvature.positive`) and normalised to mean 1 per
    layer (:func:`poprisk.curvature.normalize`, as the authors did). Returned as float64 CPU tensors."""
    from poprisk import curvature

    diag = curvature.hessian_diag(model, nn.CrossEntropyLoss(), (x, y), method=method, batch_size=batch_size)
    missing = [name for name, _ in models.compressible_layers(model) if name not in diag]
    if missing:
        raise ValueError(f"hessian_diag returned no entry for layers {missing}")
    h = curvature.normalize(curvature.positive(diag, floor))
    return {name: t.detach().to(torch.float64).cpu() for name, t in h.items()}


def _binary_entropy(p: float) -> float:
    return 0.0 if p <= 0 or p >= 1 else float(-(p * math.log2(p) + (1 - p) * math.log2(1 - p)))


def _method_kwargs(method: str, *, iters: int, beta: float | None, seed: int) -> dict:
    kw = {}
    if method in _ITERATIVE:
        kw["iters"] = iters
    if method in BETA_GRIDS:
        if beta is None:
            raise ValueError(f"method {method!r} needs beta (its {BETA_GRIDS[method]} grid value)")
        kw["beta"] = beta
        kw["seed"] = seed
    return kw



def _run_quantizer(method: str, w: np.ndarray, hl: np.ndarray | None, k: int, opts: LayerOptions, beta):
    centers, labels = quantize.METHODS[method](w, hl, k, **_method_kwargs(method, iters=opts.iters, beta=beta,
                                                                           seed=opts.seed))
    return np.asarray(centers, dtype=np.float64), np.asarray(labels).reshape(-1)


def _keep_only(w: np.ndarray, hl, keep: np.ndarray | None, opts: LayerOptions | None):
    """No quantizer: the pruned layer stores its survivors as 32-bit floats and the mask as ``n·h₂(density)``
    bits; an unpruned layer is unchanged (32 bits a weight)."""
    if keep is None:
        return w.copy(), 32.0 * w.size
    nnz = int(keep.sum())
    return np.where(keep, w, 0.0), w.size * _binary_entropy(nnz / w.size) + 32.0 * nnz


def _quantize_layer(method: str, w: np.ndarray, hl, keep: np.ndarray | None, opts: LayerOptions):
    """Quantize the survivors of ``keep`` (all weights when ``None``) with ``min(2**bits, n_kept)`` values.
    Unpruned: the labels are entropy-coded; pruned: the symbols are 0 for a pruned weight and 1 + label for a
    survivor, and the zero needs no codebook entry."""
    n = w.size
    if keep is None:
        k = min(2 ** opts.bits, n)
        centers, labels = _run_quantizer(method, w, hl, k, opts, opts.beta)
        return centers[labels], quantize.entropy_coded_bits(labels, k)
    new, nnz = np.where(keep, w, 0.0), int(keep.sum())
    if nnz == 0:
        return new, 0.0
    k = min(2 ** opts.bits, nnz)
    centers, labels = _run_quantizer(method, w[keep], None if hl is None else hl[keep], k, opts, opts.beta)
    new[keep] = centers[labels]
    symbols = np.zeros(n, np.int64)
    symbols[keep] = labels + 1
    return new, n * quantize.label_entropy_bits(symbols, k + 1) + 32.0 * k


def _noise_like(w: np.ndarray, hl: np.ndarray, target: float, rng: np.random.Generator) -> np.ndarray:
    """``w + s z`` with ``z ~ N(0, I)`` and ``s`` such that ``Σ h (s z)² = target`` exactly."""
    z = rng.standard_normal(w.size)
    energy = float(hl @ (z * z))
    return w + math.sqrt(target / energy) * z if target > 0 else w.copy()



def _noise_layer(w: np.ndarray, hl: np.ndarray, keep, opts: LayerOptions):
    """The control: Gaussian noise with the Hessian-weighted distortion of ``opts.reference`` at ``bits`` on
    this layer, seeded by ``(seed, bits, index)``; nothing is compressed (32 bits a weight)."""
    k = min(2 ** opts.bits, w.size)
    ref_h = hl if opts.reference in WEIGHTED_METHODS else None
    centers, labels = _run_quantizer(opts.reference, w, ref_h, k, opts, None)
    d_ref = float(hl @ (centers[labels] - w) ** 2)
    return _noise_like(w, hl, d_ref, np.random.default_rng([opts.seed, opts.bits, opts.index])), 32.0 * w.size


def _magnitude_pruner(model, ratio, h, scope):
    from poprisk import prune

    return prune.magnitude_prune(model, ratio, scope=scope)


def _curvature_pruner(model, ratio, h, scope):
    from poprisk import prune

    if h is None:
        raise ValueError("curvature pruning needs the importances h")
    return prune.curvature_prune(model, ratio, h, scope=scope)


#: Every compressor of the sweeps by name (see the module docstring).
REGISTRY = {
    **{m: Compressor("quantizer", functools.partial(_quantize_layer, m), m in WEIGHTED_METHODS)
       for m in quantize.METHODS},
    "magnitude": Compressor("pruner", _magnitude_pruner, False),
    "curvature": Compressor("pruner", _curvature_pruner, True),
    NOISE: Compressor("control", _noise_layer, True),
}


def _of_kind(kind: str) -> tuple:
    return tuple(name for name, c in REGISTRY.items() if c.kind == kind)


def selected_layers(model: nn.Module, layers: str = "all") -> list[str]:
    """Names of the Linear/Conv layers that ``layers`` selects: ``"all"``, ``"hidden"`` (all but the last,
    in ``named_modules`` order) or ``"output"`` (the last one, the classifier)."""
    names = [name for name, _ in models.compressible_layers(model)]
    _choice(layers, "layers", LAYER_SUBSETS)
    if layers != "all" and len(names) < 2:
        raise ValueError(f"layers={layers!r} needs a model with at least two Linear/Conv layers")
    return names if layers == "all" else names[:-1] if layers == "hidden" else names[-1:]



def prune_masks(model: nn.Module, method: str, ratio: float, h: dict | None = None, *,
                scope: str = "layer") -> dict[str, torch.Tensor]:
    """Boolean keep-masks per layer (CPU): the ``1 − ratio`` fraction of each layer's weights (``scope="layer"``,
    the default: the same fraction in every layer) or of all weights (``"global"``) with the largest magnitude
    (``"magnitude"``, :func:`poprisk.prune.magnitude_prune`) or the largest optimal-brain-damage saliency
    ``h w²/2`` (``"curvature"``, :func:`poprisk.prune.curvature_prune`)."""
    if method not in _of_kind("pruner"):
        raise ValueError(f"prune method must be one of {PRUNE_METHODS}, got {method!r}")
    _, report = REGISTRY[method].run(model, ratio, h, scope)
    return {name: mask.detach().bool().cpu() for name, mask in report.masks.items()}


def per_layer_arrays(values, model: nn.Module, name: str, *, boolean: bool = False) -> dict[str, np.ndarray]:
    """``{layer: flat float64 (or bool) array}`` of a per-weight dict ``values`` (importances ``h`` or keep
    masks) after the library's one check of such dicts against ``model``
    (:func:`poprisk.quantize.check_importances` with ``sign="any"``, or :func:`poprisk.quantize.check_masks`
    when ``boolean``): an entry of exactly each Linear/Conv layer's weight shape, finite numbers or booleans."""
    checked = (quantize.check_masks(values, model, name=name) if boolean
               else quantize.check_importances(values, model, name=name, sign="any"))
    return {layer: arr.reshape(-1) for layer, arr in checked.items()}



def compress(model: nn.Module, *, method: str | None = None, bits: int | None = None, h: dict | None = None,
             masks: dict | None = None, beta: float | None = None, iters: int = 30, seed: int = 0,
             layers: str = "all", noise_reference: str = "kmeans"):
    """A compressed copy of ``model`` and its entropy-coded compression ratio (see the module docstring).

    ``layers`` (:func:`selected_layers`) chooses which Linear/Conv layers change; the others stay as they are
    and count 32 bits per weight. ``masks`` (from :func:`prune_masks`) zero the pruned weights of the selected
    layers; ``method``/``bits`` then quantize each selected layer's surviving weights with ``2**bits`` shared
    values (``h`` restricted to the survivors). ``method="noise"`` is the perturbation control: Gaussian
    noise whose Hessian-weighted distortion equals that of ``noise_reference`` at ``bits`` on the same layer
    (seeded by ``seed``, ``bits`` and the layer; ratio 1). With neither masks nor method the copy is the model
    itself and the ratio is 1. ``h[name]`` must have exactly the shape of the layer's weight. Each selected
    layer goes through its :data:`REGISTRY` entry.
    """
    if (method is None) != (bits is None):
        raise ValueError("method and bits go together: give both or neither")
    layer_methods = _of_kind("quantizer") + _of_kind("control")
    if method is not None and method not in layer_methods:
        raise ValueError(f"method must be one of {sorted(quantize.METHODS) + [NOISE]}, got {method!r}")
    if bits is not None:
        bits = checks.integer(bits, "bits", low=1, high=16)
    seed = checks.seed(seed)
    spec = None if method is None else REGISTRY[method]
    if spec is not None and spec.kind == "control":
        if h is None or masks is not None:
            raise ValueError(f"method={method!r} needs the importances h (its distortion is Hessian-weighted) "
                             "and no masks")
        _choice(noise_reference, "noise_reference", [m for m in NOISE_REFERENCES if m in quantize.METHODS])
    if spec is not None and spec.needs_h and h is None:
        raise ValueError(f"method {method!r} needs the importances h")
    run = _keep_only if spec is None else spec.run
    chosen = selected_layers(model, layers)
    hs = None if h is None else per_layer_arrays(h, model, "h")
    keeps = None if masks is None else per_layer_arrays(masks, model, "masks", boolean=True)
    out = copy.deepcopy(model)
    mods = dict(out.named_modules())
    coded = total = 0.0
    for index, (name, _) in enumerate(models.compressible_layers(model)):
        weight = mods[name].weight
        n = weight.numel()
        total += 32.0 * n
        if name not in chosen:
            coded += 32.0 * n
            continue
        w = weight.detach().cpu().double().numpy().reshape(-1)
        hl = hs[name] if hs is not None and spec is not None and spec.needs_h else None
        opts = None if spec is None else LayerOptions(bits, beta, iters, seed, index, noise_reference)
        new, layer_bits = run(w, hl, None if keeps is None else keeps[name], opts)
        coded += layer_bits
        with torch.no_grad():
            weight.copy_(torch.as_tensor(new, dtype=weight.dtype).reshape(weight.shape))
    return out, coded / total


def hw_distortion(model: nn.Module, compressed: nn.Module, h: dict) -> float:
    """``Σ_layers Σ_j h_j (ŵ_j − w_j)²`` between ``model`` and its compressed copy (the quadratic model of the
    loss increase that the Hessian-weighted methods minimise, chapter 5)."""
    hs = per_layer_arrays(h, model, "h")
    mods = dict(compressed.named_modules())
    total = 0.0
    for name, m in models.compressible_layers(model):
        if name not in mods or getattr(mods[name], "weight", None) is None or \
                mods[name].weight.shape != m.weight.shape:
            raise ValueError(f"compressed has no layer {name!r} shaped like model's: not a copy of model")
        hl = hs[name]
        diff = (mods[name].weight.detach().cpu().double() - m.weight.detach().cpu().double()).numpy().reshape(-1)
        total += float(hl @ (diff * diff))
    return total


