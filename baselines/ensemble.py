"""Soft-voting ensemble of k-NN, RBF SVM and random forest (the heart-disease papers' "ensemble")."""

from collections.abc import Mapping
from typing import Any

from nlbench.core.params import Interval
from nlbench.core.registry import register_baseline
from nlbench.methods.sklearn import SklearnMethod


@register_baseline
class Ensemble(SklearnMethod):
    """Soft vote (averaged probabilities) of k-NN (k = 9), RBF SVM and a 100-tree random forest."""

    NAME = "ensemble"
    DEFAULTS = {"n_neighbors": 9, "C": 1.0, "n_estimators": 100}
    _parameter_constraints = {"n_neighbors": Interval(int, 1, None), "C": Interval(float, 0.0, None, closed="neither"),
                              "n_estimators": Interval(int, 1, None)}

    def make_estimator(self, hp: Mapping[str, Any], seed: int) -> Any:
        from sklearn.ensemble import RandomForestClassifier, VotingClassifier
        from sklearn.neighbors import KNeighborsClassifier
        from sklearn.svm import SVC

        return VotingClassifier([
            ("knn", KNeighborsClassifier(n_neighbors=hp["n_neighbors"])),
            ("svm", SVC(kernel="rbf", C=hp["C"], probability=True, random_state=seed)),
            ("rf", RandomForestClassifier(n_estimators=hp["n_estimators"], random_state=seed, n_jobs=1)),
        ], voting="soft")
