"""Averaged Gradient Episodic Memory (Chaudhry et al. 2019)."""

from collections.abc import Mapping
from typing import Any

from nlbench.core.params import Interval
from nlbench.core.registry import register_baseline
from nlbench.data.scenario import ScenarioInfo
from nlbench.methods.base import AvalancheMethod


@register_baseline
class AGEM(AvalancheMethod):
    """Projects each gradient so the average loss on a memory sample of past experiences does not rise."""

    NAME = "agem"
    DEFAULTS = {"patterns_per_exp": 50, "sample_size": 64}
    _parameter_constraints = {
        "patterns_per_exp": Interval(int, 1, None),
        "sample_size": Interval(int, 1, None),
    }

    def plugins(self, hp: Mapping[str, Any], info: ScenarioInfo) -> list[Any]:
        from avalanche.training.plugins import AGEMPlugin

        return [AGEMPlugin(patterns_per_experience=hp["patterns_per_exp"], sample_size=hp["sample_size"])]
