"""What every scenario provides: tensors per experience and the metadata a method and a reader need.

A scenario module (under `scenarios/`) subclasses `Scenario`, sets NAME and SETTING, declares its options once in
PARAMS, and implements `make_experiences(seed)`. The same tensors feed every method family, so every method sees
exactly the same data in the same order.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from nlbench.core.params import Declared, defaults, validate_params

SETTINGS = ("class-incremental", "domain-incremental", "task-incremental")


@dataclass(frozen=True)
class Experience:
    """One task of the stream: train and test tensors, its task label and the classes it contains."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    task_label: int = 0
    classes: tuple[int, ...] = field(default=())


@dataclass(frozen=True)
class ScenarioInfo:
    """Metadata a method needs to build its model and a reader needs to judge its numbers."""

    name: str
    setting: str
    n_experiences: int
    input_shape: tuple[int, ...]
    n_classes: int
    chance_acc: float
    classes_per_experience: tuple[tuple[int, ...], ...]

    @property
    def task_labels(self) -> bool:
        """Task identity is given at train and test time (multi-head evaluation)."""
        return self.setting == "task-incremental"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Stream:
    """What a scenario makes from a seed.

    - `eval_views[i + 1]` holds the test sets as the stream presents them after training experience i, and
      `eval_views[0]` holds them before any training. This is for streams whose preprocessing is fitted on
      the training data seen so far. `None` means the experiences' own test sets.
    - `raw` holds each experience's (train, test) rows before preprocessing, for duplicate checks.
    - `source` says where the data came from.
    """

    experiences: list[Experience]
    eval_views: list[list[Experience]] | None = None
    raw: list[tuple[np.ndarray, np.ndarray]] | None = None
    source: str = "built-in"


@dataclass
class ScenarioData(Stream):
    """A built scenario: its stream and its metadata."""

    info: ScenarioInfo = field(kw_only=True)

    def test_view(self, after: int) -> list[Experience]:
        """The experiences to evaluate after training experience `after` (-1: before any training)."""
        return self.experiences if self.eval_views is None else self.eval_views[after + 1]

    def raw_rows(self) -> list[tuple[np.ndarray, np.ndarray]]:
        if self.raw is not None:
            return self.raw
        return [(e.x_train.flatten(1).numpy(), e.x_test.flatten(1).numpy()) for e in self.experiences]


class Scenario(Declared):
    """Base class of a task-split data stream. Constructor options are validated against PARAMS.

    `data_dir` is where external data may be found (`--data-dir`); it is a setting of the run, not an option of
    the stream, and scenarios on bundled data ignore it.
    """

    NAME: ClassVar[str] = ""
    SETTING: ClassVar[str] = "class-incremental"

    def __init__(self, where: str = "", data_dir: str = "", **options: Any):
        params = self.params()
        validate_params(options, params, f"scenario '{self.NAME}'", where)
        self.options: dict[str, Any] = {**defaults(params), **options}
        self.data_dir = data_dir
        self.check_options(where)

    def check_options(self, where: str) -> None:  # noqa: B027 - optional hook, no-op by default
        """Cross-option checks a single constraint cannot express; raise UsageError."""

    @property
    def setting(self) -> str:
        return self.SETTING

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.make_experiences is Scenario.make_experiences and cls.make_stream is Scenario.make_stream:
            raise TypeError(f"scenario class {cls.__qualname__} must define make_experiences(seed) or "
                            "make_stream(seed)")

    def make_experiences(self, seed: int) -> list[Experience]:
        """The stream's experiences, a pure function of the seed and the options (a subclass defines this, or
        `make_stream` for a stream with evaluation views or an external data source)."""
        return self.make_stream(seed).experiences

    def make_stream(self, seed: int) -> Stream:
        return Stream(self.make_experiences(seed))

    def check_data(self) -> None:  # noqa: B027 - optional hook, no-op for built-in data
        """Locate and verify external data; raise a UsageError saying how to provide it."""

    def chance_acc(self, experiences: list[Experience], n_classes: int) -> float:
        """Accuracy of uniform guessing over the classes a prediction chooses among."""
        if self.setting == "task-incremental":
            return float(np.mean([1.0 / len(e.classes) for e in experiences]))
        return 1.0 / n_classes

    def build(self, seed: int) -> ScenarioData:
        """Same seed, same tensors and order."""
        stream = self.make_stream(seed)
        experiences = stream.experiences
        classes = sorted({c for e in experiences for c in e.classes})
        info = ScenarioInfo(
            name=self.NAME,
            setting=self.setting,
            n_experiences=len(experiences),
            input_shape=tuple(experiences[0].x_train.shape[1:]),
            n_classes=len(classes),
            chance_acc=self.chance_acc(experiences, len(classes)),
            classes_per_experience=tuple(e.classes for e in experiences),
        )
        return ScenarioData(experiences, eval_views=stream.eval_views, raw=stream.raw, info=info,
                            source=stream.source)
