"""Naive fine-tuning trained by M3, multi-scale momentum Muon (arXiv §7.2, Algorithm 1)."""

from nlbench.core.registry import register_strategy
from nlbench.methods.base import AvalancheMethod


@register_strategy
class M3Strategy(AvalancheMethod):
    """Naive fine-tuning trained by M3, multi-scale momentum Muon (arXiv §7.2, Algorithm 1)."""

    NAME = "m3"
    FAMILY = "nested"
    DEFAULTS = {"optimizer": "m3", "lr": 0.003}
