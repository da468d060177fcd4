"""What every method provides: declared hyperparameters and a learner the protocol can drive.

A method module (under `baselines/` or `strategies/`) subclasses one of the family adapters (`AvalancheMethod`,
`NestedMethod`, `SklearnMethod`), sets NAME, declares its own hyperparameters once in PARAMS, and may give
new defaults to hyperparameters it inherits in DEFAULTS (its tuned settings). The protocol never calls a
framework directly: it drives a `Learner`, so every family fits the same loop.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import torch

from nlbench.core.params import Declared, defaults, validate_params
from nlbench.data.scenario import SETTINGS, ScenarioData

FAMILIES = ("nested", "avalanche", "sklearn")


class Learner(ABC):
    """The protocol's view of a method: learn one experience, predict labels.

    Besides the accuracy matrix, a run may hand the record what the learner chose (`learned_params`), its
    training curves and files (optimizer states). The learner only collects them: writing is the tracking
    layer's job, so a run does no I/O.
    """

    @abstractmethod
    def train_experience(self, index: int) -> None:
        """Learn training experience `index` of the scenario this learner was built for."""

    @abstractmethod
    def predict(self, x: torch.Tensor, task_label: int) -> torch.Tensor:
        """Predicted class labels for a batch of inputs from the task `task_label`."""

    def predict_scores(self, x: torch.Tensor, task_label: int) -> torch.Tensor:
        """Class scores, (N, n_classes), for ranking metrics such as ROC AUC. Default: one-hot predictions."""
        pred = self.predict(x, task_label)
        return torch.nn.functional.one_hot(pred, int(pred.max()) + 1 if len(pred) else 1).float()

    @property
    @abstractmethod
    def n_trainable_params(self) -> int:
        """How many numbers the method learns."""

    def state_parts(self) -> dict[str, Any]:
        """What the method keeps, by part ("model", "optimizer", "method"), for its memory footprint
        (`nlbench.run.footprint`): objects walked for their tensors and arrays. Default: nothing."""
        return {}

    @property
    def learned_params(self) -> dict[str, Any]:
        """Values the learner chose itself (a grid search's pick), logged as params."""
        return {}

    @property
    def curves(self) -> list[tuple[str, float, int]]:
        """(name, value, step) of the training curves, e.g. Avalanche's per-epoch loss and accuracy."""
        return []

    @property
    def files(self) -> dict[str, bytes]:
        """Run artifacts by relative path, e.g. `optimizer_state/exp0.pt`."""
        return {}


class Method(Declared, ABC):
    """Base class of every registered method (strategy or baseline). PARAMS: the hyperparameters it adds;
    DEFAULTS: its tuned settings of the ones it inherits."""

    NAME: ClassVar[str] = ""
    FAMILY: ClassVar[str] = "avalanche"
    COMPATIBILITY: ClassVar[tuple[str, ...]] = SETTINGS

    @classmethod
    def resolve(cls, *overrides: Mapping[str, Any], where: str = "") -> dict[str, Any]:
        """Defaults, then each override in order; every key and value is validated."""
        params = cls.params()
        hp = defaults(params)
        for layer in overrides:
            validate_params(layer, params, f"method '{cls.NAME}'", where)
            hp.update(layer)
        cls.check_hp(hp, where)
        return hp

    @classmethod  # noqa: B027 - optional hook, no-op by default
    def check_hp(cls, hp: Mapping[str, Any], where: str) -> None:
        """Cross-parameter checks a single rule cannot express; raise UsageError."""

    def for_stream(self, hp: dict[str, Any], data: ScenarioData) -> dict[str, Any]:
        """`hp` with what depends on the stream resolved (a CMS period given in experiences, say). Default: `hp`."""
        return hp

    @abstractmethod
    def make_learner(self, hp: dict[str, Any], data: ScenarioData, device: str) -> Learner:
        """A fresh learner for one run (model and optimizer initialised from the global torch seed)."""
