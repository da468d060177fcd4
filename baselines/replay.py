"""Experience replay with an experience-balanced buffer (Avalanche's default storage policy)."""

from collections.abc import Mapping
from typing import Any

from nlbench.core.params import COUNT, Param
from nlbench.core.registry import register_baseline
from nlbench.data.scenario import ScenarioInfo
from nlbench.methods.avalanche import AvalancheMethod


@register_baseline
class Replay(AvalancheMethod):
    """Rehearses samples from a fixed-size buffer split evenly over past experiences."""

    NAME = "replay"
    PARAMS = {"mem_size": Param(200, COUNT, "samples in the replay buffer, split evenly over past experiences")}

    def plugins(self, hp: Mapping[str, Any], info: ScenarioInfo) -> list[Any]:
        from avalanche.training.plugins import ReplayPlugin

        class BufferedReplay(ReplayPlugin):
            # Same buffer update as ReplayPlugin, through the storage policy's non-deprecated API
            # (Avalanche 0.6's `update` forces its DeprecationWarning past any filter).
            def after_training_exp(self, strategy: Any, **kwargs: Any) -> None:
                self.storage_policy.post_adapt(strategy, strategy.experience)

        return [BufferedReplay(mem_size=hp["mem_size"])]
