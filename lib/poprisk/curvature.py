"""Diagonal curvature of a network's training loss (chapter 8; its estimates feed chapters 7 and 9).

For the mean training loss :math:`L(\\theta) = \\frac1N \\sum_i \\ell(f(x_i;\\theta), y_i)` with network outputs
:math:`z_i = f(x_i;\\theta)`, the Hessian splits into a Gauss–Newton part and a residual part
:cite:`schraudolph2002fast,martens2020new`

.. math:: \\nabla^2 L = \\underbrace{\\tfrac1N \\textstyle\\sum_i J_i^\\top \\Lambda_i J_i}_{G\\ (\\text{GGN})}
          + \\tfrac1N \\textstyle\\sum_i \\sum_c \\partial_{z_c}\\ell_i \\, \\nabla^2_\\theta z_{ic},
          \\qquad J_i = \\partial z_i / \\partial\\theta,\\ \\Lambda_i = \\nabla^2_z \\ell_i .

:func:`hessian_diag` estimates the diagonal of one of these matrices for the weight of every ``Linear`` and
``Conv`` layer and returns ``{module_name: tensor shaped like module.weight}`` — the ``h`` that
:func:`poprisk.quantize.quantize_model` and :func:`poprisk.prune.curvature_prune` take. Methods:

``"ggn"`` (the default)
    The exact diagonal of the generalized Gauss–Newton matrix :math:`G`, from a factorization
    :math:`\\Lambda_i = \\sum_k \\sigma_k s_{ik} s_{ik}^\\top` (:math:`\\sigma_k = \\pm1`):
    :math:`\\mathrm{diag}\\,G = \\frac1N\\sum_i\\sum_k \\sigma_k (J_i^\\top s_{ik})^{\\odot 2}`. For softmax
    cross-entropy the :math:`C-1` columns of the closed-form Cholesky factor of :math:`\\mathrm{diag}(p) - pp^\\top`
    (:func:`softmax_hessian_factor`) are used; for other losses, per-example output Hessians from ``torch.func``
    and their eigen-decomposition (negative eigenvalues, for a loss that is not convex in the outputs, enter
    with :math:`\\sigma_k = -1`, so the diagonal is that of :math:`G` itself). Each column is back-propagated to
    the layer *outputs* :math:`g_{ikp}` (``p`` runs over the positions where a layer applies its weight: one for a
    dense ``Linear``, the output pixels of a convolution) and squared against the layer inputs :math:`u_{ip}`
    (the image patches of a convolution) without a per-example loop, in one of two ways chosen per layer:
    *pairs* — :math:`\\sum_{i}\\sum_{p,q} (\\sum_k g_{ikp} g_{ikq}) (u_{ip} u_{iq})`, one matrix product
    over examples and position pairs, for layers with few positions (a dense layer is the case of one:
    :math:`(\\sum_k g_{ik}^{\\odot 2})^\\top u_i^{\\odot 2}`); *examples* — per-example weight gradients
    :math:`\\sum_p g_{ikp} u_{ip}^\\top` formed by batched matrix products in chunks of bounded memory and squared.
``"exact"``
    The diagonal of :math:`\\nabla^2 L` itself. When every operation between the weights and the outputs is
    piecewise linear in each weight (``Linear``/``Conv``, ReLU and leaky ReLU, max and average pooling, dropout
    and batch-norm in eval mode, reshapes, sums — checked on the autograd graph of the model's outputs), the
    residual term's diagonal vanishes (its second derivatives are zero almost everywhere: chapter 8), so the
    exact diagonal is the GGN diagonal above with the loss's full output Hessian, and it is computed that way.
    Otherwise (tanh, softplus, …, or a product of two activations) it takes the general path: for a dense
    ``Linear`` layer, :math:`\\partial^2 L/\\partial W_{ab}^2 = \\sum_i x_{ib}^2\\, [\\nabla^2_{a_i} L]_{aa}` with
    :math:`a_i = W x_i` from one Hessian–vector product per *output unit*; for other layers one
    Hessian–vector product per weight (small nets only); ``exact_path="hvp"`` takes this path on any net, as a
    reference computed independently of the GGN. It can be **negative**.
``"mc_fisher"``
    The Fisher :math:`F = \\frac1N \\sum_i E_{\\hat y\\sim p_i} [\\nabla\\ell(\\hat y)\\nabla\\ell(\\hat y)^\\top]`
    with one label sampled from the model per example (``mc_samples`` of them if asked): unbiased for :math:`G`
    (plain softmax cross-entropy only). Costs one backward pass.
``"empirical_fisher"``
    :math:`\\frac1N\\sum_i (\\nabla\\ell_i)^{\\odot 2}` with the *observed* labels :cite:`kunstner2019limitations`,
    computed without materializing per-example gradients (the same contractions as ``"ggn"``, one column).
``"hutchinson"``
    :math:`\\frac1m\\sum_k v_k \\odot \\nabla^2 L\\, v_k` with Rademacher probes :cite:`hutchinson1989stochastic`:
    unbiased for the exact diagonal, noisy, can be negative.
``"authors_sq_ce"``
    The importance of the authors' code (paper notes §6): the Gauss–Newton diagonal of the per-example
    *squared* loss, :math:`\\sum_i \\mathrm{diag}(J_i^\\top \\nabla_z^2(\\ell_i^2) J_i)` with
    :math:`\\nabla_z^2(\\ell^2) = 2(\\nabla\\ell\\nabla\\ell^\\top + \\ell\\,\\Lambda)`, normalized to mean 1 per layer
    (cross-entropy only, as in their code).

**Default: ``"ggn"``.** It is positive semi-definite for a loss convex in the outputs (so it is a valid
quantizer/pruning importance after a tiny floor, see :func:`positive`), deterministic, equals the Fisher for
softmax cross-entropy, and — the decisive point for this book — for networks that are piecewise linear in each
weight (ReLU MLPs and CNNs, max-pooling, dropout and batch-norm in eval mode) its diagonal *is* the exact Hessian
diagonal almost everywhere, because the residual term's diagonal vanishes (chapter 8 proves it).

**Cost** (``bench/curvature.py`` measures it: CPU seconds, one thread; a gradient pass is one forward and one
backward of the mean loss). ``"ggn"`` is one forward pass, :math:`C-1` backward passes to the layer outputs and
the contractions above; ``"exact"`` on a piecewise-linear net is the same computation. On the book's
784-256-256-10 MLP (4,000 digits) the contraction is one weight-gradient-sized product, so both cost about 2.2
gradient passes — BackPACK's ``DiagHessian``/``DiagGGNExact`` about 5, the Hessian–vector-product path of
``"exact"`` about 100. On ``models.VGGSmall`` at width 1 (64 CIFAR-shaped inputs) ``"ggn"`` costs about 10
gradient passes (BackPACK: about 22; the torch.func per-example path used before: about 17): about 2.7 for the 9
backward passes, 6.7 for the squared per-example gradients, whose matrix products already run at the CPU's
peak rate. An exact GGN diagonal of a 10-class convolutional net cannot cost a few gradient passes this way: a
gradient's weight gradient is one product summed over the batch (with a faster convolution algorithm), the
diagonal needs :math:`C-1` per-example ones, squared.

Conventions: ``loss_fn(outputs, targets)`` returns the **mean** over the batch of per-example losses (like
``nn.CrossEntropyLoss()``), and ``loss_fn(z[i:i+1], y[i:i+1])`` is the loss of example ``i``; both are checked on
a few examples, and losses that break them (``reduction="sum"``, class weights, which average with weights
:math:`\\sum w_{y_i}\\ell_i/\\sum w_{y_i}`, labels equal to ``ignore_index``) are refused. Examples must not
interact: the model is put in eval mode while the curvature is computed, so dropout is off and batch-norm uses
its running statistics (a batch-norm without running statistics is refused); it is restored afterwards.
Estimates refer to the mean loss over all of ``data`` (except ``"authors_sq_ce"``, which is normalized).
``data`` is processed in chunks of at most ``batch_size`` examples, and of fewer when the activations that
back-propagation keeps would exceed about 512 MB (measured on a few examples first), so the working memory stays
bounded — for ``VGGSmall`` at width 1 and 1,000 CIFAR images the whole process peaks at 1.34 GiB during
``"ggn"`` (``bench/curvature.py``); the result does not
depend on the chunking (up to rounding, and to the random draws of ``"mc_fisher"``).
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from poprisk import checks
from poprisk.models import compressible_layers

METHODS = ("exact", "ggn", "mc_fisher", "empirical_fisher", "hutchinson", "authors_sq_ce")
#: The method the book uses downstream (see the module docstring for why).
DEFAULT_METHOD = "ggn"

_CHUNK_ELEMS = 1 << 23  # elements per temporary tensor in chunked loops (~32 MB in float32)
_BLOCK_ELEMS = 1 << 18  # elements of a per-example gradient block (~1 MB: stays in cache while squared)
_MEMORY_BYTES = 512 << 20  # activations kept for back-propagation per chunk of examples
_PAIRS_MEMORY = 16  # "pairs" when P² ≤ K (P + this): a per-example gradient entry costs ~16 multiply-adds of traffic
_PROBE = 8  # examples of the first forward pass that checks the loss conventions and sizes the chunks


# ----------------------------------------------------------------------------------------------- validation
def _as_data(data, device):
    """``(x, y)`` on ``device`` from a pair or a :class:`poprisk.data.Split`, checked before any work."""
    if hasattr(data, "x_train") and hasattr(data, "y_train"):
        x, y = data.x_train, data.y_train
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = data
    else:
        raise TypeError("data must be a pair (x, y) of torch tensors or a poprisk.data.Split, "
                        f"got {type(data).__name__}" + (f" of length {len(data)}" if isinstance(data, (tuple, list))
                                                        else ""))
    for name, t in (("x", x), ("y", y)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"data: {name} must be a torch tensor, got {type(t).__name__}")
        if t.dim() == 0:
            raise ValueError(f"data: {name} must have a leading example dimension, got a 0-d tensor")
        if t.requires_grad:
            raise ValueError(f"data: {name} requires grad; pass {name}.detach() (the data are not parameters)")
        if t.is_complex() or t.dtype == torch.bool:
            raise TypeError(f"data: {name} must hold real numbers, got {t.dtype}")
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise ValueError(f"data: {name} contains non-finite values (NaN or inf)")
    if x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise ValueError(f"data: x and y must have the same, non-zero length; got {x.shape[0]} and {y.shape[0]}")
    return x.to(device), y.to(device)


def _check_model(model, layers):
    """Finite parameters and buffers, and no layer that makes examples interact in eval mode."""
    for kind, items in (("parameter", model.named_parameters()), ("buffer", model.named_buffers())):
        for name, t in items:
            if t.is_floating_point() and not torch.isfinite(t.detach()).all():
                raise ValueError(f"model: {kind} {name!r} contains non-finite values (NaN or inf)")
    for name, m in model.named_modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is None:
            raise ValueError(f"model: batch-norm {name!r} has no running statistics, so even in eval mode it "
                             "normalizes with the batch's and examples interact; per-example curvature is "
                             "undefined (use track_running_stats=True)")
    return next(model.parameters())


_CE_HELP = "nn.CrossEntropyLoss() or F.cross_entropy"


def _loss_kind(loss_fn, method) -> str:
    """``"ce"`` (plain softmax cross-entropy with integer labels: closed forms), ``"ce_smooth"`` (cross-entropy
    with label smoothing) or ``"generic"``; refuses the losses whose batch value is not a mean of per-example
    losses, and methods that need cross-entropy with another loss."""
    if isinstance(loss_fn, type):
        raise TypeError(f"loss_fn must be a loss function or module instance, got the class {loss_fn.__name__} "
                        "(write nn.CrossEntropyLoss() with parentheses)")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable (e.g. nn.CrossEntropyLoss()), got {type(loss_fn).__name__}")
    if isinstance(loss_fn, nn.modules.loss._Loss) and getattr(loss_fn, "reduction", "mean") != "mean":
        raise ValueError(f"loss_fn must average over the batch (reduction='mean'), got reduction="
                         f"{loss_fn.reduction!r}: the estimates refer to the mean training loss")
    if isinstance(loss_fn, (nn.CrossEntropyLoss, nn.NLLLoss)) and loss_fn.weight is not None:
        raise ValueError("loss_fn has class weights, which make the batch loss the weighted average "
                         "Σ w_y ℓ / Σ w_y rather than the mean of per-example losses; use weight=None")
    kind = "generic"
    if loss_fn is F.cross_entropy or type(loss_fn) is nn.CrossEntropyLoss:
        kind = "ce" if getattr(loss_fn, "label_smoothing", 0.0) == 0.0 else "ce_smooth"
    if method == "mc_fisher" and kind != "ce":
        raise ValueError("method 'mc_fisher' samples labels from the model's softmax, so loss_fn must be the "
                         f"plain softmax cross-entropy ({_CE_HELP}, no label smoothing)")
    if method == "authors_sq_ce" and kind == "generic":
        raise ValueError(f"method 'authors_sq_ce' is the authors' importance for cross-entropy; loss_fn must be "
                         f"{_CE_HELP}")
    return kind


def _check_targets(loss_fn, kind, y, n_out):
    """Class labels of a cross-entropy: integers in ``[0, C)``, none equal to ``ignore_index``."""
    if kind == "generic":
        return kind
    if y.is_floating_point():
        if y.shape[1:] != (n_out,):
            raise ValueError(f"data: y of cross-entropy must be class labels (N,) or class probabilities (N, "
                             f"{n_out}), got shape {tuple(y.shape)}")
        return "ce_smooth" if kind == "ce" else kind  # probability targets: the generic (exact) path
    if y.dim() != 1:
        raise ValueError(f"data: y must be class labels shaped (N,), got shape {tuple(y.shape)}")
    if int(y.min()) < 0 or int(y.max()) >= n_out:
        raise ValueError(f"data: labels must lie in [0, {n_out}) for the model's {n_out} outputs, got "
                         f"[{int(y.min())}, {int(y.max())}]")
    ignore = getattr(loss_fn, "ignore_index", -100)
    if bool((y == ignore).any()):
        raise ValueError(f"data: some labels equal loss_fn.ignore_index={ignore}; the loss skips them, so it is "
                         "no longer the mean over all examples (remove those examples)")
    return kind


def _check_outputs(out):
    if not torch.isfinite(out).all():
        raise ValueError("the model's outputs on data contain non-finite values (check data and the model)")


def _check_loss_convention(loss_fn, out, y):
    """``loss_fn(z, y)`` is a finite scalar and the mean of the single-example losses (on a few examples)."""
    out = out.detach()
    try:
        batch = loss_fn(out, y)
    except Exception as err:  # any failure here is a mismatch between loss_fn, the outputs and the targets
        raise ValueError(f"loss_fn(outputs, targets) failed on model outputs shaped {tuple(out.shape)} and "
                         f"targets shaped {tuple(y.shape)}: {err}") from err
    if not isinstance(batch, torch.Tensor) or batch.numel() != 1:
        raise ValueError("loss_fn must return a scalar tensor (the mean loss over the batch), got "
                         + (f"shape {tuple(batch.shape)}" if isinstance(batch, torch.Tensor) else type(batch).__name__))
    if not torch.isfinite(batch).all():
        raise ValueError("loss_fn returned a non-finite loss on the model's outputs")
    if out.shape[0] > 1:
        singles = torch.stack([loss_fn(out[i:i + 1], y[i:i + 1]).reshape(()) for i in range(out.shape[0])])
        mean, value = singles.mean(), batch.reshape(())
        tol = 1e3 * torch.finfo(out.dtype).eps * max(1.0, float(singles.abs().mean()))
        if abs(float(value - mean)) > tol:
            raise ValueError(f"loss_fn must return the mean of the per-example losses loss_fn(z[i:i+1], "
                             f"y[i:i+1]); on {out.shape[0]} examples it gave {float(value):.6g} against their "
                             f"mean {float(mean):.6g} (a sum or a weighted mean?)")


def _check_h(h, name="h"):
    if not isinstance(h, dict) or not h:
        raise TypeError(f"{name} must be a non-empty dict {{layer_name: tensor}} as returned by hessian_diag")
    for key, t in h.items():
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name}[{key!r}] must be a torch tensor, got {type(t).__name__}")
        if t.dtype == torch.bool or t.is_complex():
            raise TypeError(f"{name}[{key!r}] must hold real numbers, got {t.dtype}")
        if t.numel() == 0:
            raise ValueError(f"{name}[{key!r}] is empty")
        if not torch.isfinite(t).all():
            raise ValueError(f"{name}[{key!r}] contains non-finite values")


# ------------------------------------------------------------------------------------------ model plumbing
@contextlib.contextmanager
def _quiet_func():
    """torch.func's first vmap of some ops scripts a decomposition and warns that torch.jit is deprecated: noise."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.jit.script.* is deprecated", category=DeprecationWarning)
        yield


