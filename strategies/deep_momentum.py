"""Naive fine-tuning trained by Deep Momentum GD."""

from nlbench.core.registry import register_strategy
from nlbench.methods.base import AvalancheMethod


@register_strategy
class DeepMomentumStrategy(AvalancheMethod):
    """Naive fine-tuning trained by Deep Momentum GD: an MLP momentum memory learned online (arXiv Eqs. 50, 52)."""

    NAME = "deep-momentum"
    FAMILY = "nested"
    DEFAULTS = {"optimizer": "deep-momentum", "lr": 0.01, "momentum": 0.9}
