"""Naive fine-tuning trained by Muon."""

from nlbench.core.registry import register_strategy
from nlbench.methods.base import AvalancheMethod


@register_strategy
class MuonStrategy(AvalancheMethod):
    """Naive fine-tuning trained by Muon: Newton-Schulz orthogonalised momentum (arXiv Eq. 52)."""

    NAME = "muon"
    FAMILY = "nested"
    DEFAULTS = {"optimizer": "muon", "lr": 0.01, "momentum": 0.95}
