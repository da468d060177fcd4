"""The shared backbone: every Avalanche baseline trains the same MLP unless a suite says otherwise."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid,
                                           "gelu": nn.GELU}


class MLP(nn.Module):
    """Flatten -> [Linear -> activation (-> Dropout)] x len(hidden_sizes) -> Linear(n_classes)."""

    def __init__(self, in_features: int, hidden_sizes: Sequence[int], n_classes: int, activation: str = "relu",
                 dropout: float = 0.0):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for h in hidden_sizes:
            layers += [nn.Linear(width, h), ACTIVATIONS[activation]()]
            if dropout:  # no module at 0, so the default model's state_dict keys stay what they were
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, n_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
