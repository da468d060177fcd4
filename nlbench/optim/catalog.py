"""Every optimizer a method can train with, by name: its options, their constraints, and how to build it.

A method's `optimizer` key picks one and its `optimizer_options` table sets that optimizer's own knobs, so
`optimizer = "m3"` works with any gradient-trained strategy. `lr`, `momentum` and `weight_decay` stay shared
training keys. Options are validated like every other hyperparameter and logged resolved
(`optimizer_options.*` params in MLflow).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nlbench.core.errors import UsageError
from nlbench.core.params import Boolean, Interval, NumberList, Options, validate_params
from nlbench.optim.context import PRECONDITIONERS, ContextSteered
from nlbench.optim.dgd import DGD
from nlbench.optim.meta import MetaOptimizer
from nlbench.optim.momentum import OUTPUTS, DeepMomentum, DeltaMomentum
from nlbench.optim.muon import M3, Muon

# What happens to the optimizer's memory (momentum, moments, controller) when a new experience starts.
MEMORY_POLICIES = ("keep", "reset")

_UNIT = Interval(float, 0.0, 1.0, closed="right")
_POSITIVE = Interval(float, 0.0, None, closed="neither")


@dataclass(frozen=True)
class OptimizerSpec:
    build: Callable[[list[nn.Parameter], Mapping[str, Any], Mapping[str, Any], nn.Module | None],
                    torch.optim.Optimizer]
    defaults: dict[str, Any] = field(default_factory=dict)
    constraints: dict[str, Any] = field(default_factory=dict)


def _sgd(params: Any, hp: Mapping[str, Any], opts: Mapping[str, Any], model: Any) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=hp["lr"], momentum=hp["momentum"], weight_decay=hp["weight_decay"])


def _adam(params: Any, hp: Mapping[str, Any], opts: Mapping[str, Any], model: Any) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=hp["lr"], weight_decay=hp["weight_decay"])


def _context(params: Any, hp: Mapping[str, Any], opts: Mapping[str, Any], model: Any) -> torch.optim.Optimizer:
    inner = OPTIMIZERS[opts["inner"]].build(params, hp, {}, model)
    return ContextSteered(inner, precondition=opts["precondition"], beta=opts["beta"])


def _dgd(params: Any, hp: Mapping[str, Any], opts: Mapping[str, Any], model: Any) -> torch.optim.Optimizer:
    if model is None:
        raise ValueError("DGD needs the model, to capture its linear layers' inputs")
    return DGD(params, model, lr=hp["lr"], weight_decay=hp["weight_decay"])


OPTIMIZERS: dict[str, OptimizerSpec] = {
    "sgd": OptimizerSpec(_sgd),
    "adam": OptimizerSpec(_adam),
    "delta-momentum": OptimizerSpec(
        lambda params, hp, opts, model: DeltaMomentum(params, lr=hp["lr"], momentum=hp["momentum"],
                                                      weight_decay=hp["weight_decay"])),
    "deep-momentum": OptimizerSpec(
        lambda params, hp, opts, model: DeepMomentum(params, lr=hp["lr"], momentum=hp["momentum"],
                                                     weight_decay=hp["weight_decay"], **opts),
        {"hidden": 8, "output": "none", "mlp_decay": 1.0},
        {"hidden": Interval(int, 0, None), "output": Options(OUTPUTS), "mlp_decay": _UNIT}),
    "dgd": OptimizerSpec(_dgd),
    "muon": OptimizerSpec(
        lambda params, hp, opts, model: Muon(params, lr=hp["lr"], momentum=hp["momentum"],
                                             weight_decay=hp["weight_decay"], **opts),
        {"nesterov": True, "ns_steps": 5, "fallback_lr": 1e-3},
        {"nesterov": Boolean(), "ns_steps": Interval(int, 1, None), "fallback_lr": _POSITIVE}),
    "m3": OptimizerSpec(
        lambda params, hp, opts, model: M3(params, lr=hp["lr"], weight_decay=hp["weight_decay"], **opts),
        {"period": 10, "alpha": 1.0, "betas": [1.0, 1.0, 1.0], "decays": [0.95, 0.99, 0.999], "ns_steps": 5,
         "eps": 0.1, "scale_free": True, "fallback_lr": 1e-3},
        {"period": Interval(int, 1, None), "alpha": Interval(float, 0.0, None),
         "betas": NumberList(3, _POSITIVE), "decays": NumberList(3, _UNIT), "ns_steps": Interval(int, 1, None),
         "eps": _POSITIVE, "scale_free": Boolean(), "fallback_lr": _POSITIVE}),
    "context-steered": OptimizerSpec(
        _context,
        {"inner": "sgd", "precondition": "adagrad", "beta": 0.999},
        {"inner": Options(("sgd", "adam")), "precondition": Options(PRECONDITIONERS),
         "beta": Interval(float, 0.0, 1.0, closed="neither")}),
    "meta-opt": OptimizerSpec(
        lambda params, hp, opts, model: MetaOptimizer(params, lr=hp["lr"], momentum=hp["momentum"],
                                                      weight_decay=hp["weight_decay"], **opts),
        {"lr_bounds": [1e-3, 0.5], "momentum_bounds": [0.0, 0.99], "meta_lr": 0.01},
        {"lr_bounds": NumberList(2, _POSITIVE, increasing=True),
         "momentum_bounds": NumberList(2, Interval(float, 0.0, 1.0, closed="left"), increasing=True),
         "meta_lr": _POSITIVE}),
}


def resolve_options(name: str, options: Mapping[str, Any], where: str = "") -> dict[str, Any]:
    """The optimizer's defaults updated by `options`, each key and value validated."""
    spec = OPTIMIZERS[name]
    validate_params(options, spec.constraints, f"optimizer '{name}' (optimizer_options)", where)
    return {**spec.defaults, **options}


