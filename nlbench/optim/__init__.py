"""Optimizers: the CMS level schedule, and the deep/meta optimizers of arXiv §4 and §7.2 (see `catalog`)."""

from nlbench.optim.catalog import (
    MEMORY_POLICIES,
    OPTIMIZERS,
    build_optimizer,
    load_state,
    reset_memory,
    resolve_options,
    save_state,
)
from nlbench.optim.context import ContextSteered
from nlbench.optim.dgd import DGD
from nlbench.optim.levels import PARTIAL_CHUNK, LevelScheduledOptimizer, model_levels
from nlbench.optim.meta import MetaOptimizer
from nlbench.optim.momentum import DeepMomentum, DeltaMomentum
from nlbench.optim.muon import M3, Muon
from nlbench.optim.newton_schulz import newton_schulz

__all__ = ["DGD", "M3", "MEMORY_POLICIES", "OPTIMIZERS", "PARTIAL_CHUNK", "ContextSteered", "DeepMomentum",
           "DeltaMomentum", "LevelScheduledOptimizer", "MetaOptimizer", "Muon", "build_optimizer",
           "load_state", "model_levels", "newton_schulz", "reset_memory", "resolve_options", "save_state"]
