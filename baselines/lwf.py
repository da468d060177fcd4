"""Learning without Forgetting (Li & Hoiem 2016)."""

from collections.abc import Mapping
from typing import Any

from nlbench.core.params import Interval
from nlbench.core.registry import register_baseline
from nlbench.data.scenario import ScenarioInfo
from nlbench.methods.base import AvalancheMethod


@register_baseline
class LwF(AvalancheMethod):
    """Distils the previous model's outputs on current data into the new model."""

    NAME = "lwf"
    DEFAULTS = {"lwf_alpha": 1.0, "temperature": 2.0}
    _parameter_constraints = {
        "lwf_alpha": Interval(float, 0.0, None),
        "temperature": Interval(float, 0.0, None, closed="neither"),
    }

    def plugins(self, hp: Mapping[str, Any], info: ScenarioInfo) -> list[Any]:
        from avalanche.training.plugins import LwFPlugin

        return [LwFPlugin(alpha=hp["lwf_alpha"], temperature=hp["temperature"])]