@contextlib.contextmanager
def _prepared(model, layers):
    """Eval mode and differentiable weights for the duration of the computation; both restored after."""
    was_training = model.training
    flags = [m.weight.requires_grad for _, m in layers]
    model.eval()
    for _, m in layers:
        m.weight.requires_grad_(True)
    try:
        yield
    finally:
        model.train(was_training)
        for (_, m), flag in zip(layers, flags):
            m.weight.requires_grad_(flag)


class _Capture:
    """Forward hooks recording each layer's input (detached) and output (in the graph)."""

    def __init__(self, layers):
        self.layers = layers
        self.inputs: dict[str, torch.Tensor] = {}
        self.outputs: dict[str, torch.Tensor] = {}

    def __enter__(self):
        def hook_for(name):
            def hook(_module, inp, out):
                if name in self.outputs:
                    raise ValueError(f"layer {name!r} is called more than once per forward pass; weight sharing "
                                     "is not supported by the per-example methods (use 'hutchinson')")
                self.inputs[name] = inp[0].detach()
                self.outputs[name] = out
            return hook

        self.handles = [m.register_forward_hook(hook_for(n)) for n, m in self.layers]
        return self

    def __exit__(self, *exc):
        for h in self.handles:
            h.remove()
        return False


def _probe(model, layers, x, y, loss_fn, kind, method, exact_path="auto"):
    """Forward a few examples: check the outputs, the targets and the loss conventions, and measure the memory
    that one example costs. Returns ``(kind, bytes per example, piecewise linear?)``; the bytes count what
    back-propagation keeps (a second-order graph keeps about three times as much), the image patches of the
    convolutions and one column's gradients at the layer outputs."""
    m = min(_PROBE, x.shape[0])
    params = {p.data_ptr() for p in model.parameters()}
    saved = [0]

    def pack(t):
        if t.data_ptr() not in params:
            saved[0] += t.numel() * t.element_size()
        return t

    if x.is_floating_point() and x.dtype != next(model.parameters()).dtype:
        raise TypeError(f"data: x is {x.dtype} but the model's weights are {next(model.parameters()).dtype}; "
                        "convert one of them")
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), _Capture(layers) as cap:
        try:
            out = model(x[:m])
        except (RuntimeError, TypeError, IndexError) as err:  # a shape or type mismatch inside the model
            raise ValueError(f"model(x) failed on data's x shaped {tuple(x.shape)} ({x.dtype}): {err}") from err
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"model must return a tensor of outputs, got {type(out).__name__}")
    if out.grad_fn is None:
        raise ValueError("model: its outputs do not depend differentiably on its weights (torch.no_grad() or "
                         "detach() inside forward?)")
    _check_outputs(out)
    if out.dim() != 2 and method not in ("exact", "hutchinson"):
        raise ValueError(f"method {method!r} needs model outputs shaped (N, C), got {tuple(out.shape)}")
    kind = _check_targets(loss_fn, kind, y, out.shape[1]) if out.dim() == 2 else "generic"
    _check_loss_convention(loss_fn, out, y[:m])
    linear = out.dim() == 2 and _piecewise_linear(out, layers)
    if method == "exact" and exact_path == "factor" and not linear:
        raise ValueError("exact_path='factor' needs a net that is piecewise linear in each weight (ReLU, "
                         "max-pooling, ...) with outputs (N, C); this one is not: use 'auto' or 'hvp'")
    linear = linear and exact_path != "hvp"
    per_example = saved[0] / m * (3.0 if method == "hutchinson" or (method == "exact" and not linear) else 1.0)
    for name, module in layers:
        if name in cap.outputs:
            inp, layer_out = cap.inputs[name][:1], cap.outputs[name][:1]
            per_example += layer_out.numel() * layer_out.element_size()
            if _patchable(module, inp) and not isinstance(module, nn.Linear):
                per_example += _patches(module, inp).numel() * inp.element_size()
    return kind, per_example, linear


