"""Learning without Forgetting (Li & Hoiem 2016)."""

from collections.abc import Mapping
from typing import Any

from nlbench.core.params import NON_NEGATIVE, POSITIVE, Param
from nlbench.core.registry import register_baseline
from nlbench.core.spaces import Float
from nlbench.data.scenario import ScenarioInfo
from nlbench.methods.avalanche import AvalancheMethod


@register_baseline
class LwF(AvalancheMethod):
    """Distils the previous model's outputs on current data into the new model."""

    NAME = "lwf"
    PARAMS = {
        "lwf_alpha": Param(1.0, NON_NEGATIVE, "weight of the distillation loss", Float(0.01, 10.0, log=True)),
        "temperature": Param(2.0, POSITIVE, "softmax temperature of the distillation", Float(0.5, 4.0)),
    }

    def plugins(self, hp: Mapping[str, Any], info: ScenarioInfo) -> list[Any]:
        from avalanche.training.plugins import LwFPlugin

        return [LwFPlugin(alpha=hp["lwf_alpha"], temperature=hp["temperature"])]
