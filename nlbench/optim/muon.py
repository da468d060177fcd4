"""Muon and M3 (Multi-scale Momentum Muon, arXiv §7.2, Algorithm 1): orthogonalised momentum for matrices.

Both apply to 2-D weights only. Every other tensor (biases, 1-D gains, a conv kernel) gets AdamW with
`fallback_lr`, as in Muon's reference use.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Iterable
from typing import Any

import torch

from nlbench.core.params import COUNT, NON_NEGATIVE, POSITIVE, UNIT, Boolean, NumberList, Param
from nlbench.optim.base import ParameterwiseOptimizer
from nlbench.optim.catalog import OptimizerSpec, register_optimizer
from nlbench.optim.newton_schulz import newton_schulz


def adamw_step(p: torch.Tensor, g: torch.Tensor, state: dict[str, Any], lr: float, weight_decay: float,
               betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
    """One AdamW step (decoupled weight decay, bias-corrected moments), in place."""
    if "exp_avg" not in state:
        state["step"] = 0
        state["exp_avg"] = torch.zeros_like(p)
        state["exp_avg_sq"] = torch.zeros_like(p)
    state["step"] += 1
    state["exp_avg"].lerp_(g, 1 - betas[0])
    state["exp_avg_sq"].mul_(betas[1]).addcmul_(g, g, value=1 - betas[1])
    m_hat = state["exp_avg"] / (1 - betas[0] ** state["step"])
    v_hat = state["exp_avg_sq"] / (1 - betas[1] ** state["step"])
    p.mul_(1 - lr * weight_decay).addcdiv_(m_hat, v_hat.sqrt().add_(eps), value=-lr)


class _MatrixOptimizer(ParameterwiseOptimizer):
    """2-D parameters get `matrix_step`; the rest get AdamW."""

    def update(self, p: torch.Tensor, grad: torch.Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        if p.ndim == 2:
            self.matrix_step(p, grad, state, group)
        else:
            adamw_step(p, grad, state, group["fallback_lr"], group["weight_decay"])

    @abstractmethod
    def matrix_step(self, p: torch.Tensor, g: torch.Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        """Update one 2-D parameter in place from its gradient."""


class Muon(_MatrixOptimizer):
    """Muon: `W <- W - lr * s * NS(momentum)`, the Eq. 52 view of momentum with a Newton-Schulz output.

    The momentum is `b <- mu b + g`, read as `g + mu b` when Nesterov. The factor `s = sqrt(max(1, rows/cols))`
    keeps the update's RMS comparable across shapes (Muon's reference scaling).
    """

    def __init__(self, params: Iterable[Any], lr: float = 0.02, momentum: float = 0.95, nesterov: bool = True,
                 ns_steps: int = 5, fallback_lr: float = 1e-3, weight_decay: float = 0.0):
        super().__init__(params, {"lr": lr, "momentum": momentum, "nesterov": nesterov, "ns_steps": ns_steps,
                                  "fallback_lr": fallback_lr, "weight_decay": weight_decay})

    def matrix_step(self, p: torch.Tensor, g: torch.Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        buf = state.setdefault("momentum_buffer", torch.zeros_like(p))
        buf.mul_(group["momentum"]).add_(g)
        update = g + group["momentum"] * buf if group["nesterov"] else buf
        scale = math.sqrt(max(1.0, p.shape[0] / p.shape[1]))
        p.mul_(1 - group["lr"] * group["weight_decay"])
        p.sub_(group["lr"] * scale * newton_schulz(update, group["ns_steps"]))


class M3(_MatrixOptimizer):
    """M3, Algorithm 1: a fast and a slow momentum (CMS, independent variant, on the optimizer's memory).

        every step t:       M1 <- d1 M1 + b1 g_t;  V <- dv V + b2 g_t^2;  O1 = NS(M1)
                            W  <- W - lr (O1 + alpha O2) / (sqrt(V) + eps)
        every `period` f:   M2 <- d2 M2 + b3 sum of the chunk's f gradients;  O2 = NS(M2)

    Decays: the printed algorithm has none (d1 = d2 = dv = 1), so M1, M2 and V sum over the whole stream. Here
    they are explicit: `decays = [d1, d2, dv]`. `decays = [1, 1, 1]` is Algorithm 1 as printed, and a test holds
    it to that. The default [0.95, 0.99, 0.999] makes M1 a fast EMA, M2 a slow one over chunks, and V a
    long-horizon second moment. Without decay, V grows without bound and the step shrinks like
    AdaGrad's, which a long continual stream would feel. O2 is zero until the first chunk completes; it then
    holds the chunk's orthogonalised sum until the next boundary.
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, period: int = 10, alpha: float = 1.0,
                 betas: tuple[float, float, float] = (1.0, 1.0, 1.0),
                 decays: tuple[float, float, float] = (0.95, 0.99, 0.999), ns_steps: int = 5, eps: float = 0.1,
                 scale_free: bool = True, fallback_lr: float = 1e-3, weight_decay: float = 0.0):
        super().__init__(params, {"lr": lr, "period": period, "alpha": alpha, "betas": tuple(betas),
                                  "decays": tuple(decays), "ns_steps": ns_steps, "eps": eps, "scale_free": scale_free,
                                  "fallback_lr": fallback_lr, "weight_decay": weight_decay})

    def matrix_step(self, p: torch.Tensor, g: torch.Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        (b1, b2, b3), (d1, d2, dv) = group["betas"], group["decays"]
        if not state:
            state["step"] = 0
            for key in ("m1", "m2", "v", "chunk", "o2"):
                state[key] = torch.zeros_like(p)
        state["step"] += 1
        state["m1"].mul_(d1).add_(g, alpha=b1)
        state["v"].mul_(dv).addcmul_(g, g, value=b2)
        state["chunk"].add_(g)
        o1 = newton_schulz(state["m1"], group["ns_steps"])
        p.mul_(1 - group["lr"] * group["weight_decay"])
        p.sub_(group["lr"] * (o1 + group["alpha"] * state["o2"]) / self.denominator(state["v"], group))
        if state["step"] % group["period"] == 0:  # slow loop: the chunk's gradients enter M2
            state["m2"].mul_(d2).add_(state["chunk"], alpha=b3)
            state["o2"] = newton_schulz(state["m2"], group["ns_steps"])
            state["chunk"].zero_()

    @staticmethod
    def denominator(v: torch.Tensor, group: dict[str, Any]) -> torch.Tensor:
        root = v.sqrt()
        if group["scale_free"]:  # sqrt(V) relative to its mean, floored at eps
            return (root / root.mean().clamp_min(1e-30)).clamp_min(group["eps"])
        return root + group["eps"]


_NS_STEPS = Param(5, COUNT, "Newton-Schulz iterations per orthogonalisation")
_FALLBACK_LR = Param(1e-3, POSITIVE, "AdamW learning rate of the non-matrix parameters")
register_optimizer(OptimizerSpec(
    "muon",
    lambda params, hp, opts, model: Muon(params, lr=hp["lr"], momentum=hp["momentum"],
                                         weight_decay=hp["weight_decay"], **opts),
    "Muon: Newton-Schulz orthogonalised momentum (arXiv Eq. 52)",
    {"nesterov": Param(True, Boolean(), "read the momentum as g + mu b (Nesterov)"), "ns_steps": _NS_STEPS,
     "fallback_lr": _FALLBACK_LR},
    strategy={"lr": 0.01, "momentum": 0.95}))
register_optimizer(OptimizerSpec(
    "m3",
    lambda params, hp, opts, model: M3(params, lr=hp["lr"], weight_decay=hp["weight_decay"], **opts),
    "M3: multi-scale momentum Muon (arXiv §7.2, Algorithm 1)",
    {"period": Param(10, COUNT, "steps per chunk of the slow momentum M2"),
     "alpha": Param(1.0, NON_NEGATIVE, "weight of the slow momentum's update O2"),
     "betas": Param([1.0, 1.0, 1.0], NumberList(3, POSITIVE), "write strengths b1, b2, b3 of M1, V and M2"),
     "decays": Param([0.95, 0.99, 0.999], NumberList(3, UNIT), "decays d1, d2, dv of M1, M2 and V ([1, 1, 1]: "
                                                                "Algorithm 1 as printed)"),
     "ns_steps": _NS_STEPS,
     "eps": Param(0.1, POSITIVE, "floor of the denominator"),
     "scale_free": Param(True, Boolean(), "divide by sqrt(V) / mean(sqrt(V)) instead of sqrt(V) + eps"),
     "fallback_lr": _FALLBACK_LR},
    strategy={"lr": 0.003}))
