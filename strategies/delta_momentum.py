"""Naive fine-tuning trained by Delta Momentum."""

from nlbench.core.registry import register_strategy
from nlbench.methods.base import AvalancheMethod


@register_strategy
class DeltaMomentumStrategy(AvalancheMethod):
    """Naive fine-tuning trained by Delta Momentum: momentum with the delta-rule objective (arXiv Eqs. 48-49)."""

    NAME = "delta-momentum"
    FAMILY = "nested"
    DEFAULTS = {"optimizer": "delta-momentum", "lr": 0.01, "momentum": 0.9}
