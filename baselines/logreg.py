"""L2-regularised multinomial logistic regression."""

from collections.abc import Mapping
from typing import Any

from nlbench.core.params import POSITIVE, Param
from nlbench.core.registry import register_baseline
from nlbench.methods.sklearn import SklearnMethod


@register_baseline
class LogReg(SklearnMethod):
    """L2-regularised multinomial logistic regression."""

    NAME = "logreg"
    PARAMS = {"C": Param(1.0, POSITIVE, "inverse L2 regularisation strength")}
    GRID = {"C": [0.01, 0.1, 1.0, 10.0]}

    def make_estimator(self, hp: Mapping[str, Any], seed: int) -> Any:
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=hp["C"], max_iter=2000)
