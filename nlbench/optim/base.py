"""The step loop the deep optimizers share: one update per parameter that has a gradient."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch


class ParameterwiseOptimizer(torch.optim.Optimizer, ABC):
    """`step()` evaluates the closure (if any), calls `update` for every parameter with a gradient, then
    `after_step`; subclasses write only the update rule."""

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = None if closure is None else torch.enable_grad()(closure)()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self.update(p, p.grad, self.state[p], group)
        self.after_step()
        return loss

    @abstractmethod
    def update(self, p: torch.Tensor, grad: torch.Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        """Change `p` in place from its gradient, keeping what the rule remembers in `state`."""

    def after_step(self) -> None:  # noqa: B027 - optional hook
        """Work once per step, after every parameter was updated."""


def with_weight_decay(p: torch.Tensor, grad: torch.Tensor, group: dict[str, Any]) -> torch.Tensor:
    """The gradient plus L2 weight decay (coupled, as torch's SGD does it)."""
    return grad + group["weight_decay"] * p if group["weight_decay"] else grad
