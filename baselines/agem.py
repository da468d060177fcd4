"""Averaged Gradient Episodic Memory (Chaudhry et al. 2019)."""

from collections.abc import Mapping
from typing import Any

from nlbench.core.params import COUNT, Param
from nlbench.core.registry import register_baseline
from nlbench.data.scenario import ScenarioInfo
from nlbench.methods.avalanche import AvalancheMethod


@register_baseline
class AGEM(AvalancheMethod):
    """Projects each gradient so the average loss on a memory sample of past experiences does not rise."""

    NAME = "agem"
    PARAMS = {
        "patterns_per_exp": Param(50, COUNT, "memory samples kept per past experience"),
        "sample_size": Param(64, COUNT, "memory samples drawn per step for the reference gradient"),
    }

    def plugins(self, hp: Mapping[str, Any], info: ScenarioInfo) -> list[Any]:
        from avalanche.training.plugins import AGEMPlugin

        return [AGEMPlugin(patterns_per_experience=hp["patterns_per_exp"], sample_size=hp["sample_size"])]
