"""Validation, model plumbing and memory chunking of the curvature estimators (chapter 8): the data and
loss checks, the hooks that capture layer inputs, the probe pass that sizes the chunks."""

from __future__ import annotations

import contextlib
import warnings

import torch
from torch import nn
from torch.nn import functional as F


METHODS = ("exact", "ggn", "mc_fisher", "empirical_fisher", "hutchinson", "authors_sq_ce")
#: The method the book uses downstream (see the module docstring for why).
DEFAULT_METHOD = "ggn"

_CHUNK_ELEMS = 1 << 23  # elements per temporary tensor in chunked loops (~32 MB in float32)
_MEMORY_BYTES = 512 << 20  # activations kept for back-propagation per chunk of examples
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


def _chunk_size(n, batch_size, per_example):
    """Examples per chunk: ``batch_size`` (all of ``data`` if None), fewer where memory asks for it."""
    fit = max(1, int(_MEMORY_BYTES // max(1.0, per_example)))
    return min(n if batch_size is None else batch_size, fit)


def _chunks(x, y, step):
    for start in range(0, x.shape[0], step):
        yield x[start:start + step], y[start:start + step]

