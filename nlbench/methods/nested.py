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
from nlbench.core.params import COUNT, NON_NEGATIVE, Boolean, Interval, Options, Param, PositiveList
from nlbench.core.spaces import Choice, Float
from nlbench.data.scenario import ScenarioData, ScenarioInfo
from nlbench.methods.avalanche import AvalancheMethod
from nlbench.methods.base import Learner
from nlbench.methods.training import TRAIN_PARAMS
from nlbench.nn.cms import CMS_VARIANTS, LevelSpec, check_periods
from nlbench.nn.titans import GRAD_MODES, IMPLEMENTATIONS, MEMORY_LOSSES, MEMORY_RESETS, MEMORY_SCOPES, check_memory
from nlbench.optim import PARTIAL_CHUNK, LevelScheduledOptimizer, build_optimizer, model_levels
from nlbench.optim.periods import LEVEL_LR_RULES, PeriodRule, level_lr, parse_period, steps_per_experience

NESTED_PARAMS: dict[str, Param] = {"dim": Param(32, COUNT, "model width (token and CMS dimension)")}

# The CMS and its level schedule (Eq. 71). The defaults are the paper's reading: the slowest CMS level spans an
# experience (a task), each level applies lr / C(l) (so it barely moves inside a task), and the base level (embedding,
# head, norms) is slow, at 0.1 lr. `nlbench tune` chose this schedule among 24 on the tuning stream of both
# permuted-digits and task-incremental split-digits (results/nested_timescales/pilot.toml); the old defaults,
# [1, 4, 16] at equal rates with the base at lr, are `frequencies = [1, 4, 16]`, `level_lr_rule = "equal"`,
# `base_lr_scale = 1.0`.
CMS_PARAMS: dict[str, Param] = {
    "frequencies": Param([1, 4, "experience"], PeriodRule(many=True), "chunk size C(l) of each CMS level (Eq. 71), in "
                         "optimizer steps or experiences ('experience', '2 experiences')",
                         Choice(([1, 4, "experience"], [1, 4, 16], [1, 16, "0.5 experience"], [1, 2, 4]))),
    "cms_variant": Param("sequential", Options(CMS_VARIANTS), "sequential levels, nested (Eq. 72) or "
                                                               "independent (Eq. 74)"),
    "cms_hidden": Param(64, COUNT, "hidden width of each CMS level's MLP"),
    "partial_chunk": Param("flush", Options(PARTIAL_CHUNK), "a level's partial chunk at the end of an "
                                                            "experience: applied now or at its next boundary"),
    "level_lrs": Param([], PositiveList(), "learning rate of each CMS level ([]: from lr by level_lr_rule)"),
    "level_lr_rule": Param("inverse-period", Options(LEVEL_LR_RULES),
                           "eta^(l) of a level of period C(l): lr (equal) or lr / C(l) (inverse-period)",
                           Choice(LEVEL_LR_RULES)),
    "base_period": Param(1, PeriodRule(), "period of the base level (every parameter outside the CMS: "
                                          "embedding, head, norms), in steps or experiences"),
    "base_lr_scale": Param(0.1, NON_NEGATIVE, "the base level's learning rate as a multiple of its rule's "
                                              "(0: frozen at its initialisation)", Choice((0.1, 1.0, 0.0))),
}

# The same-architecture control of a CMS method: the same levels, every one updated every step at one lr.
FLAT_PARAMS: dict[str, Param] = {"levels": Param(3, COUNT, "CMS levels, each updated at every step with lr")}
# What a flat control takes away from its method: every other hyperparameter of the two must match.
SCHEDULE_KEYS = tuple(k for k in {**CMS_PARAMS, **FLAT_PARAMS} if k != "cms_hidden")

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
    "memory_scope": Param("sample", Options(MEMORY_SCOPES), "the fast memories start from their initial "
                                                            "states at every sample, or carry along the stream"),
    "memory_reset": Param("never", Options(MEMORY_RESETS), "with memory_scope = stream: when the carried "
                                                           "memory returns to the initial states"),
    "memory_impl": Param("auto", Options(IMPLEMENTATIONS), "how the MLP memories compute, with equal numbers up "
                                                           "to float rounding: as their writes' factors, as "
                                                           "per-sample weights updated token by token (the "
                                                           "reference), the same in one fused kernel per chunk "
                                                           "(numba), or auto: the kernel on CPU for batches of "
                                                           "at most 24 samples per numba thread, else "
                                                           "factored"),
}


