"""Plain torch modules (no Avalanche imports): backbones and, later, the Nested Learning models."""

from nlbench.nn.mlp import MLP

__all__ = ["MLP"]
