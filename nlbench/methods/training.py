"""The training knobs every gradient-trained method shares; a suite's [train] table sets them for all methods.

Defaults: SGD lr 0.1 without momentum, batch 32, 5 epochs (Mammoth's seq-MNIST setting; lr 0.05 with momentum
0.9 drove the MLP to constant predictions on later split-digits experiences). The MLP backbone is 2 x 128.
"""

from __future__ import annotations

from typing import Any

from nlbench.core.params import COUNT, NON_NEGATIVE, POSITIVE, Boolean, Interval, IntList, Names, Options, Param, Table
from nlbench.core.spaces import Float
from nlbench.nn.mlp import ACTIVATIONS
from nlbench.optim.catalog import MEMORY_POLICIES, OPTIMIZERS

TRAIN_PARAMS: dict[str, Param] = {
    "epochs": Param(5, COUNT, "passes over each experience's training data (1 when online)"),
    "iterations": Param(0, Interval(int, 0, None), "optimizer steps per experience instead of `epochs`, "
                                                   "reshuffling after each pass (van de Ven's protocol; 0: epochs)"),
    "batch_size": Param(32, COUNT, "training minibatch size"),
    "eval_batch_size": Param(512, COUNT, "minibatch size of the protocol's evaluations (no effect on results)"),
    "optimizer": Param("sgd", Names(lambda: OPTIMIZERS), "sgd, adam or a deep/meta optimizer of nlbench.optim"),
    "optimizer_options": Param({}, Table(), "the chosen optimizer's own knobs, logged resolved"),
    "optimizer_memory": Param("keep", Options(MEMORY_POLICIES), "at a new experience, keep the optimizer's "
                                                                "state (momenta, moments) or reset it"),
    "save_optimizer_state": Param(False, Boolean(), "keep the optimizer's state after each experience as the "
                                                    "artifact optimizer_state/exp{i}.pt"),
    "online": Param(False, Boolean(), "cut each experience into small sub-experiences, each seen once"),
    "online_experience_size": Param(10, COUNT, "samples per online sub-experience"),
    "lr": Param(0.1, POSITIVE, "learning rate (a CMS level's: by level_lr_rule, unless level_lrs)",
                Float(3e-3, 0.3, log=True)),
    "momentum": Param(0.0, Interval(float, 0.0, 1.0, closed="left"), "momentum of sgd, delta-momentum, "
                                                                      "deep-momentum, muon and meta-opt"),
    "weight_decay": Param(0.0, NON_NEGATIVE, "L2 weight decay"),
}

# The MLP every Avalanche baseline trains (the Nested Learning models have their own width knobs).
BACKBONE_PARAMS: dict[str, Param] = {
    "hidden_sizes": Param([128, 128], IntList(), "hidden layer widths of the MLP backbone"),
    "activation": Param("relu", Options(tuple(ACTIVATIONS)), "the MLP backbone's hidden activation"),
    "dropout": Param(0.0, Interval(float, 0.0, 1.0, closed="left"), "dropout after each hidden activation "
                                                                     "of the MLP backbone (training only)"),
}

# What a suite's [train] table may set: applied to every method that has the key.
TRAIN_KEYS: dict[str, Param] = {**TRAIN_PARAMS, **BACKBONE_PARAMS}


def train_table(train: dict[str, Any], accepted: dict[str, Param]) -> dict[str, Any]:
    """The [train] entries a method takes."""
    return {k: v for k, v in train.items() if k in accepted}
