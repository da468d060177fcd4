"""scikit-learn's MLP, hidden layers [128, 128], batch 32 (partial_fit: one epoch per pass)."""

from collections.abc import Mapping
from typing import Any

from nlbench.core.params import Interval, IntList
from nlbench.core.registry import register_baseline
from nlbench.methods.sklearn import SklearnMethod


@register_baseline
class MLPSklearn(SklearnMethod):
    """scikit-learn's MLP, hidden layers [128, 128], batch 32 (partial_fit: one epoch per pass)."""

    NAME = "mlp-sklearn"
    DEFAULTS = {"hidden_sizes": [128, 128], "alpha": 1e-4, "learning_rate_init": 1e-3, "batch_size": 32}
    _parameter_constraints = {"hidden_sizes": IntList(), "alpha": Interval(float, 0.0, None),
                              "learning_rate_init": Interval(float, 0.0, None, closed="neither"),
                              "batch_size": Interval(int, 1, None)}
    GRID = {"alpha": [1e-4, 1e-3, 1e-2]}

    def make_estimator(self, hp: Mapping[str, Any], seed: int) -> Any:
        from sklearn.neural_network import MLPClassifier

        return MLPClassifier(hidden_layer_sizes=tuple(hp["hidden_sizes"]), alpha=hp["alpha"],
                             learning_rate_init=hp["learning_rate_init"], batch_size=hp["batch_size"],
                             max_iter=200, random_state=seed)
