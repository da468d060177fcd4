"""Linear model trained by SGD on the log loss (partial_fit: learns experience by experience)."""

from collections.abc import Mapping
from typing import Any

from nlbench.core.params import POSITIVE, Param
from nlbench.core.registry import register_baseline
from nlbench.methods.sklearn import SklearnMethod


@register_baseline
class SGDLinear(SklearnMethod):
    """Linear model trained by SGD on the log loss (partial_fit: learns experience by experience)."""

    NAME = "sgd"
    PARAMS = {"alpha": Param(1e-4, POSITIVE, "L2 penalty")}
    GRID = {"alpha": [1e-5, 1e-4, 1e-3]}

    def make_estimator(self, hp: Mapping[str, Any], seed: int) -> Any:
        from sklearn.linear_model import SGDClassifier

        return SGDClassifier(loss="log_loss", alpha=hp["alpha"], random_state=seed)
