"""Gaussian naive Bayes (partial_fit: learns experience by experience)."""

from collections.abc import Mapping
from typing import Any

from nlbench.core.params import POSITIVE, Param
from nlbench.core.registry import register_baseline
from nlbench.methods.sklearn import SklearnMethod


@register_baseline
class NaiveBayes(SklearnMethod):
    """Gaussian naive Bayes (partial_fit: learns experience by experience)."""

    NAME = "naive-bayes"
    PARAMS = {"var_smoothing": Param(1e-9, POSITIVE, "share of the largest variance added to every variance")}
    GRID = {"var_smoothing": [1e-9, 1e-6, 1e-3, 1e-1]}

    def make_estimator(self, hp: Mapping[str, Any], seed: int) -> Any:
        from sklearn.naive_bayes import GaussianNB

        return GaussianNB(var_smoothing=hp["var_smoothing"])
