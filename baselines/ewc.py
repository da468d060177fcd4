"""Elastic Weight Consolidation (Kirkpatrick et al. 2017)."""

from collections.abc import Mapping
from typing import Any

from nlbench.core.params import NON_NEGATIVE, Interval, Options, Param
from nlbench.core.registry import register_baseline
from nlbench.core.spaces import Float
from nlbench.data.scenario import ScenarioInfo
from nlbench.methods.avalanche import AvalancheMethod


@register_baseline
class EWC(AvalancheMethod):
    """Quadratic penalty on parameters weighted by their Fisher information from earlier experiences."""

    NAME = "ewc"
    PARAMS = {
        "ewc_lambda": Param(100.0, NON_NEGATIVE, "weight of the Fisher penalty", Float(0.1, 1e4, log=True)),
        "ewc_mode": Param("separate", Options(("separate", "online")), "one penalty per past experience, or one "
                                                                       "running penalty (online EWC)"),
        "decay_factor": Param(0.9, Interval(float, 0.0, 1.0), "decay of the running Fisher (online mode only)"),
    }

    def plugins(self, hp: Mapping[str, Any], info: ScenarioInfo) -> list[Any]:
        from avalanche.training.plugins import EWCPlugin

        online = hp["ewc_mode"] == "online"
        return [EWCPlugin(ewc_lambda=hp["ewc_lambda"], mode=hp["ewc_mode"],
                          decay_factor=hp["decay_factor"] if online else None)]
