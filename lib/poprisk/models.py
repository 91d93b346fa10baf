"""Networks of the paper's experiments (chapters 1, 8 and 9).

:class:`MLP` is the 784-256-256-10 ReLU network with dropout 0.2 and Xavier initialisation of the authors'
MNIST experiment (paper notes §6).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class MLP(nn.Module):
    """Fully connected ReLU network ``in_features → hidden[0] → … → n_classes`` with dropout after each
    hidden layer. Inputs of any shape ``(N, ...)`` are flattened. Weights use Xavier-uniform init, biases 0."""

    def __init__(self, in_features: int = 784, hidden: Sequence[int] = (256, 256), n_classes: int = 10,
                 dropout: float = 0.2):
        super().__init__()
        for name, value in (("in_features", in_features), ("n_classes", n_classes)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if any(not isinstance(h, int) or h < 1 for h in hidden):
            raise ValueError(f"hidden must be a sequence of positive integers, got {hidden!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
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
