"""Naive fine-tuning with SGD steered by an associative gradient memory (AdaGrad by default; Eq. 47, App. B)."""

from nlbench.core.registry import register_strategy
from nlbench.methods.base import AvalancheMethod


@register_strategy
class ContextSteeredStrategy(AvalancheMethod):
    """Naive fine-tuning with SGD steered by an associative gradient memory (AdaGrad by default; Eq. 47, App. B)."""

    NAME = "context-steered"
    FAMILY = "nested"
    DEFAULTS = {"optimizer": "context-steered", "lr": 0.03}
