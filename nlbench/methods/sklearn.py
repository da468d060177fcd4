"""scikit-learn estimators as continual learners: the same scenarios, protocol, metrics and MLflow layout.

Two regimes, chosen per run:
- `incremental` learns experience by experience. An estimator with `partial_fit` continues from where it was;
  any other estimator is refit on the current experience only, the sklearn analogue of naive fine-tuning.
- `cumulative` refits on all training data seen so far: the upper bound with unlimited memory.

Scores always cover every class of the scenario, so a model that has not yet seen a class still gives valid
predictions (the class simply gets probability 0). Task-incremental scenarios restrict the argmax to the
classes of the task, like the multi-head Avalanche models.
"""

from __future__ import annotations

import itertools
import math
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, ClassVar

import numpy as np
import torch

from nlbench.core.errors import UsageError
from nlbench.core.params import COUNT, Boolean, Options, Param
from nlbench.core.spaces import Choice
from nlbench.data.scenario import ScenarioData
from nlbench.methods.base import Learner, Method

REGIMES = ("incremental", "cumulative")
SKLEARN_PARAMS: dict[str, Param] = {
    "regime": Param("incremental", Options(REGIMES), "learn experience by experience, or refit on all data seen "
                                                     "so far (cumulative)"),
    "grid": Param(False, Boolean(), "tune GRID on a 20 % validation split of the first experience"),
    "partial_fit_epochs": Param(5, COUNT, "passes per experience of an estimator with partial_fit"),
}


def as_features(x: torch.Tensor) -> np.ndarray:
    """Rows of flat float64 features, the input every sklearn estimator takes."""
    return x.reshape(len(x), -1).numpy().astype(np.float64)


def count_parameters(estimator: Any) -> int:
    """Numbers a fitted estimator keeps to predict: weights, tree nodes, support vectors or stored samples."""
    if hasattr(estimator, "estimators_") and not hasattr(estimator, "tree_"):  # forests, voting ensembles
        members = estimator.estimators_
        return sum(count_parameters(m) for m in (members.ravel() if isinstance(members, np.ndarray) else members))
    if hasattr(estimator, "tree_"):
        return int(estimator.tree_.node_count)
    if hasattr(estimator, "coefs_"):  # MLPClassifier
        return int(sum(w.size for w in estimator.coefs_) + sum(b.size for b in estimator.intercepts_))
    if hasattr(estimator, "support_vectors_"):
        return int(estimator.support_vectors_.size + estimator.dual_coef_.size + estimator.intercept_.size)
    if hasattr(estimator, "_fit_X"):  # k-NN keeps its training set
        return int(estimator._fit_X.size)
    if hasattr(estimator, "theta_"):  # Gaussian naive Bayes: means, variances, priors
        return int(estimator.theta_.size + estimator.var_.size + estimator.class_prior_.size)
    return int(sum(getattr(estimator, a).size for a in ("coef_", "intercept_") if hasattr(estimator, a)))


