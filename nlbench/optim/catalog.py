"""Every optimizer a method can train with, by name: its knobs, how to build it, and its own strategy.

A method's `optimizer` key picks one and its `optimizer_options` table sets that optimizer's own knobs, so
`optimizer = "m3"` works with any gradient-trained strategy. `lr`, `momentum` and `weight_decay` stay shared
training keys. Options are validated like every other hyperparameter and logged resolved
(`optimizer_options.*` params in MLflow).

Each optimizer module of `nlbench.optim` registers its `OptimizerSpec` (adding an optimizer is adding that
module); the catalog imports them all on first look-up. A spec with `strategy` defaults also becomes a
registered strategy of the same name (`strategies/optimizers.py`) and a row of `nlbench bench optimizers`.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nlbench.core.errors import UsageError
from nlbench.core.params import Param, defaults, validate_params

# What happens to the optimizer's memory (momentum, moments, controller) when a new experience starts.
MEMORY_POLICIES = ("keep", "reset")

Builder = Callable[[list[nn.Parameter], Mapping[str, Any], Mapping[str, Any], "nn.Module | None"],
                   torch.optim.Optimizer]


@dataclass(frozen=True)
class OptimizerSpec:
    """`build(params, hp, options, model)`; `params` are the optimizer's own knobs (`optimizer_options`);
    `strategy` holds the defaults (lr, momentum) of its naive-fine-tuning strategy, None for no strategy."""

    name: str
    build: Builder
    summary: str
    params: Mapping[str, Param] = field(default_factory=dict)
    strategy: Mapping[str, Any] | None = None


class Catalog(Mapping[str, OptimizerSpec]):
    """Name -> spec; every module of `nlbench.optim` is imported on first look-up, so each can register itself."""

    def __init__(self) -> None:
        self._specs: dict[str, OptimizerSpec] = {}
        self._discovered = False

    def register(self, spec: OptimizerSpec) -> OptimizerSpec:
        other = self._specs.get(spec.name)
        if other is not None and other.build is not spec.build:
            raise TypeError(f"optimizer '{spec.name}' is registered twice")
        self._specs[spec.name] = spec
        return spec

    def _discover(self) -> None:
        if not self._discovered:
            self._discovered = True
            package = importlib.import_module("nlbench.optim")
            for module in pkgutil.iter_modules(package.__path__):
                importlib.import_module(f"nlbench.optim.{module.name}")

    def __getitem__(self, name: str) -> OptimizerSpec:
        self._discover()
        return self._specs[name]

    def __iter__(self) -> Iterator[str]:
        """torch's own first, then nlbench's by name: an order that does not depend on the file layout."""
        self._discover()
        builtin = [n for n in ("sgd", "adam") if n in self._specs]
        return iter(builtin + sorted(set(self._specs) - set(builtin)))

    def __len__(self) -> int:
        self._discover()
        return len(self._specs)


OPTIMIZERS = Catalog()
register_optimizer = OPTIMIZERS.register


def _sgd(params: Any, hp: Mapping[str, Any], opts: Mapping[str, Any], model: Any) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=hp["lr"], momentum=hp["momentum"], weight_decay=hp["weight_decay"])


def _adam(params: Any, hp: Mapping[str, Any], opts: Mapping[str, Any], model: Any) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=hp["lr"], weight_decay=hp["weight_decay"])


register_optimizer(OptimizerSpec("sgd", _sgd, "torch's SGD (with `momentum` and coupled `weight_decay`)"))
register_optimizer(OptimizerSpec("adam", _adam, "torch's Adam"))


def resolve_options(name: str, options: Mapping[str, Any], where: str = "") -> dict[str, Any]:
    """The optimizer's defaults updated by `options`, each key and value validated."""
    spec = OPTIMIZERS[name]
    validate_params(options, spec.params, f"optimizer '{name}' (optimizer_options)", where)
    return {**defaults(spec.params), **options}


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
    spec = OPTIMIZERS[hp["optimizer"]]
    return spec.build(list(params), hp, hp.get("optimizer_options") or defaults(spec.params), model)


def save_state(optimizer: Any, path: Any) -> None:
    """Write an optimizer's full state (every nlbench optimizer round-trips bit-identically) to a path or file."""
    torch.save(optimizer.state_dict(), path)


def load_state(optimizer: Any, path: str | Path) -> None:
    """Restore a state written by `save_state` into an optimizer built the same way over the same model. The file
    may come from a tracking server: it is read with `weights_only=True` (tensors and plain containers only)."""
    optimizer.load_state_dict(torch.load(path, weights_only=True))


def reset_memory(optimizer: Any) -> None:
    """Forget what an optimizer remembers of the stream so far (momenta, moments, trackers)."""
    if hasattr(optimizer, "reset_memory"):
        optimizer.reset_memory()
    elif hasattr(optimizer, "levels"):  # the CMS level schedule: one inner optimizer per level
        for level in optimizer.levels:
            reset_memory(level.optimizer)
    else:
        optimizer.state.clear()
