"""Training loop and evaluation (chapters 1, 8 and 9).

:func:`fit` is plain mini-batch SGD with momentum and weight decay (the authors' MNIST protocol). The whole
data set stays on the model's device and mini-batches are index slices of it, so there is no DataLoader, no
per-sample Python work and no host↔device copy in the hot loop, and the optimizer is PyTorch's fused SGD
(one kernel for all parameters) where the installed version has it. ``bench/train.py`` measures what that buys.

Reproducibility: a call of :func:`fit` is a pure function of the model's initial weights, the data and its
arguments on a given device and library version. The shuffling order and the data transform use a local
generator seeded with ``seed``; dropout (which draws from torch's global generator) runs inside a forked
copy of that generator seeded from ``seed``, so the caller's global random state is left as it was; and
training uses the fixed number of CPU threads :func:`poprisk.config.train_threads`.

:func:`evaluate` reports the mean cross-entropy, the accuracy and the expected calibration error
(:mod:`poprisk.calibration`), and refuses a model whose outputs are not finite instead of returning NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from poprisk import checks
from poprisk.config import progress_bar, torch_threads, train_threads


@dataclass(frozen=True)
class Metrics:
    """Mean cross-entropy (nats), accuracy and expected calibration error (15 equal-width bins) of a model
    on a data set."""

    loss: float
    accuracy: float
    ece: float = float("nan")


@dataclass
class History:
    """Mean training loss of each epoch."""

    epoch_loss: list[float] = field(default_factory=list)


def _check_model(model, name: str):
    if not isinstance(model, nn.Module):
        raise TypeError(f"{name}: model must be a torch.nn.Module, got {type(model).__name__}")
    params = list(model.parameters())
    if not params:
        raise ValueError(f"{name}: model has no parameters")
    bad = [n for n, p in model.named_parameters() if not torch.isfinite(p.detach()).all()]
    if bad:
        raise ValueError(f"{name}: model has non-finite weights in {bad}")
    return params[0].device


def _check_x(x, name: str):
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: x must be a torch tensor, got {type(x).__name__}")
    if x.ndim < 2 or x.shape[0] == 0:
        raise ValueError(f"{name}: x must be a non-empty (N, ...) tensor with at least 2 dimensions, "
                         f"got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name}: x must be a floating-point tensor, got {x.dtype}")
    if x.requires_grad:
        raise ValueError(f"{name}: x requires grad; pass x.detach() (the data are not parameters)")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name}: x contains non-finite values")


def _check_xy(x, y, name: str):
    _check_x(x, name)
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"{name}: y must be a torch tensor, got {type(y).__name__}")
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"{name}: y must have shape ({x.shape[0]},) to match x, got {tuple(y.shape)}")
    if y.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        raise TypeError(f"{name}: y must hold integer class labels, got {y.dtype}")
    if y.min() < 0:
        raise ValueError(f"{name}: y contains negative labels")


def _check_outputs(logits: torch.Tensor, y: torch.Tensor, name: str):
    if logits.ndim != 2 or logits.shape[0] != y.shape[0]:
        raise ValueError(f"{name}: the model must return logits shaped (N, C); got {tuple(logits.shape)}")
    if int(y.max()) >= logits.shape[1]:
        raise ValueError(f"{name}: label {int(y.max())} is outside the model's {logits.shape[1]} classes")
    if not torch.isfinite(logits).all():
        raise ValueError(f"{name}: the model's outputs are not finite (NaN or inf) — its weights or the "
                         "training diverged (try a smaller lr)")


def sgd(params, **kwargs) -> torch.optim.SGD:
    """SGD with the fused multi-tensor kernel when this PyTorch/device supports it, else the plain loop.

    On the CPU the fused step of the 784-256-256-10 MLP is about 2.5× faster than the per-parameter loop,
    which matters at the small batches of the paper's protocol; the update rule is the same.
    """
    params = list(params)
    try:
        return torch.optim.SGD(params, fused=True, **kwargs)
    except (RuntimeError, TypeError, ValueError):  # older PyTorch, or a device without the fused kernel
        return torch.optim.SGD(params, **kwargs)


def fit(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, epochs: int = 25, batch_size: int = 10,
        lr: float = 0.01, momentum: float = 0.9, weight_decay: float = 1e-4, seed: int = 0,
        progress: bool = True, desc: str = "train", transform=None) -> History:
    """Train ``model`` in place with SGD on cross-entropy; return the per-epoch mean training loss.

    ``x`` and ``y`` are moved to the model's device once. The shuffling order is drawn from a generator seeded
    with ``seed``, so the same call gives the same model (on the same device and library versions).
    ``transform(batch, generator) -> batch``, if given, is applied to every mini-batch of inputs with the same
    seeded generator (data augmentation, e.g. :func:`poprisk.experiments.augment_images` in chapter 9).
    Dropout is seeded from ``seed`` too (see the module docstring), so two calls on copies of one model give
    identical models. A loss that becomes non-finite stops training with a ``ValueError`` at the end of that
    epoch (the check costs one host sync per epoch).
    """
    dev = _check_model(model, "fit")
    _check_xy(x, y, "fit")
    checks.model_input(model, x, y, name="fit")
    desc = checks.text(desc, "desc")
    epochs = checks.integer(epochs, "epochs", low=1)
    batch_size = checks.integer(batch_size, "batch_size", low=1)
    lr = checks.real(lr, "lr", low=0.0, low_open=True)
    momentum = checks.real(momentum, "momentum", low=0.0, high=1.0, high_open=True)
    weight_decay = checks.real(weight_decay, "weight_decay", low=0.0)
    seed = checks.seed(seed)
    progress = checks.boolean(progress, "progress")
    if transform is not None and not callable(transform):
        raise TypeError(f"transform must be callable or None, got {type(transform).__name__}")
    x, y = x.to(dev), y.to(dev)
    devices = [dev] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), torch_threads(train_threads()):
        torch.manual_seed(seed)
        return _fit(model, x, y, epochs, batch_size, lr, momentum, weight_decay, seed, progress, desc,
                    transform, dev)


def _fit(model, x, y, epochs, batch_size, lr, momentum, weight_decay, seed, progress, desc, transform, dev):
    gen = torch.Generator(device="cpu").manual_seed(seed)
    opt = sgd(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    n = x.shape[0]
    history = History()
    model.train()
    bar = progress_bar(range(epochs), desc=desc, disable=not progress, leave=False)
    for _ in bar:
        order = torch.randperm(n, generator=gen).to(dev)
        # One gather per epoch; the mini-batches are then contiguous views of the shuffled copy.
        xs, ys = x[order], y[order]
        total = torch.zeros((), device=dev)
        for start in range(0, n, batch_size):
            xb, yb = xs[start:start + batch_size], ys[start:start + batch_size]
            opt.zero_grad(set_to_none=True)
            if transform is not None:
                xb = transform(xb, gen)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            total += loss.detach() * yb.shape[0]
        # One host sync per epoch, not per mini-batch (on a GPU a per-step check serializes launch and
        # execution). The losses are >= 0, so the epoch's sum is non-finite iff one of its losses was, and the
        # epoch reported is the one a per-step check would stop in.
        epoch_total = total.item()
        if not math.isfinite(epoch_total):
            raise ValueError(f"fit: the training loss became non-finite ({epoch_total}) in epoch "
                             f"{len(history.epoch_loss) + 1} — training diverged (try a smaller lr)")
        history.epoch_loss.append(epoch_total / n)
        bar.set_postfix(loss=f"{history.epoch_loss[-1]:.4f}")
    model.eval()
    return history


def _forward(model: nn.Module, x: torch.Tensor, batch_size, dev) -> torch.Tensor:
    """Logits of ``model`` in eval mode on ``x``, batch by batch, gathered on the CPU in float64."""
    batch_size = checks.integer(batch_size, "batch_size", low=1)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return torch.cat([model(x[s:s + batch_size].to(dev)).double().cpu()
                              for s in range(0, x.shape[0], batch_size)])
    finally:
        model.train(was_training)


def predict(model: nn.Module, x: torch.Tensor, *, batch_size: int = 4096) -> torch.Tensor:
    """The logits of ``model`` (eval mode) on ``x``, as a float32 tensor on the CPU (for calibration and
    per-example losses: chapters 1, 9 and 10)."""
    dev = _check_model(model, "predict")
    _check_x(x, "predict")
    checks.model_input(model, x, name="predict")
    out = _forward(model, x, batch_size, dev)
    if out.ndim != 2 or not torch.isfinite(out).all():
        raise ValueError("predict: the model's outputs are not finite logits shaped (N, C)")
    return out.float()


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 4096) -> Metrics:
    """Mean cross-entropy (nats), accuracy and ECE of ``model`` (in eval mode: dropout off) on ``(x, y)``."""
    from poprisk import calibration

    dev = _check_model(model, "evaluate")
    _check_xy(x, y, "evaluate")
    checks.model_input(model, x, y, name="evaluate")
    logits, y = _forward(model, x, batch_size, dev), y.cpu()
    _check_outputs(logits, y, "evaluate")
    loss = nn.functional.cross_entropy(logits, y).item()
    accuracy = (logits.argmax(1) == y).double().mean().item()
    return Metrics(loss=loss, accuracy=accuracy, ece=calibration.expected_calibration_error(logits, y))