def titans_options(hp: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("memory_hidden", "chunk_size", "memory_chunk_size", "memory_lr", "memory_decay", "self_modify",
            "grad_mode", "memory_loss", "memory_scope")
    return {**{k: hp[k] for k in keys}, "implementation": hp["memory_impl"]}


def cms_options(hp: Mapping[str, Any]) -> dict[str, Any]:
    """The CMS of a model; a flat control (`levels`) has the same blocks, every one of period 1."""
    if "levels" in hp:
        return {"hidden": hp["cms_hidden"], "periods": [1] * hp["levels"], "variant": "sequential"}
    return {"hidden": hp["cms_hidden"], "periods": hp["frequencies"], "variant": hp["cms_variant"]}


def spec_lr(hp: Mapping[str, Any], spec: LevelSpec) -> float:
    """eta of a level: `level_lrs` when given, else lr by `level_lr_rule`; the base level scaled by
    `base_lr_scale`."""
    if spec.index < 0:
        return hp["base_lr_scale"] * level_lr(hp["lr"], spec.period, hp["level_lr_rule"])
    lrs = hp["level_lrs"]
    return lrs[spec.index] if lrs else level_lr(hp["lr"], spec.period, hp["level_lr_rule"])


def resolve_time_scales(hp: Mapping[str, Any], data: ScenarioData) -> dict[str, Any]:
    """`hp` with every period in optimizer steps, resolved against the scenario's steps per experience."""
    online = hp["online_experience_size"] if hp["online"] else 0
    per_experience = steps_per_experience([len(e.x_train) for e in data.experiences], hp["batch_size"],
                                          hp["epochs"], online, hp["iterations"])
    return {**hp, "steps_per_experience": per_experience,
            "frequencies": [parse_period(v).steps(per_experience) for v in hp["frequencies"]],
            "base_period": parse_period(hp["base_period"]).steps(per_experience)}


def time_scale_record(hp: Mapping[str, Any]) -> dict[str, Any]:
    """What a run logs about its resolved schedule: the periods in steps and the learning rate of each level
    (the base level first)."""
    specs = [LevelSpec("base", [], hp["base_period"], -1)]
    specs += [LevelSpec(f"level{i}", [], period, i) for i, period in enumerate(hp["frequencies"])]
    return {"steps_per_experience": hp["steps_per_experience"],
            "resolved_frequencies": hp["frequencies"], "resolved_base_period": hp["base_period"],
            "resolved_level_lrs": [float(f"{spec_lr(hp, s):.6g}") for s in specs]}


def _usage(where: str, method: str, exc: ValueError) -> UsageError:
    return UsageError(f"{where + ': ' if where else ''}method '{method}': {exc}.")


class NestedMethod(AvalancheMethod):
    """A Nested Learning model trained by an Avalanche template under the CMS level schedule."""

    FAMILY = "nested"
    USES_CMS: ClassVar[bool] = True
    FLAT: ClassVar[bool] = False  # a same-architecture control: every level of period 1, one optimizer
    CONTROL: ClassVar[str | None] = None  # the registered name of this method's flat control

    @classmethod
    def shared_params(cls) -> dict[str, Param]:
        # The MLP's `hidden_sizes` does not apply: each Nested Learning model has its own width knobs.
        if not cls.USES_CMS:
            return {**TRAIN_PARAMS, **NESTED_PARAMS}
        cms = {k: p for k, p in CMS_PARAMS.items() if k not in SCHEDULE_KEYS} | FLAT_PARAMS if cls.FLAT else CMS_PARAMS
        return {**TRAIN_PARAMS, **NESTED_PARAMS, **cms}

    @classmethod
    def scheduled(cls) -> bool:
        """Whether the model's levels run on the CMS schedule (not for Titans alone or a flat control)."""
        return cls.USES_CMS and not cls.FLAT

    @classmethod
    def check_hp(cls, hp: Mapping[str, Any], where: str) -> None:
        if "memory_hidden" in hp:
            try:
                check_memory(hp["memory_hidden"], hp["self_modify"], hp["memory_loss"])
            except ValueError as exc:
                raise _usage(where, cls.NAME, exc) from exc
        if hp.get("memory_reset", "never") != "never" and hp["memory_scope"] != "stream":
            raise UsageError(f"{where + ': ' if where else ''}'memory_reset' of method '{cls.NAME}' applies to a "
                             f"memory carried along the stream: it needs memory_scope = 'stream'. Got "
                             f"memory_scope = {hp['memory_scope']!r} instead.")
        if cls.scheduled():
            cls._check_schedule(hp, f"{where + ': ' if where else ''}method '{cls.NAME}'")

    @staticmethod
    def _check_schedule(hp: Mapping[str, Any], owner: str) -> None:
        levels, periods = len(hp["frequencies"]), [parse_period(v) for v in hp["frequencies"]]
        if hp["level_lrs"] and len(hp["level_lrs"]) != levels:
            raise UsageError(f"{owner}: 'level_lrs' needs one learning rate per CMS level ({levels}) or none. "
                             f"Got {hp['level_lrs']!r} instead.")
        if all(p.unit == "steps" for p in periods):
            try:
                check_periods(hp["frequencies"], hp["cms_variant"])
            except ValueError as exc:
                raise UsageError(f"{owner}: {exc}.") from exc
        elif hp["cms_variant"] == "nested":
            raise UsageError(f"{owner}: nested CMS needs 'frequencies' in optimizer steps (each dividing the next "
                             f"slower one). Got {hp['frequencies']!r} instead.")
        named = [("frequencies", v) for v in hp["frequencies"]] + [("base_period", hp["base_period"])]
        for key, value in named:
            period = parse_period(value)
            if hp["partial_chunk"] == "flush" and period.unit == "experience" and period.amount > 1:
                raise UsageError(f"{owner}: '{key}' value {value!r} spans more than one experience, but "
                                 "partial_chunk = 'flush' applies every level at each experience's end: set "
                                 "partial_chunk = 'carry'.")

    @abstractmethod
    def build_net(self, hp: Mapping[str, Any], info: ScenarioInfo) -> nn.Module:
        """The plain torch model (before the task-label wrapper)."""

    def build_model(self, hp: Mapping[str, Any], info: ScenarioInfo) -> nn.Module:
        from nlbench.methods.models import build_classifier

        return build_classifier(self.build_net(hp, info), info)

    def for_stream(self, hp: dict[str, Any], data: ScenarioData) -> dict[str, Any]:
        """Every period in optimizer steps for this stream, checked against the CMS variant."""
        if not self.scheduled():
            return hp
        resolved = resolve_time_scales(hp, data)
        try:
            check_periods(resolved["frequencies"], resolved["cms_variant"])
        except ValueError as exc:
            raise _usage("", self.NAME, exc) from exc
        return resolved

    def make_learner(self, hp: dict[str, Any], data: ScenarioData, device: str) -> Learner:
        resolved = self.for_stream(hp, data)
        learner = super().make_learner(resolved, data, device)
        if self.scheduled():
            learner.learned = {"schedule": time_scale_record(resolved)}
        return learner

    def make_optimizer(self, model: nn.Module, hp: Mapping[str, Any]) -> Any:
        if not self.scheduled():  # one optimizer over every parameter, as for naive
            return build_optimizer(model.parameters(), hp, model)
        levels = model_levels(model, base_period=hp["base_period"])
        if hp["base_lr_scale"] == 0:  # a frozen base: no gradient, no update (the paper's eta -> 0 limit)
            for p in levels[0].params:
                p.requires_grad_(False)
            levels = levels[1:]
        return LevelScheduledOptimizer(
            levels, lambda params, spec: build_optimizer(params, {**hp, "lr": spec_lr(hp, spec)}, model))

    def boundary_plugins(self, hp: Mapping[str, Any]) -> list[Any]:
        from nlbench.methods.plugins import FlushPartialChunks, ResetStreamMemory

        plugins: list[Any] = []
        if self.scheduled() and hp["partial_chunk"] == "flush":
            plugins.append(FlushPartialChunks())
        if hp.get("memory_reset") == "experience":
            plugins.append(ResetStreamMemory())
        return plugins
