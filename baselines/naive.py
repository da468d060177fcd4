"""Naive fine-tuning: the lower bound every CL method must beat."""

from nlbench.method import AvalancheMethod
from nlbench.registry import register_baseline


@register_baseline
class Naive(AvalancheMethod):
    """Plain fine-tuning on each experience in turn, no protection against forgetting (lower bound)."""

    NAME = "naive"
