"""Naive fine-tuning trained by Delta Gradient Descent on its linear layers (arXiv Eq. 57)."""

from nlbench.core.registry import register_strategy
from nlbench.methods.base import AvalancheMethod


@register_strategy
class DGDStrategy(AvalancheMethod):
    """Naive fine-tuning trained by Delta Gradient Descent on its linear layers (arXiv Eq. 57)."""

    NAME = "dgd"
    FAMILY = "nested"
    DEFAULTS = {"optimizer": "dgd", "lr": 0.1}
