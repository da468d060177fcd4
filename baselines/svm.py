"""RBF support vector machine with Platt-scaled probabilities."""

from collections.abc import Mapping
from typing import Any

from nlbench.core.params import POSITIVE, Options, Param
from nlbench.core.registry import register_baseline
from nlbench.methods.sklearn import SklearnMethod


@register_baseline
class SVM(SklearnMethod):
    """RBF support vector machine with Platt-scaled probabilities."""

    NAME = "svm"
    PARAMS = {"C": Param(1.0, POSITIVE, "inverse regularisation strength"),
              "gamma": Param("scale", Options(("scale", "auto")), "RBF kernel width rule")}
    GRID = {"C": [0.1, 1.0, 10.0]}

    def make_estimator(self, hp: Mapping[str, Any], seed: int) -> Any:
        from sklearn.svm import SVC

        return SVC(kernel="rbf", C=hp["C"], gamma=hp["gamma"], probability=True, random_state=seed)