def _chunk_size(n, batch_size, per_example):
    """Examples per chunk: ``batch_size`` (all of ``data`` if None), fewer where memory asks for it."""
    fit = max(1, int(_MEMORY_BYTES // max(1.0, per_example)))
    return min(n if batch_size is None else batch_size, fit)


def _chunks(x, y, step):
    for start in range(0, x.shape[0], step):
        yield x[start:start + step], y[start:start + step]


# ------------------------------------------------------------------------- piecewise linearity of the graph
# Autograd nodes through which the outputs stay (piecewise) linear in every input jointly ...
_LINEAR_NODES = frozenset("""
    AddBackward0 AddBackward1 SubBackward0 SubBackward1 RsubBackward1 NegBackward0 CloneBackward0 ToCopyBackward0
    ViewBackward0 UnsafeViewBackward0 ReshapeAliasBackward0 AsStridedBackward0 TBackward0 PermuteBackward0
    TransposeBackward0 TransposeBackward1 ExpandBackward0 SqueezeBackward0 SqueezeBackward1 SqueezeBackward2
    SqueezeBackward3 SqueezeBackward4 UnsqueezeBackward0 CatBackward0 StackBackward0 SliceBackward0
    SelectBackward0 SplitBackward0 SplitWithSizesBackward0 UnbindBackward0 IndexBackward0 IndexSelectBackward0
    GatherBackward0 SumBackward0 SumBackward1 MeanBackward0 MeanBackward1 AvgPool2DBackward0 AvgPool3DBackward0
    AdaptiveAvgPool2DBackward0 AdaptiveAvgPool3DBackward0 ConstantPadNdBackward0 ReflectionPad1DBackward0
    ReflectionPad2DBackward0 ReplicationPad1DBackward0 ReplicationPad2DBackward0 FlipBackward0 RollBackward0
    ReluBackward0 ThresholdBackward0 LeakyReluBackward0 HardtanhBackward0 ClampBackward1 ClampMinBackward0
    ClampMaxBackward0 AbsBackward0 MaxPool2DWithIndicesBackward0 MaxPool3DWithIndicesBackward0
    AdaptiveMaxPool2DBackward0 AdaptiveMaxPool3DBackward0 MaximumBackward0 MinimumBackward0 MaxBackward0
    MaxBackward1 MinBackward0 MinBackward1 AmaxBackward0 AminBackward0 BackwardHookFunctionBackward
""".split())
# ... and nodes linear in each input separately: fine when no compressible weight reaches two of their inputs
_MULTILINEAR_NODES = frozenset("""
    MulBackward0 MmBackward0 AddmmBackward0 BmmBackward0 BaddbmmBackward0 MvBackward0 DotBackward0
    ConvolutionBackward0 PreluKernelBackward0 NativeBatchNormBackward0 CudnnBatchNormBackward0
    MiopenBatchNormBackward0 EmbeddingBackward0
""".split())


def _piecewise_linear(out, layers) -> bool:
    """Whether every autograd node between the compressible weights and ``out`` is piecewise linear in each
    weight (so that the diagonal of the residual term of the Hessian is zero almost everywhere)."""
    weights = {id(m.weight) for _, m in layers}
    reach: dict = {}
    order, stack = [], [(out.grad_fn, False)]
    while stack:  # iterative post-order over the graph
        fn, done = stack.pop()
        if fn is None or (fn in reach and not done):
            continue
        if done:
            order.append(fn)
            continue
        reach[fn] = None
        stack.append((fn, True))
        stack.extend((child, False) for child, _ in fn.next_functions if child is not None and child not in reach)
    for fn in order:
        if type(fn).__name__ == "AccumulateGrad":
            reach[fn] = frozenset({id(fn.variable)}) & weights
            continue
        parts = [reach[c] if c is not None else frozenset() for c, _ in fn.next_functions]
        reach[fn] = frozenset().union(*parts)
        if not reach[fn]:
            continue  # nothing here depends on a compressible weight
        name = type(fn).__name__
        if name in _LINEAR_NODES:
            continue
        if name == "DivBackward0" and len(parts) == 2 and not parts[1]:
            continue  # x / c with c free of the weights
        if name in _MULTILINEAR_NODES:
            if "BatchNorm" in name and getattr(fn, "_saved_training", True):
                return False  # batch statistics: not linear in the input
            seen: set = set()
            for part in parts:
                if seen & part:
                    return False
                seen |= part
            continue
        return False
    return True


# ------------------------------------------------------------------- squared per-example gradient contraction
def _patchable(module, inp) -> bool:
    """Whether the layer's per-example gradient is ``Σ_p g_p u_pᵀ`` with ``u`` from :func:`_patches`."""
    if isinstance(module, nn.Linear):
        return True
    return (isinstance(module, (nn.Conv1d, nn.Conv2d)) and module.padding_mode == "zeros"
            and not isinstance(module.padding, str) and inp.dim() == module.weight.dim())


def _patches(module, inp):
    """The layer inputs as ``(B, G, J, P)``: ``P`` positions where the weight applies (one per row of a dense
    layer's input, the output pixels of a convolution), ``J`` the weight's input dimension, ``G`` groups."""
    b = inp.shape[0]
    if isinstance(module, nn.Linear):
        return inp.reshape(b, -1, inp.shape[-1]).transpose(1, 2).unsqueeze(1)
    if isinstance(module, nn.Conv1d):
        inp = inp.unsqueeze(2)
        geometry = [(1, module.kernel_size[0]), (1, module.dilation[0]), (0, module.padding[0]), (1, module.stride[0])]
    else:
        geometry = [module.kernel_size, module.dilation, module.padding, module.stride]
    u = F.unfold(inp, *geometry)  # (B, Cin·k, P), channel-major like the weight's trailing dimensions
    return u.reshape(b, module.groups, u.shape[1] // module.groups, u.shape[2])


def _grad_view(module, g):
    """The gradient at the layer output as ``(B, G, O, P)``, matching :func:`_patches`."""
    b = g.shape[0]
    if isinstance(module, nn.Linear):
        return g.reshape(b, -1, g.shape[-1]).transpose(1, 2).unsqueeze(1)
    return g.reshape(b, module.groups, module.out_channels // module.groups, -1)


def _per_example_sq(module: nn.Module, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """``Σ_i (∂⟨module(x_i), g_i⟩/∂W)²`` for any layer (``Conv3d``, other padding modes): per-example weight
    gradients by ``torch.func``, in chunks of bounded memory. The general path where :func:`_patches` does not
    apply."""
    from torch.func import functional_call, grad, vmap

    def pairing(weight, xi, gi):
        out = functional_call(module, {"weight": weight}, (xi.unsqueeze(0),))
        return (out * gi.unsqueeze(0)).sum()

    per_example = vmap(grad(pairing), in_dims=(None, 0, 0))
    w0 = module.weight.detach()
    acc = torch.zeros_like(w0)
    step = max(1, _CHUNK_ELEMS // max(1, w0.numel()))
    with _quiet_func():
        for start in range(0, x.shape[0], step):
            acc += per_example(w0, x[start:start + step], g[start:start + step]).square().sum(0)
    return acc


class _Squares:
    """``Σ_k σ_k Σ_i (∂⟨f(x_i), s_ki⟩/∂W)²`` for one layer, accumulated over the output columns ``s_k``.

    :meth:`add` takes one column's gradient at the layer output; :meth:`total` finishes. The strategy is chosen
    per layer (module docstring): *pairs* when the layer has few positions (dense layers always), *examples*
    otherwise, and :func:`_per_example_sq` for layers without a patch view.
    """

    def __init__(self, module, inp, out, n_columns):
        self.module, self.inp = module, inp
        self.sum = torch.zeros(module.weight.shape, dtype=inp.dtype, device=inp.device)
        self.pairs = self.u = None
        if _patchable(module, inp):
            self.u = _patches(module, inp)  # once per chunk, shared by all columns
            b, groups, o, p = _grad_view(module, out.detach()).shape
            if p == 1 or (p * p <= n_columns * (p + _PAIRS_MEMORY) and b * groups * o * p * p <= 4 * _CHUNK_ELEMS):
                self.pairs = torch.zeros((b, groups, o, p, p), dtype=inp.dtype, device=inp.device)

    def add(self, g, sign):
        if self.u is None:
            self.sum.add_(_per_example_sq(self.module, self.inp, g), alpha=sign)
            return
        g = _grad_view(self.module, g)
        b, groups, o, p = g.shape
        if self.pairs is not None:  # Σ_k σ_k g_kp g_kq, per example, group and output unit
            if p == 1:
                self.pairs.view(g.shape).addcmul_(g, g, value=sign)
            else:
                flat = g.reshape(b * groups * o, p, 1)
                self.pairs.view(-1, p, p).baddbmm_(flat, flat.transpose(1, 2), alpha=sign)
            return
        view = self.sum.view(groups, o, -1)
        j = view.shape[2]
        width = max(1, _BLOCK_ELEMS // (groups * o))
        for i in range(b):  # per example and block of columns, so that each product stays in cache
            for s in range(0, j, width):
                block = torch.matmul(g[i], self.u[i, :, s:s + width].transpose(1, 2))  # (G, O, width)
                view[:, :, s:s + width].addcmul_(block, block, value=sign)

    def total(self):
        if self.pairs is not None:  # Σ_i Σ_pq pairs[i, g, o, p, q] u[i, g, j, p] u[i, g, j, q]
            b, groups, o, p, _ = self.pairs.shape
            view = self.sum.view(groups, o, -1)
            j = view.shape[2]
            step = max(1, _CHUNK_ELEMS // max(1, groups * j * p * p))
            for s in range(0, b, step):
                u = self.u[s:s + step]
                uu = (u.unsqueeze(-1) * u.unsqueeze(-2)).flatten(3)  # (b, G, J, P²)
                view.add_(torch.einsum("bgoz,bgjz->goj", self.pairs[s:s + step].flatten(3), uu))
        return self.sum


# --------------------------------------------------------------------------------- output-space factors
def _per_example_loss_terms(z, y, loss_fn, kind):
    """Per-example losses ``ℓ_i``, gradients ``∇_z ℓ_i`` and Hessians ``∇²_z ℓ_i`` (shapes (B,), (B,C), (B,C,C));
    for plain cross-entropy the Hessian is left to the closed form and the probabilities are returned instead."""
    z = z.detach()
    if kind == "ce":
        logp = torch.log_softmax(z, dim=1)
        p = logp.exp()
        loss = -logp.gather(1, y.reshape(-1, 1)).squeeze(1)
        grad_ = p - F.one_hot(y, z.shape[1]).to(z.dtype)
        return loss, grad_, None, p
    from torch.func import grad, hessian, vmap

    def single(zi, yi):
        return loss_fn(zi.unsqueeze(0), yi.unsqueeze(0)).reshape(())

    with _quiet_func():
        loss = vmap(single)(z, y)
        grad_ = vmap(grad(single))(z, y)
        hess = vmap(hessian(single))(z, y)
    return loss, grad_, hess, None


def softmax_hessian_factor(p: torch.Tensor) -> torch.Tensor:
    """Closed-form Cholesky factor of the softmax cross-entropy output Hessian ``Λ = diag(p) − ppᵀ``.

    ``p`` holds probability vectors in its rows, ``(B, C)`` with ``C ≥ 2``. Returns ``L`` shaped ``(B, C, C−1)``
    with ``L Lᵀ = Λ`` (``Λ`` has rank ``C − 1``, so ``C − 1`` columns suffice): with the tail masses
    ``q_j = Σ_{k>j} p_k``, ``L_jj = √(p_j q_j / q_{j−1})`` and ``L_ij = −p_i √(p_j / (q_{j−1} q_j))`` for
    ``i > j``. Tails are summed from the end, so there is no cancellation; a column whose tail mass underflows
    to zero is zero.
    """
    if not isinstance(p, torch.Tensor):
        raise TypeError(f"p must be a torch tensor, got {type(p).__name__}")
    if p.dim() != 2 or p.shape[0] == 0 or p.shape[1] < 2:
        raise ValueError(f"p must be shaped (B, C) with B >= 1 and C >= 2, got {tuple(p.shape)}")
    if not p.is_floating_point():
        raise TypeError(f"p must be a floating-point tensor, got {p.dtype}")
    if not torch.isfinite(p).all() or (p < 0).any():
        raise ValueError("p must hold finite, non-negative probabilities")
    tol = 100 * p.shape[1] * torch.finfo(p.dtype).eps
    if ((p.sum(1) - 1).abs() > tol).any():
        raise ValueError(f"the rows of p must sum to 1 (within {tol:.1e})")
    c = p.shape[1]
    tail = p.flip(1).cumsum(1).flip(1)  # tail[:, j] = Σ_{k≥j} p_k
    q_prev, q = tail[:, :c - 1], tail[:, 1:]
    pj = p[:, :c - 1]
    tiny = torch.finfo(p.dtype).tiny

    def ratio(num, den):
        return torch.where(den > 0, num / den.clamp_min(tiny), torch.zeros_like(num))

    diag = ratio(pj * q, q_prev).sqrt()
    coef = ratio(pj, q_prev * q).sqrt()
    below = (torch.arange(c, device=p.device).unsqueeze(1) > torch.arange(c - 1, device=p.device).unsqueeze(0))
    factor = torch.where(below, -p.unsqueeze(2) * coef.unsqueeze(1), torch.zeros((), dtype=p.dtype, device=p.device))
    idx = torch.arange(c - 1, device=p.device)
    factor[:, idx, idx] = diag
    return factor


def _hessian_columns(hess, p):
    """``[(columns, sign)]`` with ``Σ sign · Σ_k s_k s_kᵀ = Λ_i`` for every example; columns ``(K, B, C)``.
    The negative part (a loss that is not convex in the outputs) is its own entry, absent when empty."""
    if p is not None:  # softmax cross-entropy: closed-form rank-(C−1) factor
        return [(softmax_hessian_factor(p).permute(2, 0, 1), 1.0)]
    evals, evecs = torch.linalg.eigh(0.5 * (hess + hess.transpose(1, 2)))
    out = []
    for sign, part in ((1.0, evals.clamp_min(0)), (-1.0, (-evals).clamp_min(0))):
        keep = (part > 0).any(0)  # eigen-directions that carry mass in some example
        if keep.any():
            out.append(((evecs * part.sqrt().unsqueeze(1))[:, :, keep].permute(2, 0, 1), sign))
    return out


def _seeds(method, out, y, loss_fn, kind, gen, mc_samples):
    """``[(columns, sign)]``: output-space vectors whose back-propagated squares, signed, sum to the chunk's
    contribution (mean over the chunk); columns are ``(K, B, C)``."""
    b = out.shape[0]
    loss, grad_, hess, p = _per_example_loss_terms(out, y, loss_fn, kind)
    if not (torch.isfinite(loss).all() and torch.isfinite(grad_).all() and (hess is None or torch.isfinite(hess).all())):
        raise ValueError("loss_fn has non-finite values, gradients or curvature at the model's outputs")
    if method == "empirical_fisher":
        return [(grad_.unsqueeze(0) / math.sqrt(b), 1.0)]
    if method in ("ggn", "exact"):
        return [(cols / math.sqrt(b), sign) for cols, sign in _hessian_columns(hess, p)]
    if method == "mc_fisher":
        draws = torch.multinomial(p.detach().cpu().double(), mc_samples, replacement=True, generator=gen)
        draws = draws.to(p.device).transpose(0, 1)  # (m, B)
        return [((p.unsqueeze(0) - F.one_hot(draws, p.shape[1]).to(p.dtype)) / math.sqrt(b * mc_samples), 1.0)]
    if method == "authors_sq_ce":
        # ∇²_z(ℓ²) = 2(∇ℓ∇ℓᵀ + ℓΛ): factor columns √2∇ℓ and √(2ℓ) s_c; the sum over examples (not the mean)
        # matches the authors' accumulation, and the per-layer normalisation removes the constants anyway.
        (cols, _), = _hessian_columns(hess, p)  # cross-entropy: Λ is positive semi-definite
        cols = cols * loss.clamp_min(0).sqrt().unsqueeze(0).unsqueeze(-1)
        return [(math.sqrt(2.0) * torch.cat([grad_.unsqueeze(0), cols], dim=0), 1.0)]
    raise AssertionError(method)


# ----------------------------------------------------------------------------------------------- estimators
def _diag_from_seeds(model, layers, x, y, loss_fn, kind, method, gen, mc_samples, step):
    """The seed methods (``"ggn"``, ``"exact"`` on piecewise-linear nets, the Fishers, the authors')."""
    n = x.shape[0]
    names = [name for name, _ in layers]
    acc = {name: torch.zeros(m.weight.shape, dtype=m.weight.dtype, device=m.weight.device) for name, m in layers}
    for xb, yb in _chunks(x, y, step):
        frac = 1.0 if method == "authors_sq_ce" else xb.shape[0] / n
        with _Capture(layers) as cap:
            out = model(xb)
        _check_outputs(out)
        missing = [name for name in names if name not in cap.outputs]
        if missing:
            raise ValueError(f"layers {missing} were not called in the forward pass")
        seed_sets = [(cols.to(out.dtype), sign) for cols, sign in _seeds(method, out, yb, loss_fn, kind, gen,
                                                                          mc_samples)]
        n_cols = sum(cols.shape[0] for cols, _ in seed_sets)
        squares = {name: _Squares(m, cap.inputs[name], cap.outputs[name], n_cols) for name, m in layers}
        targets = [cap.outputs[name] for name in names]
        done = 0
        for cols, sign in seed_sets:
            for col in cols:
                done += 1
                grads = torch.autograd.grad(out, targets, grad_outputs=col, retain_graph=done < n_cols,
                                            allow_unused=True)
                for name, g in zip(names, grads):
                    if g is not None:
                        squares[name].add(g, sign)
        for name in names:
            acc[name].add_(squares[name].total(), alpha=frac)
        del squares, cap, out
    return acc


def _unit_vectors(count, start, stop, dtype, device):
    """Rows ``e_start, …, e_{stop-1}`` of the ``count × count`` identity, as a ``(stop-start, count)`` tensor."""
    k = stop - start
    e = torch.zeros((k, count), dtype=dtype, device=device)
    e[torch.arange(k, device=device), torch.arange(start, stop, device=device)] = 1
    return e


def _exact_hvp(model, layers, x, y, loss_fn, step):
    """``"exact"`` on any net: Hessian–vector products, one per output unit of a dense layer (its Hessian with
    respect to the layer output, contracted with the squared inputs) and one per weight elsewhere."""
    n = x.shape[0]
    acc = {name: torch.zeros_like(m.weight).detach() for name, m in layers}
    for xb, yb in _chunks(x, y, step):
        frac = xb.shape[0] / n
        with _Capture(layers) as cap:
            out = model(xb)
        _check_outputs(out)
        loss = loss_fn(out, yb)
        trick = [(name, m) for name, m in layers if isinstance(m, nn.Linear) and cap.inputs[name].dim() == 2]
        other = [(name, m) for name, m in layers if (name, m) not in trick]
        outs = [cap.outputs[name] for name, _ in trick]
        weights = [m.weight for _, m in other]
        first = torch.autograd.grad(loss, outs + weights, create_graph=True, allow_unused=True)
        for (name, m), g in zip(trick, first[:len(trick)]):
            if g is None or g.grad_fn is None:
                continue
            a = cap.outputs[name]
            b, units = a.shape
            d = torch.empty_like(a.detach())
            k_step = max(1, min(units, _CHUNK_ELEMS // max(1, a.numel())))
            for s in range(0, units, k_step):
                t = min(units, s + k_step)
                e = _unit_vectors(units, s, t, a.dtype, a.device)  # (k, units)
                tangents = e.unsqueeze(1).expand(t - s, b, units).contiguous()
                hv = torch.autograd.grad(g, a, grad_outputs=tangents, is_grads_batched=True, retain_graph=True,
                                         allow_unused=True)[0]
                d[:, s:t] = 0 if hv is None else hv[torch.arange(t - s), :, torch.arange(s, t)].transpose(0, 1)
            acc[name] += frac * (d.transpose(0, 1) @ cap.inputs[name].square())
        for (name, m), g in zip(other, first[len(trick):]):
            if g is None or g.grad_fn is None:
                continue
            w = m.weight
            count = w.numel()
            flat = torch.empty(count, dtype=w.dtype, device=w.device)
            k_step = max(1, min(count, _CHUNK_ELEMS // max(1, count)))
            for s in range(0, count, k_step):
                t = min(count, s + k_step)
                e = _unit_vectors(count, s, t, w.dtype, w.device).reshape(t - s, *w.shape)
                hv = torch.autograd.grad(g, w, grad_outputs=e, is_grads_batched=True, retain_graph=True,
                                         allow_unused=True)[0]
                flat[s:t] = 0 if hv is None else hv.reshape(t - s, count)[torch.arange(t - s), torch.arange(s, t)]
            acc[name] += frac * flat.reshape(w.shape)
    return acc


def _hutchinson(model, layers, x, y, loss_fn, n_probes, seed, step):
    n = x.shape[0]
    weights = [m.weight for _, m in layers]
    acc = [torch.zeros_like(w).detach() for w in weights]
    total = sum(w.numel() for w in weights)
    p_step = max(1, min(n_probes, _CHUNK_ELEMS // max(1, total)))
    for xb, yb in _chunks(x, y, step):
        frac = xb.shape[0] / n
        out = model(xb)
        _check_outputs(out)
        loss = loss_fn(out, yb)
        grads = torch.autograd.grad(loss, weights, create_graph=True, allow_unused=True)
        live = [i for i, g in enumerate(grads) if g is not None and g.grad_fn is not None]
        gen = torch.Generator(device="cpu").manual_seed(seed)  # the same probes for every chunk
        for s in range(0, n_probes, p_step):
            k = min(p_step, n_probes - s)
            probes = [(torch.randint(0, 2, (k, *w.shape), generator=gen, dtype=torch.int8) * 2 - 1)
                      .to(device=w.device, dtype=w.dtype) for w in weights]
            if not live:
                continue
            hv = torch.autograd.grad([grads[i] for i in live], weights, grad_outputs=[probes[i] for i in live],
                                     is_grads_batched=True, retain_graph=True, allow_unused=True)
            for a, v, h in zip(acc, probes, hv):
                if h is not None:
                    a += frac * (v * h).sum(0) / n_probes
    return {name: a for (name, _), a in zip(layers, acc)}


def _options(n_probes, mc_samples, seed, batch_size):
    n_probes = checks.integer(n_probes, "n_probes", low=1)
    mc_samples = checks.integer(mc_samples, "mc_samples", low=1)
    seed = checks.seed(seed)
    if batch_size is not None:
        batch_size = checks.integer(batch_size, "batch_size", low=1)
    return n_probes, mc_samples, seed, batch_size


def _check_exact_path(exact_path):
    if exact_path not in ("auto", "factor", "hvp") or not isinstance(exact_path, str):
        raise ValueError(f"exact_path must be 'auto', 'factor' or 'hvp', got {exact_path!r}")
    return exact_path


def _check_method(method, name="method"):
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"{name} must be one of {METHODS}, got {method!r}")
    return method


def hessian_diag(model: nn.Module, loss_fn, data, method: str = DEFAULT_METHOD, *, n_probes: int = 100,
                 mc_samples: int = 1, seed: int = 0, batch_size: int | None = None,
                 exact_path: str = "auto") -> dict[str, torch.Tensor]:
    """Estimate the diagonal curvature of the mean training loss for every Linear/Conv weight of ``model``.

    Parameters
    ----------
    model : the network (any ``nn.Module`` mapping ``x`` to outputs ``(N, C)``); put in eval mode meanwhile.
    loss_fn : mean-reduced loss ``loss_fn(outputs, targets)`` (e.g. ``nn.CrossEntropyLoss()``); see the module
        docstring for the conventions it must follow (checked).
    data : ``(x, y)`` tensors or a :class:`poprisk.data.Split` (its training part is used).
    method : one of :data:`METHODS`; default :data:`DEFAULT_METHOD` (``"ggn"``). See the module docstring.
    n_probes : Rademacher probes of ``"hutchinson"``.
    mc_samples : sampled labels per example of ``"mc_fisher"``.
    seed : seed of the random draws (``"mc_fisher"``, ``"hutchinson"``); the result is a function of it.
    batch_size : at most this many examples per chunk (bounds memory; ``None``: as many as about 512 MB of
        activations allow).
    exact_path : how ``"exact"`` is computed: ``"auto"`` (output-Hessian factors when the net is piecewise
        linear in each weight, Hessian–vector products otherwise), ``"factor"`` (factors; ``ValueError`` if the
        net is not piecewise linear) or ``"hvp"`` (always Hessian–vector products: slow, but independent of the
        GGN computation — the reference that checks chapter 8's theorem). Other methods ignore it.

    Returns ``{module_name: tensor shaped like that module's weight}`` on the weight's device and dtype.
    ``"ggn"`` (for a loss convex in the outputs), ``"mc_fisher"``, ``"empirical_fisher"`` and
    ``"authors_sq_ce"`` are non-negative; ``"exact"`` and ``"hutchinson"`` can be negative: use
    :func:`positive` before handing an estimate to a quantizer that needs strictly positive importances.
    Raises ``TypeError``/``ValueError`` naming the argument for bad input (before any expensive work), and
    ``ValueError`` when the model's outputs or the estimate are not finite.
    """
    method = _check_method(method)
    kind = _loss_kind(loss_fn, method)
    n_probes, mc_samples, seed, batch_size = _options(n_probes, mc_samples, seed, batch_size)
    exact_path = _check_exact_path(exact_path)
    layers = compressible_layers(model)
    param = _check_model(model, layers)
    x, y = _as_data(data, param.device)
    with _prepared(model, layers), torch.enable_grad():
        kind, per_example, linear = _probe(model, layers, x, y, loss_fn, kind, method, exact_path)
        step = _chunk_size(x.shape[0], batch_size, per_example)
        if method == "hutchinson":
            h = _hutchinson(model, layers, x, y, loss_fn, n_probes, seed, step)
        elif method == "exact" and not linear:
            h = _exact_hvp(model, layers, x, y, loss_fn, step)
        else:
            gen = torch.Generator(device="cpu").manual_seed(seed)
            h = _diag_from_seeds(model, layers, x, y, loss_fn, kind, method, gen, mc_samples, step)
    h = {name: t.detach() for name, t in h.items()}
    bad = [name for name, t in h.items() if not torch.isfinite(t).all()]
    if bad:
        raise ValueError(f"the {method!r} estimate is not finite in layers {bad} (overflow: the outputs or the "
                         "curvature are too large for the model's dtype)")
    if method == "authors_sq_ce":
        h = normalize(h)
    return h


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
        scale = t.abs().mean()
        out[key] = t.clamp_min(floor * scale) if scale > 0 else torch.ones_like(t)
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


# ----------------------------------------------------------------------------------- full matrices (tiny nets)
def curvature_matrices(model: nn.Module, loss_fn, data, *, max_weights: int = 4000) -> dict[str, torch.Tensor]:
    """The full ``d × d`` Hessian, GGN and residual matrices over all Linear/Conv weights (tiny nets only).

    Weights are flattened layer by layer in :func:`poprisk.models.compressible_layers` order (biases are held
    fixed). The three matrices are computed independently — ``"hessian"`` by double differentiation of the mean
    loss, ``"ggn"`` as ``(1/n) Σ_i J_iᵀ Λ_i J_i`` from explicit per-example Jacobians and output Hessians, and
    ``"residual"`` as ``(1/n) Σ_i Σ_c (∂ℓ_i/∂z_c) ∇²z_ic`` — so that chapter 8 can check ``H = G + R``.
    Eval mode, as in :func:`hessian_diag` (same conventions for ``loss_fn`` and ``data``). Raises ``ValueError``
    when ``d > max_weights``.
    """
    from torch.func import functional_call, hessian, jacrev, vmap

    kind = _loss_kind(loss_fn, "ggn")
    max_weights = checks.integer(max_weights, "max_weights", low=1)
    layers = compressible_layers(model)
    param = _check_model(model, layers)
    names = [f"{name}.weight" if name else "weight" for name, _ in layers]
    shapes = [m.weight.shape for _, m in layers]
    sizes = [m.weight.numel() for _, m in layers]
    d = sum(sizes)
    if d > max_weights:
        raise ValueError(f"the model has {d} weights; full matrices are for tiny nets (max_weights={max_weights})")
    x, y = _as_data(data, param.device)
    flat0 = torch.cat([m.weight.detach().reshape(-1) for _, m in layers])

    def outputs(flat, xs):
        parts = dict(zip(names, (t.reshape(s) for t, s in zip(torch.split(flat, sizes), shapes))))
        return functional_call(model, parts, (xs,))

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            z = outputs(flat0, x)
        _check_outputs(z)
        if z.dim() != 2:
            raise ValueError(f"curvature_matrices needs model outputs shaped (N, C), got {tuple(z.shape)}")
        kind = _check_targets(loss_fn, kind, y, z.shape[1])
        _check_loss_convention(loss_fn, z[:_PROBE], y[:_PROBE])
        with _quiet_func():
            hess = hessian(lambda f: loss_fn(outputs(f, x), y))(flat0)
            jac = vmap(jacrev(lambda f, xi: outputs(f, xi.unsqueeze(0))[0]), in_dims=(None, 0))(flat0, x)
            _, grad_z, lam, p = _per_example_loss_terms(z, y, loss_fn, kind)
            if lam is None:
                lam = torch.diag_embed(p) - p.unsqueeze(2) * p.unsqueeze(1)
            n = x.shape[0]
            ggn = torch.einsum("icp,icd,idq->pq", jac, lam, jac) / n
            residual = hessian(lambda f: (outputs(f, x) * grad_z).sum() / n)(flat0)
    finally:
        model.train(was_training)
    return {"hessian": hess.detach(), "ggn": ggn.detach(), "residual": residual.detach()}


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


# ------------------------------------------------------------------------------------------ cost vs accuracy
def _sync(device):
    """Wait for queued GPU work, so that wall-clock timings cover it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed_gradient(model, loss_fn, x, y) -> float:
    params = [p for p in model.parameters() if p.requires_grad]
    saved = [p.grad for p in params]
    was_training = model.training
    model.eval()
    try:
        _sync(x.device)
        start = time.perf_counter()
        grads = torch.autograd.grad(loss_fn(model(x), y), params)
        _sync(x.device)
        elapsed = time.perf_counter() - start
        del grads
    finally:
        model.train(was_training)
        for p, g in zip(params, saved):
            p.grad = g
    return elapsed


def gradient_seconds(model: nn.Module, loss_fn, data) -> float:
    """Wall time of one full-batch gradient pass (forward + ``backward()`` of the mean loss w.r.t. every
    parameter, eval mode; GPU work synchronized): the unit in which chapter 8 and ``bench/curvature.py`` express
    estimator costs. The parameters' ``.grad`` are left as they were."""
    _loss_kind(loss_fn, "ggn")
    layers = compressible_layers(model)
    x, y = _as_data(data, _check_model(model, layers).device)
    return _timed_gradient(model, loss_fn, x, y)


def compare_estimators(model: nn.Module, loss_fn, data, methods=METHODS, *, reference: str = "exact",
                       repeats: int = 3, n_probes: int = 100, seed: int = 0, batch_size: int | None = None,
                       exact_path: str = "auto"):
    """Cost and accuracy of curvature estimators, measured side by side in one run.

    Every method in ``methods`` (and ``reference``) is run on the same ``model`` and ``data``. Its cost is
    measured against gradient passes interleaved with its own runs (so that a machine whose load drifts
    affects both alike; GPU work is synchronized before each clock reading): ``x_gradient`` is the best of
    ``repeats`` runs over the best of the adjacent gradient passes (a method whose first run takes over 2 s
    runs once, beside three gradient passes). Accuracy is the Spearman rank correlation with the ``reference``
    estimate. ``exact_path`` is passed to :func:`hessian_diag` for ``"exact"`` (``"hvp"`` makes the exact
    diagonal independent of the GGN computation, as a reference should be).

    Returns ``(rows, estimates)``: ``rows`` a list of dicts with keys ``method``, ``seconds``, ``x_gradient``,
    ``spearman`` (pooled), ``spearman_nonzero`` (entries where the reference is not exactly zero),
    ``spearman_min_layer`` (the worst layer where the correlation is defined; NaN if it is nowhere),
    ``negative_fraction``; ``estimates`` ``{method: hessian_diag output}``.
    """
    if isinstance(methods, str) or not isinstance(methods, (list, tuple)):
        raise TypeError(f"methods must be a list or tuple of method names, got {methods!r}")
    if not methods:
        raise ValueError("methods must name at least one method")
    methods = [_check_method(m, "methods") for m in methods]
    reference = _check_method(reference, "reference")
    repeats = checks.integer(repeats, "repeats", low=1)
    _options(n_probes, 1, seed, batch_size)
    exact_path = _check_exact_path(exact_path)
    for m in dict.fromkeys([reference] + methods):
        _loss_kind(loss_fn, m)
    layers = compressible_layers(model)
    x, y = _as_data(data, _check_model(model, layers).device)
    kw = dict(n_probes=n_probes, seed=seed, batch_size=batch_size)
    _timed_gradient(model, loss_fn, x, y)  # warm-up
    estimates, seconds, ratio = {}, {}, {}
    for m in dict.fromkeys([reference] + methods):
        runs, grads = [], []
        for _ in range(repeats):
            grads.append(_timed_gradient(model, loss_fn, x, y))
            _sync(x.device)
            start = time.perf_counter()
            estimates[m] = hessian_diag(model, loss_fn, (x, y), m, exact_path=exact_path, **kw)
            _sync(x.device)
            runs.append(time.perf_counter() - start)
            grads.append(_timed_gradient(model, loss_fn, x, y))
            if runs[0] > 2.0:
                grads.append(_timed_gradient(model, loss_fn, x, y))
                break
        seconds[m], ratio[m] = min(runs), min(runs) / min(grads)
    ref = estimates[reference]
    rows = []
    for m in methods:
        est = estimates[m]
        per_layer = [_rank_correlation(est, ref, [k], True) for k in ref]
        defined = [r for r in per_layer if not math.isnan(r)]
        rows.append({"method": m, "seconds": seconds[m], "x_gradient": ratio[m],
                     "spearman": _rank_correlation(est, ref, list(ref), False),
                     "spearman_nonzero": _rank_correlation(est, ref, list(ref), True),
                     "spearman_min_layer": min(defined) if defined else float("nan"),
                     "negative_fraction": float((flatten(est) < 0).mean())})
    return rows, estimates
