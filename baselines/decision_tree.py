"""A single CART decision tree."""

from collections.abc import Mapping
from typing import Any

from nlbench.core.params import Interval, Param
from nlbench.core.registry import register_baseline
from nlbench.methods.sklearn import SklearnMethod


@register_baseline
class DecisionTree(SklearnMethod):
    """A single CART decision tree."""

    NAME = "decision-tree"
    PARAMS = {"max_depth": Param(0, Interval(int, 0, None), "maximum depth (0: unlimited)")}
    GRID = {"max_depth": [0, 3, 5, 10]}

    def make_estimator(self, hp: Mapping[str, Any], seed: int) -> Any:
        from sklearn.tree import DecisionTreeClassifier

        return DecisionTreeClassifier(max_depth=hp["max_depth"] or None, random_state=seed)
