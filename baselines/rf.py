"""Random forest of 100 trees."""

from collections.abc import Mapping
from typing import Any

from nlbench.core.params import Interval
from nlbench.core.registry import register_baseline
from nlbench.methods.sklearn import SklearnMethod


@register_baseline
class RandomForest(SklearnMethod):
    """Random forest of 100 trees."""

    NAME = "rf"
    DEFAULTS = {"n_estimators": 100, "max_depth": 0}
    _parameter_constraints = {"n_estimators": Interval(int, 1, None), "max_depth": Interval(int, 0, None)}
    GRID = {"n_estimators": [50, 100, 200], "max_depth": [0, 5, 10]}

    def make_estimator(self, hp: Mapping[str, Any], seed: int) -> Any:
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(n_estimators=hp["n_estimators"], max_depth=hp["max_depth"] or None,
                                      random_state=seed, n_jobs=1)
