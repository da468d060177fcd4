"""Naive fine-tuning: the lower bound every CL method must beat."""

from nlbench.core.registry import register_baseline
from nlbench.methods.avalanche import AvalancheMethod


@register_baseline
class Naive(AvalancheMethod):
    """Plain fine-tuning on each experience in turn, no protection against forgetting (lower bound)."""

    NAME = "naive"