class SklearnLearner(Learner):
    def __init__(self, method: SklearnMethod, hp: Mapping[str, Any], data: ScenarioData, seed: int):
        self.method, self.hp, self.data, self.seed = method, dict(hp), data, seed
        self.n_classes = data.info.n_classes
        self.estimator: Any = None
        self.chosen: dict[str, Any] = {}

    def _fresh(self) -> Any:
        return self.method.make_estimator({**self.hp, **self.chosen}, self.seed)

    def _tune(self, x: np.ndarray, y: np.ndarray) -> None:
        """`grid = true`: best validation accuracy on a stratified 20 % of the first experience only."""
        from sklearn.model_selection import train_test_split

        x_fit, x_val, y_fit, y_val = train_test_split(x, y, test_size=0.2, stratify=y, random_state=self.seed)
        grid = self.method.GRID
        best, best_acc = {}, -math.inf
        for values in itertools.product(*grid.values()):
            candidate = dict(zip(grid, values, strict=True))
            est = self.method.make_estimator({**self.hp, **candidate}, self.seed).fit(x_fit, y_fit)
            acc = float((est.predict(x_val) == y_val).mean())
            if acc > best_acc:
                best, best_acc = candidate, acc
        self.chosen = best

    def train_experience(self, index: int) -> None:
        exps = self.data.experiences
        x, y = as_features(exps[index].x_train), exps[index].y_train.numpy()
        if index == 0 and self.hp["grid"]:
            self._tune(x, y)
        if self.hp["regime"] == "cumulative":
            seen = exps[: index + 1]
            x = np.concatenate([as_features(e.x_train) for e in seen])
            y = np.concatenate([e.y_train.numpy() for e in seen])
            self.estimator = self._fresh().fit(x, y)
        elif hasattr(self._fresh(), "partial_fit"):
            if self.estimator is None:
                self.estimator = self._fresh()
            for _ in range(self.hp["partial_fit_epochs"]):
                self.estimator.partial_fit(x, y, classes=np.arange(self.n_classes))
        else:
            self.estimator = self._fresh().fit(x, y)

    def state_parts(self) -> dict[str, Any]:
        """The fitted estimator (a k-NN's copy of its training set included)."""
        return {"model": self.estimator}

    def predict_scores(self, x: torch.Tensor, task_label: int) -> torch.Tensor:
        """Class probabilities over all the scenario's classes (0 for a class the estimator never saw)."""
        scores = np.zeros((len(x), self.n_classes))
        if self.estimator is not None and len(x):
            with np.errstate(divide="ignore"):  # naive Bayes: log of a 0 prior for a class not seen yet
                proba = self.estimator.predict_proba(as_features(x))
            scores[:, self.estimator.classes_.astype(int)] = proba
        return torch.from_numpy(scores).float()

    def predict(self, x: torch.Tensor, task_label: int) -> torch.Tensor:
        scores = self.predict_scores(x, task_label)
        if self.data.info.task_labels:  # multi-head: choose among the task's own classes
            mask = torch.full((self.n_classes,), -math.inf)
            mask[list(self.data.info.classes_per_experience[task_label])] = 0.0
            scores = scores + mask
        return scores.argmax(dim=1)

    @property
    def n_trainable_params(self) -> int:
        return 0 if self.estimator is None else count_parameters(self.estimator)

    @property
    def learned_params(self) -> dict[str, Any]:
        return {f"grid.{k}": v for k, v in self.chosen.items()}


class SklearnMethod(Method):
    """A scikit-learn estimator run through the continual protocol."""

    FAMILY = "sklearn"
    GRID: ClassVar[dict[str, Sequence[Any]]] = {}  # searched on the first experience when `grid = true`

    @classmethod
    def shared_params(cls) -> dict[str, Param]:
        return SKLEARN_PARAMS

    @classmethod
    def params(cls) -> dict[str, Param]:
        """The GRID is also the search space of `nlbench tune` (a choice among the grid's values)."""
        params = super().params()
        return {key: replace(p, space=Choice(tuple(cls.GRID[key]))) if key in cls.GRID and p.space is None else p
                for key, p in params.items()}

    @classmethod
    def check_hp(cls, hp: Mapping[str, Any], where: str) -> None:
        if hp["grid"] and not cls.GRID:
            prefix = f"{where}: " if where else ""
            raise UsageError(f"{prefix}method '{cls.NAME}' has no parameter grid; set grid = false.")

    @abstractmethod
    def make_estimator(self, hp: Mapping[str, Any], seed: int) -> Any:
        """A fresh, unfitted estimator for these hyperparameters, seeded where the estimator takes a seed."""

    def make_learner(self, hp: dict[str, Any], data: ScenarioData, device: str) -> Learner:
        return SklearnLearner(self, hp, data, seed=int(torch.initial_seed() % (2**31)))
