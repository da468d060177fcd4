"""Random forest of 100 trees."""

from collections.abc import Mapping
from typing import Any

from nlbench.core.params import COUNT, Interval, Param
from nlbench.core.registry import register_baseline
from nlbench.methods.sklearn import SklearnMethod


@register_baseline
class RandomForest(SklearnMethod):
    """Random forest of 100 trees."""

    NAME = "rf"
    PARAMS = {"n_estimators": Param(100, COUNT, "trees"),
              "max_depth": Param(0, Interval(int, 0, None), "maximum depth of a tree (0: unlimited)")}
    GRID = {"n_estimators": [50, 100, 200], "max_depth": [0, 5, 10]}

    def make_estimator(self, hp: Mapping[str, Any], seed: int) -> Any:
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(n_estimators=hp["n_estimators"], max_depth=hp["max_depth"] or None,
                                      random_state=seed, n_jobs=1)
