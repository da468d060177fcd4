"""Soft-voting ensemble of k-NN, RBF SVM and random forest (the heart-disease papers' "ensemble")."""

from collections.abc import Mapping
from typing import Any

from nlbench.core.params import COUNT, POSITIVE, Param
from nlbench.core.registry import register_baseline
from nlbench.core.spaces import Choice
from nlbench.methods.sklearn import SklearnMethod


@register_baseline
class Ensemble(SklearnMethod):
    """Soft vote (averaged probabilities) of k-NN (k = 9), RBF SVM and a 100-tree random forest."""

    NAME = "ensemble"
    PARAMS = {"n_neighbors": Param(9, COUNT, "k of the k-NN member"),
              "C": Param(1.0, POSITIVE, "inverse regularisation of the SVM member"),
              "n_estimators": Param(100, COUNT, "trees of the random-forest member")}
    # no `grid = true` for it (a grid over three members is slow), but `nlbench tune` searches its members' knobs
    SPACES = {"n_neighbors": Choice((5, 9, 15)), "C": Choice((0.1, 1.0, 10.0)), "n_estimators": Choice((50, 100, 200))}

    def make_estimator(self, hp: Mapping[str, Any], seed: int) -> Any:
        from sklearn.ensemble import RandomForestClassifier, VotingClassifier
        from sklearn.neighbors import KNeighborsClassifier
        from sklearn.svm import SVC

        return VotingClassifier([
            ("knn", KNeighborsClassifier(n_neighbors=hp["n_neighbors"])),
            ("svm", SVC(kernel="rbf", C=hp["C"], probability=True, random_state=seed)),
            ("rf", RandomForestClassifier(n_estimators=hp["n_estimators"], random_state=seed, n_jobs=1)),
        ], voting="soft")
