"""Naive fine-tuning trained by Delta Gradient Descent on its linear layers (arXiv Eq. 57)."""

from nlbench.method import AvalancheMethod
from nlbench.registry import register_strategy


@register_strategy
class DGDStrategy(AvalancheMethod):
    """Naive fine-tuning trained by Delta Gradient Descent on its linear layers (arXiv Eq. 57)."""

    NAME = "dgd"
    FAMILY = "nested"
    DEFAULTS = {"optimizer": "dgd", "lr": 0.1}
