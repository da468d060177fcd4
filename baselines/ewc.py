"""Elastic Weight Consolidation (Kirkpatrick et al. 2017)."""

from collections.abc import Mapping
from typing import Any

from nlbench.core.params import Interval, Options
from nlbench.core.registry import register_baseline
from nlbench.data.scenario import ScenarioInfo
from nlbench.methods.base import AvalancheMethod


@register_baseline
class EWC(AvalancheMethod):
    """Quadratic penalty on parameters weighted by their Fisher information from earlier experiences."""

    NAME = "ewc"
    DEFAULTS = {"ewc_lambda": 100.0, "ewc_mode": "separate", "decay_factor": 0.9}
    _parameter_constraints = {
        "ewc_lambda": Interval(float, 0.0, None),
        "ewc_mode": Options(("separate", "online")),
        "decay_factor": Interval(float, 0.0, 1.0),  # used by the online mode only
    }

    def plugins(self, hp: Mapping[str, Any], info: ScenarioInfo) -> list[Any]:
        from avalanche.training.plugins import EWCPlugin

        online = hp["ewc_mode"] == "online"
        return [EWCPlugin(ewc_lambda=hp["ewc_lambda"], mode=hp["ewc_mode"],
                          decay_factor=hp["decay_factor"] if online else None)]
