"""Synaptic Intelligence (Zenke et al. 2017).

Avalanche 0.6 bug, fixed here: `SynapticIntelligencePlugin.extract_weights` stores
`param.detach().cpu().flatten()`, which on a CPU model is a view of the live parameter, not a copy. The
"old" and "new" weights then always agree, every path integral is 0, the anchor moves with the model,
and SI silently reduces to naive fine-tuning. We replace it with a copying version before building
the plugin (tests/test_baselines.py checks the importances are non-zero on CPU).
"""

import math
from collections.abc import Mapping
from typing import Any

from nlbench.core.params import NON_NEGATIVE, POSITIVE, Param
from nlbench.core.registry import register_baseline
from nlbench.core.spaces import Float
from nlbench.data.scenario import ScenarioInfo
from nlbench.methods.avalanche import AvalancheMethod


def _copying_extract_weights(model: Any, target: Any, excluded_parameters: Any) -> None:
    from avalanche.training.plugins import SynapticIntelligencePlugin

    for name, param in SynapticIntelligencePlugin.allowed_parameters(model, excluded_parameters):
        target[name].data = param.detach().flatten().clone().cpu()


def patch_avalanche_si() -> None:
    """Make Avalanche's SI copy weights instead of aliasing them (idempotent)."""
    from avalanche.training.plugins import SynapticIntelligencePlugin

    SynapticIntelligencePlugin.extract_weights = staticmethod(_copying_extract_weights)


@register_baseline
class SI(AvalancheMethod):
    """Quadratic penalty weighted by each parameter's path-integral contribution to past loss decrease."""

    NAME = "si"
    PARAMS = {
        "si_lambda": Param(100.0, NON_NEGATIVE, "weight of the path-integral penalty",
                           Float(0.1, 1e4, log=True)),
        # xi of Zenke et al.: Avalanche's 1e-7 lets near-zero weight changes blow the importances up (loss -> -inf
        # on digits); 0.1 is the value of van de Ven et al.'s SI code.
        "si_eps": Param(0.1, POSITIVE, "damping xi of the importances"),
        # Avalanche caps every importance at 0.001; Zenke et al. and van de Ven et al. do not cap (0 here).
        "si_clip": Param(0.001, NON_NEGATIVE, "cap on each importance (Avalanche's 0.001; 0: no cap)"),
    }

    def plugins(self, hp: Mapping[str, Any], info: ScenarioInfo) -> list[Any]:
        return [si_plugin(hp["si_lambda"], hp["si_eps"], hp["si_clip"])]


def si_plugin(si_lambda: float, eps: float, clip: float) -> Any:
    """Avalanche's SI (weights copied, see above) with the importance cap `clip` (0: none)."""
    from avalanche.training.plugins import SynapticIntelligencePlugin

    patch_avalanche_si()

    class CappedSI(SynapticIntelligencePlugin):
        def after_training_exp(self, strategy: Any, **kwargs: Any) -> None:
            super(SynapticIntelligencePlugin, self).after_training_exp(strategy, **kwargs)
            self.update_ewc_data(strategy.model, self.ewc_data, self.syn_data, clip or math.inf,
                                 self.excluded_parameters, 1, eps=self.eps)

    return CappedSI(si_lambda=si_lambda, eps=eps)
