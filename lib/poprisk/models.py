"""Networks of the paper's experiments (chapters 1, 8 and 9).

:class:`MLP` is the 784-256-256-10 ReLU network with dropout 0.2 and Xavier initialisation of the authors'
MNIST experiment (paper notes §6).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from poprisk import checks

#: Layer types whose weights the book compresses (quantizes, prunes) and whose curvature it estimates.
COMPRESSIBLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def compressible_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of every Linear/Conv layer of ``model``, in ``named_modules`` order: the weights that
    :mod:`poprisk.quantize`, :mod:`poprisk.prune` and :mod:`poprisk.curvature` act on (biases never are)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    layers = [(name, m) for name, m in model.named_modules() if isinstance(m, COMPRESSIBLE)]
    if not layers:
        raise ValueError("model has no Linear or Conv layer to compress")
    return layers


class MLP(nn.Module):
    """Fully connected ReLU network ``in_features → hidden[0] → … → n_classes`` with dropout after each
    hidden layer. Inputs of any shape ``(N, ...)`` are flattened. Weights use Xavier-uniform init, biases 0."""

    def __init__(self, in_features: int = 784, hidden: Sequence[int] = (256, 256), n_classes: int = 10,
                 dropout: float = 0.2):
        super().__init__()
        in_features = checks.integer(in_features, "in_features", low=1)
        n_classes = checks.integer(n_classes, "n_classes", low=1)
        if isinstance(hidden, (str, bytes)) or not isinstance(hidden, Sequence):
            raise TypeError(f"hidden must be a sequence of positive integers, got {hidden!r}")
        hidden = [checks.integer(h, "hidden", low=1) for h in hidden]
        dropout = checks.real(dropout, "dropout", low=0.0, high=1.0, high_open=True)
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
            width = h
        layers.append(nn.Linear(width, n_classes))
        self.net = nn.Sequential(*layers)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class VGGSmall(nn.Module):
    """The VGG-style CIFAR-10 network of the authors' experiment (paper notes §6, chapter 9).

    Convolution stages ``128-128-M-256-256-M-512-512-M-1024-M`` (3×3 convolutions with padding 1, each followed
    by a BatchNorm *without* affine parameters and a ReLU; ``M`` is 2×2 max pooling), then a global average
    pool to 1×1 (on 32×32 inputs the last stage is 2×2) and ``Linear(1024 → n_classes)``. ``width`` scales every
    channel count (``width=1`` is the paper's net; the tests use a thin one). Inputs are ``(N, C, H, W)`` with
    ``H, W`` ≥ 16. Weights use Kaiming-normal init for the convolutions, Xavier for the classifier, biases 0.
    """

    STAGES = (128, 128, "M", 256, 256, "M", 512, 512, "M", 1024, "M")

    def __init__(self, in_channels: int = 3, n_classes: int = 10, width: float = 1.0):
        super().__init__()
        in_channels = checks.integer(in_channels, "in_channels", low=1)
        n_classes = checks.integer(n_classes, "n_classes", low=1)
        width = checks.real(width, "width", low=0.0, low_open=True)
        layers: list[nn.Module] = []
        channels = in_channels
        for item in self.STAGES:
            if item == "M":
                layers.append(nn.MaxPool2d(2))
                continue
            out = max(1, round(item * width))
            layers += [nn.Conv2d(channels, out, kernel_size=3, padding=1),
                       nn.BatchNorm2d(out, affine=False), nn.ReLU()]
            channels = out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, n_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)
        nn.init.xavier_uniform_(self.classifier.weight)
        nn.init.zeros_(self.classifier.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(f"VGGSmall expects inputs shaped (N, C, H, W), got {tuple(x.shape)}")
        if x.shape[-1] < 16 or x.shape[-2] < 16:
            raise ValueError(f"VGGSmall needs images of at least 16×16 pixels (four 2×2 poolings), got {tuple(x.shape[-2:])}")
        return self.classifier(self.pool(self.features(x)).flatten(1))
