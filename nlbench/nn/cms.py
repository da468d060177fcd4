"""Continuum Memory System (arXiv §7.1, Eqs. 70-74): MLP blocks that learn at different frequencies.

The module only holds the blocks and says which parameters form which level (`levels()`); the update
schedule of Eq. 71 is applied by `nlbench.optim.LevelScheduledOptimizer`. Level l's chunk size C(l)
is its `period`: its parameters change once every `period` optimizer steps.

Variants:
- "sequential" (Eqs. 70, 73): y = x + MLP_k(... x + MLP_1(x)), residual chain in the given order; each
  level's state persists across the whole stream (a continual learner never restarts a context).
- "nested" (Eq. 72): the same chain, but every level except the slowest has a separate initial state
  theta_0 that its next-slower level learns: at each chunk boundary of that parent, theta_0 takes one step
  on the sum of the task-loss gradients the fast level received over the parent's chunk (a first-order
  meta-gradient, since d theta_fast / d theta_0 = I to first order), and the fast level is re-initialised
  from it. Periods must be distinct and each must divide the next slower one.
- "independent" (Eq. 74): y = x + sum_l w_l MLP_l(x), with w = softmax of learnable logits (Agg); the
  aggregation weights learn at every step.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

CMS_VARIANTS = ("sequential", "nested", "independent")


@dataclass
class LevelSpec:
    """A group of parameters updated once per `period` steps; `meta_of` marks a nested initial state
    (its gradient is the fast level's accumulated gradient, and the fast level is reset to it)."""

    name: str
    params: list[nn.Parameter]
    period: int
    index: int  # position of the CMS level, to pick its learning rate
    meta_of: list[nn.Parameter] | None = None


class CMSBlock(nn.Module):
    """MLP^(f) of Eq. 70 (normalisation restored): LayerNorm -> Linear -> GELU -> Linear."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def check_periods(periods: Sequence[int], variant: str) -> None:
    """Raise ValueError for a schedule the variant cannot run."""
    if variant not in CMS_VARIANTS:
        raise ValueError(f"cms_variant must be one of {CMS_VARIANTS}, got {variant!r}")
    if not periods or any(p < 1 for p in periods):
        raise ValueError(f"frequencies must be a non-empty list of positive ints, got {list(periods)!r}")
    if variant == "nested":
        ordered = sorted(periods)
        for fast, slow in zip(ordered, ordered[1:], strict=False):
            if slow == fast or slow % fast:
                raise ValueError(f"nested CMS needs distinct frequencies, each dividing the next slower one; "
                                 f"{slow} is not a multiple of {fast} (got {list(periods)!r})")


class ContinuumMemorySystem(nn.Module):
    def __init__(self, dim: int, hidden: int, periods: Sequence[int] = (1, 4, 16),
                 variant: str = "sequential"):
        super().__init__()
        check_periods(periods, variant)
        self.periods, self.variant = tuple(periods), variant
        self.blocks = nn.ModuleList(CMSBlock(dim, hidden) for _ in periods)
        if variant == "independent":
            self.agg_logits = nn.Parameter(torch.zeros(len(periods)))
        if variant == "nested":
            slowest = max(periods)
            self.initial = nn.ModuleDict({str(i): copy.deepcopy(block) for i, block in enumerate(self.blocks)
                                          if periods[i] != slowest})

    def forward(self, x: Tensor) -> Tensor:
        if self.variant == "independent":
            weights = self.agg_logits.softmax(dim=0)
            return x + sum(w * block(x) for w, block in zip(weights, self.blocks, strict=True))
        for block in self.blocks:
            x = x + block(x)
        return x

    def levels(self, prefix: str = "") -> list[LevelSpec]:
        prefix = f"{prefix}." if prefix else ""
        specs = [LevelSpec(f"{prefix}level{i}", list(block.parameters()), period, i)
                 for i, (block, period) in enumerate(zip(self.blocks, self.periods, strict=True))]
        if self.variant == "nested":
            for key, init in self.initial.items():
                i = int(key)
                parent = min(p for p in self.periods if p > self.periods[i])
                parent_index = self.periods.index(parent)
                specs.append(LevelSpec(f"{prefix}level{i}.init", list(init.parameters()), parent, parent_index,
                                       meta_of=specs[i].params))
        return specs


class CMSClassifier(nn.Module):
    """The MLP backbone with its hidden layers replaced by a CMS chain: Linear -> CMS -> LayerNorm -> Linear."""

    def __init__(self, in_features: int, n_classes: int, dim: int, hidden: int,
                 periods: Sequence[int] = (1, 4, 16), variant: str = "sequential"):
        super().__init__()
        self.embed = nn.Sequential(nn.Flatten(), nn.Linear(in_features, dim))
        self.cms = ContinuumMemorySystem(dim, hidden, periods, variant)
        self.head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, n_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.cms(self.embed(x)))
