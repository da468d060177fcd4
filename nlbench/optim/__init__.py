"""Optimizers: the CMS level schedule (and, later, the deep/meta optimizers of arXiv §4 and §7.2)."""

from nlbench.optim.levels import PARTIAL_CHUNK, LevelScheduledOptimizer, model_levels

__all__ = ["PARTIAL_CHUNK", "LevelScheduledOptimizer", "model_levels"]
