"""Training loop and evaluation (chapters 1, 8 and 9).

:func:`fit` is plain mini-batch SGD with momentum and weight decay (the authors' MNIST protocol). The whole
data set stays on the model's device and mini-batches are index slices of it, so there is no DataLoader, no
per-sample Python work and no host↔device copy in the hot loop, and the optimizer is PyTorch's fused SGD
(one kernel for all parameters) where the installed version has it. ``bench/train.py`` measures what that buys.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from poprisk.config import progress_bar


@dataclass(frozen=True)
class Metrics:
    """Mean cross-entropy (nats) and accuracy of a model on a data set."""

    loss: float
    accuracy: float


@dataclass
class History:
    """Mean training loss of each epoch."""

    epoch_loss: list[float] = field(default_factory=list)


def _check_xy(x, y, name: str):
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise TypeError(f"{name}: x and y must be torch tensors, got {type(x).__name__}, {type(y).__name__}")
    if x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise ValueError(f"{name}: x and y must have the same, non-zero length; got {x.shape[0]} and {y.shape[0]}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name}: x contains non-finite values")


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
    """
    _check_xy(x, y, "fit")
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if lr <= 0:
        raise ValueError(f"lr must be positive, got {lr!r}")
    dev = next(model.parameters()).device
    x, y = x.to(dev), y.to(dev)
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
        history.epoch_loss.append(total.item() / n)
        bar.set_postfix(loss=f"{history.epoch_loss[-1]:.4f}")
    model.eval()
    return history


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, *, batch_size: int = 4096) -> torch.Tensor:
    """The logits of ``model`` (eval mode) on ``x``, as a float32 tensor on the CPU (for calibration and
    per-example losses: chapters 1, 9 and 10)."""
    if not isinstance(x, torch.Tensor) or x.shape[0] == 0:
        raise ValueError("predict: x must be a non-empty torch tensor")
    was_training = model.training
    model.eval()
    dev = next(model.parameters()).device
    out = torch.cat([model(x[s:s + batch_size].to(dev)).float().cpu() for s in range(0, x.shape[0], batch_size)])
    model.train(was_training)
    return out


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 4096) -> Metrics:
    """Mean cross-entropy (nats) and accuracy of ``model`` (in eval mode: dropout off) on ``(x, y)``."""
    _check_xy(x, y, "evaluate")
    was_training = model.training
    model.eval()
    dev = next(model.parameters()).device
    loss_sum, correct = 0.0, 0
    for start in range(0, x.shape[0], batch_size):
        xb, yb = x[start:start + batch_size].to(dev), y[start:start + batch_size].to(dev)
        logits = model(xb)
        loss_sum += nn.functional.cross_entropy(logits, yb, reduction="sum").item()
        correct += (logits.argmax(1) == yb).sum().item()
    model.train(was_training)
    n = x.shape[0]
    return Metrics(loss=loss_sum / n, accuracy=correct / n)
