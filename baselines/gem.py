"""Gradient Episodic Memory (Lopez-Paz & Ranzato 2017); needs the quadprog QP solver."""

from collections.abc import Mapping
from typing import Any

from nlbench.core.params import COUNT, NON_NEGATIVE, Param
from nlbench.core.registry import register_baseline
from nlbench.core.spaces import Float
from nlbench.data.scenario import ScenarioInfo
from nlbench.methods.avalanche import AvalancheMethod


@register_baseline
class GEM(AvalancheMethod):
    """Solves a QP per step so the loss on each past experience's memory does not increase."""

    NAME = "gem"
    PARAMS = {
        "patterns_per_exp": Param(50, COUNT, "memory samples kept per past experience"),
        "memory_strength": Param(0.5, NON_NEGATIVE, "margin added to the projected gradient (gamma)",
                                 Float(0.0, 1.0)),
    }

    def plugins(self, hp: Mapping[str, Any], info: ScenarioInfo) -> list[Any]:
        from avalanche.training.plugins import GEMPlugin

        return [GEMPlugin(patterns_per_experience=hp["patterns_per_exp"], memory_strength=hp["memory_strength"])]
