"""Context-steered optimisation: any torch optimizer, fed gradients preconditioned by an associative memory.

The preconditioner P of Eq. 47 (`m <- alpha m - eta P g`) is itself a memory of past gradients (App. B: Adam
is the optimal element-wise L2 memory from gradients to their variance, and AdaGrad and Shampoo are its
outer-product relatives). `ContextSteered` keeps that memory and rewrites each `.grad` as `P g` before the
wrapped optimizer steps. The wrapped optimizer then supplies the momentum and the step.

Memories:
- `none`: P = I.
- `adagrad`: `s += g^2; P g = g / (sqrt(s) + eps)`.
- `adam`: `v <- beta v + (1 - beta) g^2; P g = g / (sqrt(v / (1 - beta^t)) + eps)`.
- `outer`: Shampoo's left and right outer-product memories for matrices, `L += g g^T; R += g^T g;
  P g = L^{-1/4} g R^{-1/4}`. Other tensors fall back to `adagrad`.
"""

from __future__ import annotations

from typing import Any

import torch

from nlbench.core.params import Interval, Options, Param
from nlbench.optim.base import ParameterwiseOptimizer
from nlbench.optim.catalog import OptimizerSpec, build_optimizer, register_optimizer

PRECONDITIONERS = ("none", "adagrad", "adam", "outer")


def _inv_root(S: torch.Tensor, eps: float, power: float = 0.25) -> torch.Tensor:
    """`(S + eps I)^(-power)` of a symmetric PSD matrix, through its eigendecomposition."""
    vals, vecs = torch.linalg.eigh(S + eps * torch.eye(S.shape[0], dtype=S.dtype, device=S.device))
    return (vecs * vals.clamp_min(eps).pow(-power)) @ vecs.T


def precondition(g: torch.Tensor, state: dict[str, Any], kind: str, beta: float, eps: float) -> torch.Tensor:
    """`P g` for one tensor, updating its memory in `state`."""
    if kind == "none":
        return g
    if kind == "outer" and g.ndim == 2:
        if "left" not in state:
            state["left"] = torch.zeros(g.shape[0], g.shape[0], dtype=g.dtype, device=g.device)
            state["right"] = torch.zeros(g.shape[1], g.shape[1], dtype=g.dtype, device=g.device)
        state["left"].add_(g @ g.T)
        state["right"].add_(g.T @ g)
        return _inv_root(state["left"], eps) @ g @ _inv_root(state["right"], eps)
    if kind == "adam":
        state["t"] = state.get("t", 0) + 1
        v = state.setdefault("v", torch.zeros_like(g))
        v.mul_(beta).addcmul_(g, g, value=1 - beta)
        return g / ((v / (1 - beta ** state["t"])).sqrt() + eps)
    s = state.setdefault("s", torch.zeros_like(g))  # adagrad, and outer's fallback for non-matrices
    s.addcmul_(g, g)
    return g / (s.sqrt() + eps)


class ContextSteered(ParameterwiseOptimizer):
    """Wraps `inner` (any torch optimizer) and preconditions its gradients with a gradient memory."""

    def __init__(self, inner: torch.optim.Optimizer, precondition: str = "adagrad", beta: float = 0.999,
                 eps: float = 1e-8):
        if precondition not in PRECONDITIONERS:
            raise ValueError(f"precondition must be one of {PRECONDITIONERS}, got {precondition!r}")
        self.inner = inner
        params = [p for g in inner.param_groups for p in g["params"]]
        super().__init__(params, {"precondition": precondition, "beta": beta, "eps": eps})

    def update(self, p: torch.Tensor, grad: torch.Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        p.grad = precondition(grad, state, group["precondition"], group["beta"], group["eps"])

    def after_step(self) -> None:
        self.inner.step()

    def reset_memory(self) -> None:
        self.state.clear()
        self.inner.state.clear()

    def state_dict(self) -> dict[str, Any]:
        return {"steer": super().state_dict(), "inner": self.inner.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict["steer"])
        self.inner.load_state_dict(state_dict["inner"])


def _build(params: Any, hp: Any, opts: Any, model: Any) -> ContextSteered:
    return ContextSteered(build_optimizer(params, {**hp, "optimizer": opts["inner"], "optimizer_options": {}}),
                          precondition=opts["precondition"], beta=opts["beta"])


register_optimizer(OptimizerSpec(
    "context-steered", _build,
    "SGD steered by an associative gradient memory (AdaGrad by default; Eq. 47, App. B)",
    {"inner": Param("sgd", Options(("sgd", "adam")), "the wrapped optimizer that takes the step"),
     "precondition": Param("adagrad", Options(PRECONDITIONERS), "the gradient memory P"),
     "beta": Param(0.999, Interval(float, 0.0, 1.0, closed="neither"), "decay of the `adam` memory")},
    strategy={"lr": 0.03}))
