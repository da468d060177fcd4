"""Cumulative training: the joint upper bound with unlimited memory."""

from typing import Any

from nlbench.core.registry import register_baseline
from nlbench.methods.avalanche import AvalancheMethod


@register_baseline
class CumulativeBaseline(AvalancheMethod):
    """Retrains on the union of all experiences seen so far (joint-training upper bound)."""

    NAME = "cumulative"

    def template(self) -> type[Any]:
        from avalanche.training import Cumulative

        return Cumulative
