"""Learning without Forgetting (Li & Hoiem 2016).

Avalanche's LwF adds alpha x KL(teacher || student) at temperature T (no T^2 factor), summed over the previous
tasks' heads. van de Ven & Tolias weight the current task's cross-entropy by 1/t and the distillation (with T^2) by
1 - 1/t at the t-th task: `lwf_ce_scale = "1/t"` with alpha_t = T^2 (t - 1) reproduces that up to Adam's epsilon
(the reproduce suite's setting).
"""

from collections.abc import Mapping
from typing import Any

from nlbench.core.params import NON_NEGATIVE, POSITIVE, NumberList, OneOf, Options, Param
from nlbench.core.registry import register_baseline
from nlbench.core.spaces import Float
from nlbench.data.scenario import ScenarioInfo
from nlbench.methods.avalanche import AvalancheMethod


def lwf_plugin(alpha: float | list[float], temperature: float, ce_scale: str) -> Any:
    """Avalanche's LwFPlugin with a per-experience alpha whose last entry repeats, and the CE scaling."""
    from avalanche.training.plugins import LwFPlugin

    alphas = alpha if isinstance(alpha, list) else [alpha]

    class ScaledLwF(LwFPlugin):
        def before_backward(self, strategy: Any, **kwargs: Any) -> None:
            seen = self.lwf.expcount  # experiences finished before this one
            self.lwf.alpha = alphas[min(seen, len(alphas) - 1)]
            if ce_scale == "1/t":
                strategy.loss = strategy.loss / (seen + 1)
            super().before_backward(strategy, **kwargs)

    return ScaledLwF(alpha=alphas[0], temperature=temperature)


@register_baseline
class LwF(AvalancheMethod):
    """Distils the previous model's outputs on current data into the new model."""

    NAME = "lwf"
    PARAMS = {
        "lwf_alpha": Param(1.0, OneOf((NON_NEGATIVE, NumberList(None, NON_NEGATIVE))),
                           "weight of the distillation loss, or one per experience (the last repeats)",
                           Float(0.01, 10.0, log=True)),
        "temperature": Param(2.0, POSITIVE, "softmax temperature of the distillation", Float(0.5, 4.0)),
        "lwf_ce_scale": Param("1", Options(("1", "1/t")), "weight of the current task's cross-entropy: 1, or 1/t "
                                                          "at the t-th experience (van de Ven's weighting)"),
    }

    def plugins(self, hp: Mapping[str, Any], info: ScenarioInfo) -> list[Any]:
        return [lwf_plugin(hp["lwf_alpha"], hp["temperature"], hp["lwf_ce_scale"])]
