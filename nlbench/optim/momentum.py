"""Momentum as an associative memory over gradients (arXiv §4.2-4.4): the delta-rule and the deep (MLP) form.

Classic momentum `m <- alpha m - eta g; W <- W + m` is gradient descent on the value-less objective `<m, g>`
(NeurIPS Eqs. 16-17). These optimizers change that inner objective or the memory's form. Each parameter
tensor is one memory: its gradient is read as one flat vector.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F

from nlbench.core.params import UNIT, Interval, Options, Param
from nlbench.optim.base import ParameterwiseOptimizer, with_weight_decay
from nlbench.optim.catalog import OptimizerSpec, register_optimizer
from nlbench.optim.newton_schulz import newton_schulz

OUTPUTS = ("none", "tanh", "newton-schulz")


def delta_momentum_update(m: torch.Tensor, g: torch.Tensor, alpha: float, lr: float) -> torch.Tensor:
    """Eq. 49: `m (alpha I - g g^T) - eta g`, on flat vectors, with the erase capped at `alpha`.

    The printed form is used whenever `|g|^2 <= alpha`. Beyond that, the factor along g, `alpha - |g|^2`, would
    turn negative and the memory would diverge. The erase is therefore capped at `alpha`, which removes the
    momentum's component along the current gradient entirely instead of flipping its sign.
    """
    sq = float(g.pow(2).sum())
    m_new = alpha * m - lr * g
    if sq > 0:
        erase = min(sq, alpha) / sq  # = 1 for the printed form: m g g^T
        m_new -= erase * torch.dot(m.flatten(), g.flatten()) * g
    return m_new


class DeltaMomentum(ParameterwiseOptimizer):
    """Delta Momentum (arXiv Eqs. 48-49): momentum trained with the L2 (delta-rule) objective.

    `m <- m (alpha I - g g^T) - lr g; W <- W + m`. The erase term forgets the part of the momentum along the
    current gradient before writing it, so a gradient direction is not counted twice.
    """

    def __init__(self, params: Iterable[Any], lr: float = 0.1, momentum: float = 0.9, weight_decay: float = 0.0):
        super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay})

    def update(self, p: torch.Tensor, grad: torch.Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        m = state.get("momentum_buffer", torch.zeros_like(p))
        state["momentum_buffer"] = delta_momentum_update(m, with_weight_decay(p, grad, group), group["momentum"],
                                                         group["lr"])
        p.add_(state["momentum_buffer"])


def _silu_grad(z: torch.Tensor) -> torch.Tensor:
    s = torch.sigmoid(z)
    return s * (1 + z * (1 - s))


def deep_memory_read(c: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """`m(u) = c + r * sum_k w2_k silu(w1_k u / r)`, per coordinate, with r = rms(u).

    The shared MLP sees scale-free inputs and its output has the gradient's units.
    """
    r = u.pow(2).mean().sqrt().clamp_min(1e-12)
    z = (u / r).reshape(-1, 1) * w1  # (n, hidden)
    return c + r * (F.silu(z) @ w2).reshape(u.shape)


def deep_memory_grads(c: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor,
                      u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients of the inner loss `L2(m; u) = <m(u), u>` for (c, w1, w2). With no MLP this is momentum's `u`."""
    r = u.pow(2).mean().sqrt().clamp_min(1e-12)
    x = (u / r).reshape(-1, 1)
    z = x * w1
    uf = u.reshape(-1, 1)
    d_w2 = r * (F.silu(z) * uf).sum(0)
    d_w1 = r * (uf * _silu_grad(z) * x).sum(0) * w2
    return u, d_w1, d_w2


