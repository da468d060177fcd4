"""RBF support vector machine with Platt-scaled probabilities."""

from collections.abc import Mapping
from typing import Any

from nlbench.core.params import Interval, Options
from nlbench.core.registry import register_baseline
from nlbench.methods.sklearn import SklearnMethod


@register_baseline
class SVM(SklearnMethod):
    """RBF support vector machine with Platt-scaled probabilities."""

    NAME = "svm"
    DEFAULTS = {"C": 1.0, "gamma": "scale"}
    _parameter_constraints = {"C": Interval(float, 0.0, None, closed="neither"), "gamma": Options(("scale", "auto"))}
    GRID = {"C": [0.1, 1.0, 10.0]}

    def make_estimator(self, hp: Mapping[str, Any], seed: int) -> Any:
        from sklearn.svm import SVC

        return SVC(kernel="rbf", C=hp["C"], gamma=hp["gamma"], probability=True, random_state=seed)
