"""Gradient Episodic Memory (Lopez-Paz & Ranzato 2017); needs the quadprog QP solver."""

from collections.abc import Mapping
from typing import Any

from nlbench.core.params import Interval
from nlbench.core.registry import register_baseline
from nlbench.data.scenario import ScenarioInfo
from nlbench.methods.base import AvalancheMethod


@register_baseline
class GEM(AvalancheMethod):
    """Solves a QP per step so the loss on each past experience's memory does not increase."""

    NAME = "gem"
    DEFAULTS = {"patterns_per_exp": 50, "memory_strength": 0.5}
    _parameter_constraints = {
        "patterns_per_exp": Interval(int, 1, None),
        "memory_strength": Interval(float, 0.0, None),
    }

    def plugins(self, hp: Mapping[str, Any], info: ScenarioInfo) -> list[Any]:
        from avalanche.training.plugins import GEMPlugin

        return [GEMPlugin(patterns_per_experience=hp["patterns_per_exp"], memory_strength=hp["memory_strength"])]