def check_optimizer(hp: Mapping[str, Any], owner: str, where: str = "") -> None:
    """Cross-key checks: the initial lr and momentum of `meta-opt` must lie within its bounds."""
    if hp["optimizer"] != "meta-opt":
        return
    opts = hp["optimizer_options"]
    for key, bounds in (("lr", opts["lr_bounds"]), ("momentum", opts["momentum_bounds"])):
        if not bounds[0] <= hp[key] <= bounds[1]:
            prefix = f"{where}: " if where else ""
            raise UsageError(f"{prefix}'{key}' of {owner} must lie within optimizer_options.{key}_bounds "
                             f"{bounds} for optimizer 'meta-opt'. Got {hp[key]!r} instead.")


def build_optimizer(params: Any, hp: Mapping[str, Any], model: nn.Module | None = None) -> torch.optim.Optimizer:
    """The optimizer `hp["optimizer"]` over `params`; `model` is needed by DGD (its linear layers)."""
    name = hp["optimizer"]
    return OPTIMIZERS[name].build(list(params), hp, hp.get("optimizer_options") or OPTIMIZERS[name].defaults, model)


def save_state(optimizer: Any, path: str | Path) -> None:
    """Write an optimizer's full state (every nlbench optimizer round-trips bit-identically)."""
    torch.save(optimizer.state_dict(), path)


def load_state(optimizer: Any, path: str | Path) -> None:
    """Restore a state written by `save_state` into an optimizer built the same way over the same model."""
    optimizer.load_state_dict(torch.load(path, weights_only=False))


def reset_memory(optimizer: Any) -> None:
    """Forget what an optimizer remembers of the stream so far (momenta, moments, trackers)."""
    if hasattr(optimizer, "reset_memory"):
        optimizer.reset_memory()
    elif hasattr(optimizer, "levels"):  # the CMS level schedule: one inner optimizer per level
        for level in optimizer.levels:
            reset_memory(level.optimizer)
    else:
        optimizer.state.clear()
