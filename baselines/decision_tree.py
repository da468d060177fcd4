"""A single CART decision tree."""

from collections.abc import Mapping
from typing import Any

from nlbench.core.params import Interval
from nlbench.core.registry import register_baseline
from nlbench.methods.sklearn import SklearnMethod


@register_baseline
class DecisionTree(SklearnMethod):
    """A single CART decision tree."""

    NAME = "decision-tree"
    DEFAULTS = {"max_depth": 0}
    _parameter_constraints = {"max_depth": Interval(int, 0, None)}
    GRID = {"max_depth": [0, 3, 5, 10]}

    def make_estimator(self, hp: Mapping[str, Any], seed: int) -> Any:
        from sklearn.tree import DecisionTreeClassifier

        return DecisionTreeClassifier(max_depth=hp["max_depth"] or None, random_state=seed)
