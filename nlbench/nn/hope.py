"""HOPE (arXiv §8.3, Eqs. 94-97): self-modifying Titans followed by a Continuum Memory System, and a
classifier that turns non-sequence inputs into token sequences for it.

Axis key: b batch, n tokens, d width.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from nlbench.nn.cms import ContinuumMemorySystem
from nlbench.nn.titans import SelfModifyingTitans


class RowTokenizer(nn.Module):
    """Images `(b, rows, cols)`: one token per row, a shared linear embedding plus a learned row position."""

    def __init__(self, rows: int, cols: int, dim: int):
        super().__init__()
        self.embed = nn.Linear(cols, dim)
        self.position = nn.Parameter(torch.randn(rows, dim) * 0.02)

    def forward(self, x: Tensor) -> Tensor:
        return self.embed(x) + self.position


class FeatureTokenizer(nn.Module):
    """Tabular rows `(b, features)`: one token per feature, `x_f * e_f + c_f` with learned per-feature
    embeddings (the FT-Transformer tokenizer), so features keep their identity without an order.

    `c_f` starts small and random, not zero: a feature whose value is 0 (a one-hot or missing-indicator column)
    would otherwise be an all-zero token, and the L2 normalisation in Titans has an unbounded gradient at 0
    (NaN after one step on heart disease)."""

    def __init__(self, n_features: int, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_features, dim) / dim**0.5)
        self.bias = nn.Parameter(torch.randn(n_features, dim) * 0.02)

    def forward(self, x: Tensor) -> Tensor:
        return x.unsqueeze(-1) * self.weight + self.bias


def make_tokenizer(input_shape: Sequence[int], dim: int) -> nn.Module:
    if len(input_shape) == 2:
        return RowTokenizer(input_shape[0], input_shape[1], dim)
    if len(input_shape) == 1:
        return FeatureTokenizer(input_shape[0], dim)
    raise ValueError(f"HOPE tokenizes (rows, cols) images or (features,) tables; got input shape {tuple(input_shape)}")


class HOPEBlock(nn.Module):
    """o = x + Titans(LN(x)) (Eqs. 83-93), then y = CMS(o) (Eqs. 94-97); `cms=None` is the no-CMS ablation."""

    def __init__(self, dim: int, titans: dict[str, Any], cms: dict[str, Any] | None):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.titans = SelfModifyingTitans(dim, **titans)
        self.cms = ContinuumMemorySystem(dim, **cms) if cms is not None else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.cms(x + self.titans(self.norm(x)))


class HOPEClassifier(nn.Module):
    """Tokens -> `depth` HOPE blocks -> last token -> LayerNorm -> Linear.

    The last token's read has seen the whole sequence through the memories, as in a sequence model;
    measured on unpermuted digits (5 epochs, SGD 0.1), it beat mean pooling for Titans alone (0.88 vs 0.63).

    `titans` holds `SelfModifyingTitans` options (memory_hidden, chunk sizes, memory_lr, memory_decay,
    self_modify, grad_mode); `cms` holds `ContinuumMemorySystem` options (hidden, periods, variant), or is
    None for self-modifying Titans alone.
    """

    def __init__(self, input_shape: Sequence[int], n_classes: int, dim: int, titans: dict[str, Any],
                 cms: dict[str, Any] | None, depth: int = 1):
        super().__init__()
        self.tokenizer = make_tokenizer(input_shape, dim)
        self.blocks = nn.Sequential(*(HOPEBlock(dim, titans, cms) for _ in range(depth)))
        self.head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, n_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.blocks(self.tokenizer(x))[:, -1])
