"""k-nearest neighbours (k = 9): refit on the data of the regime; no partial_fit."""

from collections.abc import Mapping
from typing import Any

from nlbench.core.params import COUNT, Param
from nlbench.core.registry import register_baseline
from nlbench.methods.sklearn import SklearnMethod


@register_baseline
class KNN(SklearnMethod):
    """k-nearest neighbours (k = 9): refit on the data of the regime; no partial_fit."""

    NAME = "knn"
    PARAMS = {"n_neighbors": Param(9, COUNT, "k, the neighbours that vote")}
    GRID = {"n_neighbors": [3, 5, 9, 15]}

    def make_estimator(self, hp: Mapping[str, Any], seed: int) -> Any:
        from sklearn.neighbors import KNeighborsClassifier

        return KNeighborsClassifier(n_neighbors=hp["n_neighbors"])
