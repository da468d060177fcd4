"""Shared machinery of the Nested Learning strategies: their knobs and the Avalanche template that
applies the CMS level schedule (Eq. 71) through `nlbench.optim.LevelScheduledOptimizer`."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from typing import Any

from torch import nn

from nlbench.core.errors import UsageError
from nlbench.core.params import Boolean, Interval, IntList, Options, PositiveList
from nlbench.data.scenario import ScenarioInfo
from nlbench.methods.base import TRAIN_CONSTRAINTS, TRAIN_DEFAULTS, AvalancheMethod, end_of_experience
from nlbench.nn.cms import CMS_VARIANTS, LevelSpec, check_periods
from nlbench.nn.titans import GRAD_MODES, MEMORY_LOSSES, check_memory
from nlbench.optim import PARTIAL_CHUNK, LevelScheduledOptimizer, build_optimizer, model_levels

# The MLP's `hidden_sizes` does not apply: each Nested Learning model has its own width knobs (`dim`, ...).
_TRAIN_DEFAULTS = {k: v for k, v in TRAIN_DEFAULTS.items() if k != "hidden_sizes"}
_TRAIN_CONSTRAINTS = {k: v for k, v in TRAIN_CONSTRAINTS.items() if k != "hidden_sizes"}

# The CMS and its level schedule (Eq. 71).
CMS_DEFAULTS: dict[str, Any] = {"frequencies": [1, 4, 16], "cms_variant": "sequential", "cms_hidden": 64,
                                "partial_chunk": "flush", "level_lrs": []}
CMS_CONSTRAINTS: dict[str, Any] = {
    "frequencies": IntList(),  # C(l): level l updates once every frequencies[l] optimizer steps
    "cms_variant": Options(CMS_VARIANTS),
    "cms_hidden": Interval(int, 1, None),
    "partial_chunk": Options(PARTIAL_CHUNK),
    "level_lrs": PositiveList(),  # [] = `lr` for every CMS level; else one per entry of `frequencies`
}

TITANS_DEFAULTS: dict[str, Any] = {
    "dim": 32, "memory_hidden": 32, "chunk_size": 2, "memory_chunk_size": 4, "memory_lr": 0.5,
    "memory_decay": 0.01, "self_modify": True, "grad_mode": "meta", "memory_loss": "l2", "self_mod_depth": 1,
}
TITANS_CONSTRAINTS: dict[str, Any] = {
    "memory_hidden": Interval(int, 0, None),  # 0: a linear memory, run by the delta-rule kernel
    "chunk_size": Interval(int, 1, None),  # chunk of the k, v, eta, alpha memories
    "memory_chunk_size": Interval(int, 1, None),  # chunk of the main memory
    "memory_lr": Interval(float, 0.0, 1.0, closed="right"),  # inner step eta at initialisation
    "memory_decay": Interval(float, 0.0, 0.5),  # 1 - alpha at initialisation
    "self_modify": Boolean(),
    "grad_mode": Options(GRAD_MODES),
    "memory_loss": Options(MEMORY_LOSSES),  # inner loss of a linear memory: Eq. 93 (l2) or Eq. 92 (dot)
    "self_mod_depth": Interval(int, 1, None),  # stacked blocks
}


def titans_options(hp: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("memory_hidden", "chunk_size", "memory_chunk_size", "memory_lr", "memory_decay", "self_modify",
            "grad_mode", "memory_loss")
    return {k: hp[k] for k in keys}


def check_titans(hp: Mapping[str, Any], method: str, where: str) -> None:
    """The memory combinations `SelfModifyingTitans` supports, as a usage error."""
    try:
        check_memory(hp["memory_hidden"], hp["self_modify"], hp["memory_loss"])
    except ValueError as exc:
        prefix = f"{where}: " if where else ""
        raise UsageError(f"{prefix}method '{method}': {exc}.") from exc


def cms_options(hp: Mapping[str, Any]) -> dict[str, Any]:
    return {"hidden": hp["cms_hidden"], "periods": hp["frequencies"], "variant": hp["cms_variant"]}


def level_lr(hp: Mapping[str, Any], spec: LevelSpec) -> float:
    lrs = hp.get("level_lrs", [])
    return lrs[spec.index] if lrs and spec.index >= 0 else hp["lr"]


def _make_template(base: type) -> type:
    class LevelScheduledTemplate(base):
        """Avalanche template whose optimizer is the CMS level schedule."""

        def __init__(self, *, partial_chunk: str = "flush", **kwargs: Any):
            super().__init__(**kwargs)
            self.partial_chunk = partial_chunk

        def _after_training_exp(self, **kwargs: Any) -> None:
            if self.partial_chunk == "flush" and end_of_experience(self.experience):
                self.optimizer.flush()
            super()._after_training_exp(**kwargs)

    return LevelScheduledTemplate


class NestedMethod(AvalancheMethod):
    """A Nested Learning model trained by an Avalanche template under the CMS level schedule."""

    FAMILY = "nested"
    USES_CMS = True

    @classmethod
    def all_defaults(cls) -> dict[str, Any]:
        return {**_TRAIN_DEFAULTS, **(CMS_DEFAULTS if cls.USES_CMS else {}), **cls.DEFAULTS}

    @classmethod
    def all_constraints(cls) -> dict[str, Any]:
        return {**_TRAIN_CONSTRAINTS, "dim": Interval(int, 1, None), **(CMS_CONSTRAINTS if cls.USES_CMS else {}),
                **cls._parameter_constraints}

    @classmethod
    def check_hp(cls, hp: Mapping[str, Any], where: str) -> None:
        if not cls.USES_CMS:
            return
        prefix = f"{where}: " if where else ""
        levels = len(hp["frequencies"])
        if hp["level_lrs"] and len(hp["level_lrs"]) != levels:
            raise UsageError(f"{prefix}'level_lrs' of method '{cls.NAME}' needs one learning rate per CMS level "
                             f"({levels}) or none. Got {hp['level_lrs']!r} instead.")
        try:
            check_periods(hp["frequencies"], hp["cms_variant"])
        except ValueError as exc:
            raise UsageError(f"{prefix}method '{cls.NAME}': {exc}.") from exc

    @abstractmethod
    def build_net(self, hp: Mapping[str, Any], info: ScenarioInfo) -> nn.Module:
        """The plain torch model (before the task-label wrapper)."""

    def build_model(self, hp: Mapping[str, Any], info: ScenarioInfo) -> nn.Module:
        from nlbench.methods.models import build_classifier

        return build_classifier(self.build_net(hp, info), info)

    def make_optimizer(self, model: nn.Module, hp: Mapping[str, Any]) -> LevelScheduledOptimizer:
        return LevelScheduledOptimizer(
            model_levels(model), lambda params, spec: build_optimizer(params, {**hp, "lr": level_lr(hp, spec)}, model))

    def template(self) -> type:
        return _make_template(super().template())

    def template_options(self, hp: Mapping[str, Any]) -> dict[str, Any]:
        return {"partial_chunk": hp.get("partial_chunk", "flush")}
