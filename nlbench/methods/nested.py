"""The Nested Learning adapter: a model trained by an Avalanche template under the CMS level schedule (Eq. 71).

A strategy module subclasses `NestedMethod` and builds its torch model (`build_net`); any
`ContinuumMemorySystem` inside it is put on the schedule by `nlbench.optim.LevelScheduledOptimizer`.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

from torch import nn

from nlbench.core.errors import UsageError
from nlbench.core.params import COUNT, Boolean, Interval, IntList, Options, Param, PositiveList
from nlbench.core.spaces import Choice, Float
from nlbench.data.scenario import ScenarioInfo
from nlbench.methods.avalanche import AvalancheMethod
from nlbench.methods.training import TRAIN_PARAMS
from nlbench.nn.cms import CMS_VARIANTS, LevelSpec, check_periods
from nlbench.nn.titans import GRAD_MODES, MEMORY_LOSSES, check_memory
from nlbench.optim import PARTIAL_CHUNK, LevelScheduledOptimizer, build_optimizer, model_levels

NESTED_PARAMS: dict[str, Param] = {"dim": Param(32, COUNT, "model width (token and CMS dimension)")}

# The CMS and its level schedule (Eq. 71).
CMS_PARAMS: dict[str, Param] = {
    "frequencies": Param([1, 4, 16], IntList(), "chunk size C(l) of each CMS level, in optimizer steps (Eq. 71)",
                         Choice(([1, 4, 16], [1, 2, 4], [1, 8, 64], [4, 16, 64]))),
    "cms_variant": Param("sequential", Options(CMS_VARIANTS), "sequential levels, nested (Eq. 72) or "
                                                               "independent (Eq. 74)"),
    "cms_hidden": Param(64, COUNT, "hidden width of each CMS level's MLP"),
    "partial_chunk": Param("flush", Options(PARTIAL_CHUNK), "a level's partial chunk at the end of an "
                                                            "experience: applied now or at its next boundary"),
    "level_lrs": Param([], PositiveList(), "learning rate of each CMS level ([]: lr for every level)"),
}

TITANS_PARAMS: dict[str, Param] = {
    "memory_hidden": Param(32, Interval(int, 0, None), "hidden width of the memories (0: a linear memory, run "
                                                       "by the delta-rule kernel)"),
    "chunk_size": Param(2, COUNT, "chunk of the k, v, eta, alpha memories (tokens per gradient state)"),
    "memory_chunk_size": Param(4, COUNT, "chunk of the main memory"),
    "memory_lr": Param(0.5, Interval(float, 0.0, 1.0, closed="right"), "inner step eta at initialisation",
                       Float(0.05, 1.0, log=True)),
    "memory_decay": Param(0.01, Interval(float, 0.0, 0.5), "1 - alpha (retention) at initialisation",
                          Float(0.001, 0.3, log=True)),
    "self_modify": Param(True, Boolean(), "k, v, eta, alpha from self-modifying memories (false: static "
                                          "projections, Eqs. 76-78)"),
    "grad_mode": Param("meta", Options(GRAD_MODES), "backpropagate through the inner writes (meta) or "
                                                    "detach them (stopgrad)"),
    "memory_loss": Param("l2", Options(MEMORY_LOSSES), "inner loss of a linear memory: Eq. 93 (l2) or "
                                                       "Eq. 92 (dot)"),
    "self_mod_depth": Param(1, COUNT, "stacked Titans (+ CMS) blocks"),
}


def titans_options(hp: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("memory_hidden", "chunk_size", "memory_chunk_size", "memory_lr", "memory_decay", "self_modify",
            "grad_mode", "memory_loss")
    return {k: hp[k] for k in keys}


def cms_options(hp: Mapping[str, Any]) -> dict[str, Any]:
    return {"hidden": hp["cms_hidden"], "periods": hp["frequencies"], "variant": hp["cms_variant"]}


def level_lr(hp: Mapping[str, Any], spec: LevelSpec) -> float:
    lrs = hp.get("level_lrs", [])
    return lrs[spec.index] if lrs and spec.index >= 0 else hp["lr"]


def _usage(where: str, method: str, exc: ValueError) -> UsageError:
    return UsageError(f"{where + ': ' if where else ''}method '{method}': {exc}.")


class NestedMethod(AvalancheMethod):
    """A Nested Learning model trained by an Avalanche template under the CMS level schedule."""

    FAMILY = "nested"
    USES_CMS: ClassVar[bool] = True

    @classmethod
    def shared_params(cls) -> dict[str, Param]:
        # The MLP's `hidden_sizes` does not apply: each Nested Learning model has its own width knobs.
        return {**TRAIN_PARAMS, **NESTED_PARAMS, **(CMS_PARAMS if cls.USES_CMS else {})}

    @classmethod
    def check_hp(cls, hp: Mapping[str, Any], where: str) -> None:
        if "memory_hidden" in hp:
            try:
                check_memory(hp["memory_hidden"], hp["self_modify"], hp["memory_loss"])
            except ValueError as exc:
                raise _usage(where, cls.NAME, exc) from exc
        if not cls.USES_CMS:
            return
        levels = len(hp["frequencies"])
        if hp["level_lrs"] and len(hp["level_lrs"]) != levels:
            raise UsageError(f"{where + ': ' if where else ''}'level_lrs' of method '{cls.NAME}' needs one learning "
                             f"rate per CMS level ({levels}) or none. Got {hp['level_lrs']!r} instead.")
        try:
            check_periods(hp["frequencies"], hp["cms_variant"])
        except ValueError as exc:
            raise _usage(where, cls.NAME, exc) from exc

    @abstractmethod
    def build_net(self, hp: Mapping[str, Any], info: ScenarioInfo) -> nn.Module:
        """The plain torch model (before the task-label wrapper)."""

    def build_model(self, hp: Mapping[str, Any], info: ScenarioInfo) -> nn.Module:
        from nlbench.methods.models import build_classifier

        return build_classifier(self.build_net(hp, info), info)

    def make_optimizer(self, model: nn.Module, hp: Mapping[str, Any]) -> LevelScheduledOptimizer:
        return LevelScheduledOptimizer(
            model_levels(model), lambda params, spec: build_optimizer(params, {**hp, "lr": level_lr(hp, spec)}, model))

    def boundary_plugins(self, hp: Mapping[str, Any]) -> list[Any]:
        from nlbench.methods.plugins import FlushPartialChunks

        return [FlushPartialChunks()] if hp.get("partial_chunk", "flush") == "flush" else []
