"""scikit-learn's MLP, hidden layers [128, 128], batch 32 (partial_fit: one epoch per pass)."""

from collections.abc import Mapping
from typing import Any

from nlbench.core.params import COUNT, NON_NEGATIVE, POSITIVE, IntList, Param
from nlbench.core.registry import register_baseline
from nlbench.methods.sklearn import SklearnMethod


@register_baseline
class MLPSklearn(SklearnMethod):
    """scikit-learn's MLP, hidden layers [128, 128], batch 32 (partial_fit: one epoch per pass)."""

    NAME = "mlp-sklearn"
    PARAMS = {"hidden_sizes": Param([128, 128], IntList(), "hidden layer widths"),
              "alpha": Param(1e-4, NON_NEGATIVE, "L2 penalty"),
              "learning_rate_init": Param(1e-3, POSITIVE, "Adam's learning rate"),
              "batch_size": Param(32, COUNT, "minibatch size")}
    GRID = {"alpha": [1e-4, 1e-3, 1e-2]}

    def make_estimator(self, hp: Mapping[str, Any], seed: int) -> Any:
        from sklearn.neural_network import MLPClassifier

        return MLPClassifier(hidden_layer_sizes=tuple(hp["hidden_sizes"]), alpha=hp["alpha"],
                             learning_rate_init=hp["learning_rate_init"], batch_size=hp["batch_size"],
                             max_iter=200, random_state=seed)
