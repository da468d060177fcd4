"""A learned optimizer: momentum SGD whose learning rate and momentum come from a context-flow controller.

The NL view: the optimizer is a level of its own, and it learns from the context flow of the level below it,
that is the losses and gradients it sees. A tracker condenses that flow into features:
- the log loss (EMA);
- the loss trend (relative change against its EMA);
- the log gradient norm;
- the gradient-norm trend;
- the cosine between this gradient and the last one.

A linear controller maps the features to `lr` and `momentum`, squashed into their declared bounds:

    lr = lo + (hi - lo) sigmoid(a . f),   mu = lo' + (hi' - lo') sigmoid(b . f)
    m <- mu m + g;   W <- W - lr m

Meta-loss: the differentiable one-step look-ahead loss `L_{t+1}(W_{t+1}(lr_t, mu_t))`, the next minibatch's
loss at the parameters this step produced. By the chain rule its gradient needs only the next gradient
`g_{t+1}` (hypergradient descent; Baydin et al., 2018):

    dL_{t+1}/d lr_t = -g_{t+1} . (mu_t m_t + g_t),     dL_{t+1}/d mu_t = -lr_t g_{t+1} . m_t

It flows into the controller through autograd of `(lr_t, mu_t)(features_t)`, and the controller takes an Adam
step (`meta_lr`). No second forward pass is needed, so it works inside Avalanche's loop, which never passes a
closure. The loss reaches the tracker through `observe_loss`, which nlbench's template calls before every
step. Without it, the loss features stay 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from nlbench.core.params import POSITIVE, Interval, NumberList, Param
from nlbench.optim.catalog import OptimizerSpec, register_optimizer

N_FEATURES = 6  # five context features and a bias


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def squash(z: torch.Tensor, bounds: tuple[float, float]) -> torch.Tensor:
    """`lo + (hi - lo) sigmoid(z)`, clamped so rounding can never leave [lo, hi]."""
    lo, hi = bounds
    return (lo + (hi - lo) * torch.sigmoid(z)).clamp(lo, hi)


class MetaOptimizer(torch.optim.Optimizer):
    """Momentum SGD with lr and momentum produced by a meta-learned controller (see module docstring)."""

    def __init__(self, params: Iterable[Any], lr: float = 0.1, momentum: float = 0.5,
                 lr_bounds: tuple[float, float] = (1e-3, 0.5), momentum_bounds: tuple[float, float] = (0.0, 0.99),
                 meta_lr: float = 0.01, ema: float = 0.9, weight_decay: float = 0.0):
        lr_bounds, momentum_bounds = tuple(lr_bounds), tuple(momentum_bounds)
        for name, value, (lo, hi) in (("lr", lr, lr_bounds), ("momentum", momentum, momentum_bounds)):
            if not lo < hi:
                raise ValueError(f"{name} bounds must be increasing, got {(lo, hi)}")
            if not lo <= value <= hi:
                raise ValueError(f"initial {name} {value} is outside its bounds {(lo, hi)}")
        super().__init__(params, {"weight_decay": weight_decay})
        self.lr_bounds, self.momentum_bounds = lr_bounds, momentum_bounds
        self.meta_lr, self.ema = meta_lr, ema
        weight = torch.zeros(2, N_FEATURES, dtype=torch.float64)  # the controller is tiny: float64
        for row, value, (lo, hi) in ((0, lr, lr_bounds), (1, momentum, momentum_bounds)):
            frac = min(max((value - lo) / (hi - lo), 0.01), 0.99)  # a bound itself is only reached in the limit
            weight[row, -1] = _logit(frac)
        # Non-parameter state under a string key: torch's state_dict keeps it as it is.
        self.state["meta"] = {"weight": weight, "adam_m": torch.zeros_like(weight),
                              "adam_v": torch.zeros_like(weight), "t": 0, "loss_ema": None, "loss": None,
                              "gnorm_ema": None, "features": None, "lr": lr, "momentum": momentum,
                              "meta_grad_norm": 0.0}

    @property
    def meta(self) -> dict[str, Any]:
        return self.state["meta"]

    def reset_memory(self) -> None:
        """Drop the momenta and the context tracker; the controller keeps what it learned (a slower level)."""
        meta = self.meta
        self.state.clear()
        meta.update(loss_ema=None, loss=None, gnorm_ema=None, features=None)
        self.state["meta"] = meta

    def observe_loss(self, loss: float) -> None:
        self.meta["loss"] = float(loss)

    def controls(self, features: torch.Tensor, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = weight @ features
        return squash(z[0], self.lr_bounds), squash(z[1], self.momentum_bounds)

    def _features(self, grads: list[torch.Tensor], prev: list[torch.Tensor | None]) -> torch.Tensor:
        meta, b = self.meta, self.ema
        gnorm = math.sqrt(sum(float(g.pow(2).sum()) for g in grads))
        meta["gnorm_ema"] = gnorm if meta["gnorm_ema"] is None else b * meta["gnorm_ema"] + (1 - b) * gnorm
        loss_feat = loss_trend = 0.0
        if meta["loss"] is not None:
            ema = meta["loss_ema"]
            meta["loss_ema"] = meta["loss"] if ema is None else b * ema + (1 - b) * meta["loss"]
            loss_feat = math.log(meta["loss_ema"] + 1e-8)
            loss_trend = (meta["loss"] - meta["loss_ema"]) / (meta["loss_ema"] + 1e-8)
        dot = sum(float((g * p).sum()) for g, p in zip(grads, prev, strict=True) if p is not None)
        pnorm = math.sqrt(sum(float(p.pow(2).sum()) for p in prev if p is not None))
        cosine = dot / (gnorm * pnorm) if gnorm > 0 and pnorm > 0 else 0.0
        gnorm_trend = (gnorm - meta["gnorm_ema"]) / (meta["gnorm_ema"] + 1e-8)
        raw = [loss_feat, loss_trend, math.log(gnorm + 1e-8), gnorm_trend, cosine]
        return torch.tensor([max(-10.0, min(10.0, v)) for v in raw] + [1.0], dtype=torch.float64)

    def _meta_step(self, grads: list[torch.Tensor], states: list[dict[str, Any]]) -> None:
        """Adam step of the controller on the look-ahead meta-loss of the previous step's controls."""
        meta = self.meta
        d_m = sum(float((g * s["prev_m"]).sum()) for g, s in zip(grads, states, strict=True) if "prev_m" in s)
        d_g = sum(float((g * s["prev_g"]).sum()) for g, s in zip(grads, states, strict=True) if "prev_g" in s)
        weight = meta["weight"].clone().requires_grad_(True)
        lr, mu = self.controls(meta["features"], weight)
        meta_loss = -lr * (mu * d_m + d_g)  # L_{t+1}(W_{t+1}(lr, mu)) up to terms free of the controller
        (grad,) = torch.autograd.grad(meta_loss, weight)
        meta["meta_grad_norm"] = float(grad.norm())
        meta["t"] += 1
        meta["adam_m"].mul_(0.9).add_(grad, alpha=0.1)
        meta["adam_v"].mul_(0.999).addcmul_(grad, grad, value=0.001)
        m_hat = meta["adam_m"] / (1 - 0.9 ** meta["t"])
        v_hat = meta["adam_v"] / (1 - 0.999 ** meta["t"])
        meta["weight"] -= self.meta_lr * m_hat / (v_hat.sqrt() + 1e-8)

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = None if closure is None else torch.enable_grad()(closure)()
        if loss is not None:
            self.observe_loss(float(loss))
        params = [p for group in self.param_groups for p in group["params"] if p.grad is not None]
        decay = {id(p): group["weight_decay"] for group in self.param_groups for p in group["params"]}
        grads = [p.grad + decay[id(p)] * p if decay[id(p)] else p.grad for p in params]
        states = [self.state[p] for p in params]
        if self.meta["features"] is not None:
            with torch.enable_grad():
                self._meta_step(grads, states)
        features = self._features(grads, [s.get("prev_g") for s in states])
        lr_t, mu_t = self.controls(features, self.meta["weight"])
        lr, mu = float(lr_t), float(mu_t)
        for p, g, state in zip(params, grads, states, strict=True):
            m = state.get("momentum_buffer", torch.zeros_like(p))
            state["prev_m"], state["prev_g"] = m.clone(), g.clone()
            state["momentum_buffer"] = mu * m + g
            p.sub_(lr * state["momentum_buffer"])
        self.meta.update(features=features, lr=lr, momentum=mu)
        return loss


register_optimizer(OptimizerSpec(
    "meta-opt",
    lambda params, hp, opts, model: MetaOptimizer(params, lr=hp["lr"], momentum=hp["momentum"],
                                                  weight_decay=hp["weight_decay"], **opts),
    "momentum SGD whose lr and momentum a meta-learned controller sets from the context flow",
    {"lr_bounds": Param([1e-3, 0.5], NumberList(2, POSITIVE, increasing=True), "range the controller's lr stays in"),
     "momentum_bounds": Param([0.0, 0.99], NumberList(2, Interval(float, 0.0, 1.0, closed="left"), increasing=True),
                              "range the controller's momentum stays in"),
     "meta_lr": Param(0.01, POSITIVE, "Adam step of the controller on the look-ahead loss")},
    strategy={"lr": 0.1, "momentum": 0.5}))
