"""Naive fine-tuning by momentum SGD whose lr and momentum a meta-learned controller sets from the context flow."""

from nlbench.core.registry import register_strategy
from nlbench.methods.base import AvalancheMethod


@register_strategy
class MetaOptStrategy(AvalancheMethod):
    """Naive fine-tuning by momentum SGD whose lr and momentum a meta-learned controller sets from the context flow."""

    NAME = "meta-opt"
    FAMILY = "nested"
    DEFAULTS = {"optimizer": "meta-opt", "lr": 0.1, "momentum": 0.5}
