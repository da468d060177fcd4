"""Delta Gradient Descent as a torch optimizer (arXiv §4.5, Eq. 57).

    W <- W (I - eta' x x^T) - eta' grad_W L,    eta' = eta / (1 + eta)

GD treats every sample on its own. DGD's L2 objective also decays the old weights along the current input
direction. This adaptive, data-dependent forgetting needs the layer's input x. The optimizer takes the model,
hooks every `nn.Linear` whose weight it optimises, and keeps the input of the last training forward.

Choices:
- The decay direction is the normalised input `x / |x|`, as Eq. 57 assumes (`|x| = 1`, so `eta' = eta / (1 + eta)`
  is the exact Sherman-Morrison step); the gradient is the model's own, at the raw input. For one sample of unit
  norm the step is the exact proximal argmin of Eq. 56 (a test holds this); for raw inputs of another norm the
  decay is that of the unit-norm input along the same direction (the paper's normalisation, not `eta / (1 +
  eta |x|^2)`).
- A minibatch uses the mean of its `x x^T`, since the gradient is the mean over the batch too; the batch step
  is then first-order close to the exact batch argmin (error O(eta^2), tested).
- Under the CMS schedule a level steps once per chunk on the *sum* of C minibatch gradients (Eq. 71), so its
  decay is the sum of the C minibatch means of `x x^T` too: the decay is scaled by the number of training
  forwards since the level's last step, keeping the decay-to-gradient ratio of a period-1 step.
- Token inputs `(..., d)` are flattened to rows. The rows of every call of a layer since the last step are
  used, for a layer called several times in one forward.
- Every other parameter (biases, non-linear layers, and a linear layer not run in the last forward) gets plain
  SGD with `eta'`. `rules` says which parameter got which rule.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from nlbench.optim.base import ParameterwiseOptimizer, with_weight_decay
from nlbench.optim.catalog import OptimizerSpec, register_optimizer


def dgd_step(W: torch.Tensor, grad: torch.Tensor, x: torch.Tensor, lr: float, steps: int = 1) -> torch.Tensor:
    """Eq. 57 for a batch: `W (I - eta' steps mean_b xhat_b xhat_b^T) - eta' grad` (`grad` summed over `steps`
    minibatches whose inputs are the rows of `x`)."""
    eta = lr / (1 + lr)
    xh = x.reshape(-1, x.shape[-1])
    xh = xh / xh.norm(dim=1, keepdim=True).clamp_min(1e-12)
    WX = (W @ xh.T) @ xh * (steps / xh.shape[0])  # W mean(x x^T) without forming the d x d matrix
    return W - eta * WX - eta * grad


class DGD(ParameterwiseOptimizer):
    """Delta gradient descent for the linear layers of `model`, plain SGD (step eta') elsewhere."""

    def __init__(self, params: Iterable[Any], model: nn.Module, lr: float = 0.1, weight_decay: float = 0.0):
        super().__init__(params, {"lr": lr, "weight_decay": weight_decay})
        optimised = {id(p) for g in self.param_groups for p in g["params"]}
        self._inputs: dict[int, torch.Tensor] = {}
        self._forwards = 0  # training forwards since the last step: the minibatches a CMS level summed
        self._handles = [model.register_forward_pre_hook(self._count)]
        self.rules: dict[str, str] = {}
        linear_weights = set()
        for module in model.modules():
            if isinstance(module, nn.Linear) and id(module.weight) in optimised:
                linear_weights.add(id(module.weight))
                self._handles.append(module.register_forward_pre_hook(self._capture(id(module.weight))))
        for name, p in model.named_parameters():
            if id(p) in optimised:
                self.rules[name] = "dgd" if id(p) in linear_weights else "sgd"

    def _count(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        if module.training and torch.is_grad_enabled():
            self._forwards += 1

    def _capture(self, key: int) -> Any:
        def hook(module: nn.Module, args: tuple[Any, ...]) -> None:
            if module.training and torch.is_grad_enabled():
                x = args[0].detach().reshape(-1, args[0].shape[-1])
                prev = self._inputs.get(key)  # a layer called several times per forward: all its inputs
                self._inputs[key] = x if prev is None else torch.cat([prev, x])
        return hook

    def describe(self) -> str:
        """One line: how many parameter tensors got DGD and how many fell back to SGD."""
        dgd = [n for n, r in self.rules.items() if r == "dgd"]
        return f"DGD on {len(dgd)} linear weights ({', '.join(dgd)}); SGD on {len(self.rules) - len(dgd)} others"

    def update(self, p: torch.Tensor, grad: torch.Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        lr, grad = group["lr"], with_weight_decay(p, grad, group)
        x = self._inputs.get(id(p))
        if x is not None and x.shape[-1] == p.shape[1]:
            p.copy_(dgd_step(p, grad, x, lr, steps=max(1, self._forwards)))
        else:
            p.sub_(lr / (1 + lr) * grad)

    def after_step(self) -> None:
        self._inputs.clear()  # an input is used once: the next step needs the next forward's
        self._forwards = 0


def _build(params: Any, hp: Any, opts: Any, model: nn.Module | None) -> DGD:
    if model is None:
        raise ValueError("DGD needs the model, to capture its linear layers' inputs")
    return DGD(params, model, lr=hp["lr"], weight_decay=hp["weight_decay"])


register_optimizer(OptimizerSpec("dgd", _build, "Delta Gradient Descent on the linear layers (arXiv Eq. 57)",
                                 strategy={"lr": 0.1}))