class DeepMomentum(ParameterwiseOptimizer):
    """Deep Momentum GD (arXiv Eq. 50, with Eq. 52's output nonlinearity).

    The momentum is a memory `m(u) = c + MLP(u)`. It has a per-coordinate state c and a small MLP shared across
    the coordinates of one parameter tensor. It is trained online by one GD step per iteration on the inner loss
    `<m(u), u>` over the current gradient u:

        c <- alpha c - lr dL2/dc,   (w1, w2) <- mlp_decay (w1, w2) - (lr / n) dL2/d(w1, w2),   W <- W + sigma(m(u))

    Choices (the paper leaves them open):
    - The inner loss is the value-less dot product of linear momentum. With `hidden = 0`, DMGD is exactly
      classic momentum.
    - The shared weights take steps scaled by 1/n, a mean over the tensor's n coordinates, so that their step
      does not grow with the tensor size.
    - The shared weights are not decayed by default (`mlp_decay = 1`). Decaying them by alpha drives the MLP to
      zero and DMGD back to plain momentum.
    - w2 starts at 0, so the first step is SGD. w1 starts at N(0, 1) from the torch seed.
    - sigma is one of `none`, `tanh`, or `newton-schulz`. `newton-schulz` applies to 2-D tensors only and takes
      `lr * NS(m)`, as in Muon. Other tensors get `none`.
    """

    def __init__(self, params: Iterable[Any], lr: float = 0.1, momentum: float = 0.9, hidden: int = 8,
                 output: str = "none", mlp_decay: float = 1.0, weight_decay: float = 0.0):
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        super().__init__(params, {"lr": lr, "momentum": momentum, "hidden": hidden, "output": output,
                                  "mlp_decay": mlp_decay, "weight_decay": weight_decay})

    def update(self, p: torch.Tensor, grad: torch.Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        lr, alpha = group["lr"], group["momentum"]
        u = with_weight_decay(p, grad, group)
        if not state:
            state["c"] = torch.zeros_like(p)
            state["w1"] = torch.randn(group["hidden"], dtype=p.dtype, device=p.device)
            state["w2"] = torch.zeros(group["hidden"], dtype=p.dtype, device=p.device)
        c, w1, w2 = state["c"], state["w1"], state["w2"]
        d_c, d_w1, d_w2 = deep_memory_grads(c, w1, w2, u)
        n = u.numel()
        c.mul_(alpha).sub_(lr * d_c)  # Eq. 50: m_{i+1} = alpha m_i - eta grad L2(m_i; u_i)
        w1.mul_(group["mlp_decay"]).sub_(lr / n * d_w1)
        w2.mul_(group["mlp_decay"]).sub_(lr / n * d_w2)
        out = deep_memory_read(c, w1, w2, u)
        if group["output"] == "tanh":
            out = torch.tanh(out)
        elif group["output"] == "newton-schulz" and p.ndim == 2:
            out = lr * newton_schulz(out)
        p.add_(out)  # W_{i+1} = W_i + sigma(m_{i+1}(u_i))


register_optimizer(OptimizerSpec(
    "delta-momentum",
    lambda params, hp, opts, model: DeltaMomentum(params, lr=hp["lr"], momentum=hp["momentum"],
                                                  weight_decay=hp["weight_decay"]),
    "Delta Momentum: momentum with the delta-rule objective (arXiv Eqs. 48-49)",
    strategy={"lr": 0.01, "momentum": 0.9}))
register_optimizer(OptimizerSpec(
    "deep-momentum",
    lambda params, hp, opts, model: DeepMomentum(params, lr=hp["lr"], momentum=hp["momentum"],
                                                 weight_decay=hp["weight_decay"], **opts),
    "Deep Momentum GD: an MLP momentum memory learned online (arXiv Eqs. 50, 52)",
    {"hidden": Param(8, Interval(int, 0, None), "width of the momentum MLP (0: classic momentum)"),
     "output": Param("none", Options(OUTPUTS), "nonlinearity sigma on the memory's output (Eq. 52)"),
     "mlp_decay": Param(1.0, UNIT, "decay of the shared MLP weights per step (1: none)")},
    strategy={"lr": 0.01, "momentum": 0.9}))
