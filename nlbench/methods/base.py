"""What every method provides: defaults, a constraint table, and a learner the protocol can drive.

A method module (under `baselines/` or `strategies/`) subclasses `AvalancheMethod`, sets NAME, its own
DEFAULTS and constraints, and returns its plugins (or overrides `build_strategy`). The protocol never
calls Avalanche directly: it drives a `Learner`, so sklearn baselines fit the same loop.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from nlbench.core.errors import NonFiniteLossError
from nlbench.core.params import Boolean, Interval, IntList, Options, Table, validate_params
from nlbench.data.scenario import SETTINGS, ScenarioData, ScenarioInfo
from nlbench.optim.catalog import (
    MEMORY_POLICIES,
    OPTIMIZERS,
    build_optimizer,
    check_optimizer,
    reset_memory,
    save_state,
)
from nlbench.optim.catalog import resolve_options as resolve_optimizer_options

FAMILIES = ("nested", "avalanche", "sklearn")

# Training knobs shared by every gradient-trained method; a suite's [train] table overrides them.
TRAIN_DEFAULTS: dict[str, Any] = {
    "epochs": 5,
    "batch_size": 32,
    "eval_batch_size": 512,
    "optimizer": "sgd",
    "optimizer_options": {},  # the chosen optimizer's own knobs (nlbench.optim.catalog), resolved and logged
    "optimizer_memory": "keep",  # at a new experience: keep the optimizer's state (momenta...) or reset it
    "save_optimizer_state": False,  # log the optimizer's state after each experience as run artifacts
    "online": False,  # online stream: each experience split into small sub-experiences, one pass (epochs = 1)
    "online_experience_size": 10,  # samples per online sub-experience
    "lr": 0.1,
    "momentum": 0.0,
    "weight_decay": 0.0,
    "hidden_sizes": [128, 128],
}
TRAIN_CONSTRAINTS: dict[str, Any] = {
    "epochs": Interval(int, 1, None),
    "batch_size": Interval(int, 1, None),
    "eval_batch_size": Interval(int, 1, None),
    "optimizer": Options(tuple(OPTIMIZERS)),
    "optimizer_options": Table(),
    "optimizer_memory": Options(MEMORY_POLICIES),
    "save_optimizer_state": Boolean(),
    "online": Boolean(),
    "online_experience_size": Interval(int, 1, None),
    "lr": Interval(float, 0.0, None, closed="neither"),
    "momentum": Interval(float, 0.0, 1.0, closed="left"),
    "weight_decay": Interval(float, 0.0, None),
    "hidden_sizes": IntList(),
}


class Learner(ABC):
    """The protocol's view of a method: learn one experience, predict labels."""

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


class Method(ABC):
    """Base class of every registered method (strategy or baseline)."""

    NAME: ClassVar[str] = ""
    FAMILY: ClassVar[str] = "avalanche"
    COMPATIBILITY: ClassVar[tuple[str, ...]] = SETTINGS
    DEFAULTS: ClassVar[dict[str, Any]] = {}
    _parameter_constraints: ClassVar[dict[str, Any]] = {}

    @classmethod
    def description(cls) -> str:
        return (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""

    @classmethod
    def all_defaults(cls) -> dict[str, Any]:
        return dict(cls.DEFAULTS)

    @classmethod
    def all_constraints(cls) -> dict[str, Any]:
        return dict(cls._parameter_constraints)

    @classmethod
    def resolve(cls, *overrides: Mapping[str, Any], where: str = "") -> dict[str, Any]:
        """Defaults, then each override in order; every key and value is validated."""
        hp = cls.all_defaults()
        for layer in overrides:
            validate_params(layer, cls.all_constraints(), f"method '{cls.NAME}'", where)
            hp.update(layer)
        cls.check_hp(hp, where)
        return hp

    @classmethod  # noqa: B027 - optional hook, no-op by default
    def check_hp(cls, hp: Mapping[str, Any], where: str) -> None:
        """Cross-parameter checks a single constraint cannot express; raise UsageError."""

    @abstractmethod
    def make_learner(self, hp: dict[str, Any], data: ScenarioData, device: str,
                     loggers: Sequence[Any] = ()) -> Learner:
        """A fresh learner for one run (model and optimizer initialised from the global torch seed)."""


class AvalancheLearner(Learner):
    """Drives an Avalanche strategy one experience at a time; evaluation is nlbench's, not Avalanche's."""

    def __init__(self, strategy: Any, benchmark: Any, eval_batch_size: int, online_experience_size: int = 0):
        self.strategy = strategy
        self.benchmark = benchmark
        self.eval_batch_size = eval_batch_size
        self.online_experience_size = online_experience_size

    def train_experience(self, index: int) -> None:
        experience = self.benchmark.train_stream[index]
        if not self.online_experience_size:
            self.strategy.train(experience)
            return
        # Online: Avalanche's own split into small sub-experiences, each seen once; shuffled with the run's
        # seeded torch RNG. The task boundary stays visible, so boundary-aware plugins still work.
        from avalanche.benchmarks.scenarios.online import split_online_stream

        for sub in split_online_stream([experience], self.online_experience_size, shuffle=True,
                                       access_task_boundaries=True):
            self.strategy.train(sub)

    @torch.no_grad()
    def predict_scores(self, x: torch.Tensor, task_label: int) -> torch.Tensor:
        """Softmax of the model's logits."""
        from avalanche.models.utils import avalanche_forward

        model = self.strategy.model
        was_training = model.training
        model.eval()
        device = self.strategy.device
        scores = []
        for start in range(0, len(x), self.eval_batch_size):
            xb = x[start:start + self.eval_batch_size].to(device)
            tb = torch.full((len(xb),), task_label, dtype=torch.long, device=device)
            scores.append(torch.softmax(avalanche_forward(model, xb, tb), dim=1).cpu())
        model.train(was_training)
        return torch.cat(scores) if scores else torch.empty(0, 0)

    def predict(self, x: torch.Tensor, task_label: int) -> torch.Tensor:
        scores = self.predict_scores(x, task_label)
        return scores.argmax(dim=1) if len(scores) else torch.empty(0, dtype=torch.long)

    @property
    def n_trainable_params(self) -> int:
        from nlbench.methods.models import trainable_params

        return trainable_params(self.strategy.model)


def end_of_experience(experience: Any) -> bool:
    """True after a whole experience; in an online stream only after its last sub-experience."""
    return getattr(experience, "is_last_subexp", True) is not False


def origin_index(experience: Any) -> int:
    """The stream index of an experience, or of the experience an online sub-experience was cut from."""
    origin = getattr(experience, "origin_experience", None)
    return (origin or experience).current_experience


def optimizer_template(base: type) -> type:
    """`base` with nlbench's optimizer handling: built once, memory kept or reset at each new experience."""

    class OptimizerPolicyTemplate(base):
        def __init__(self, *, optimizer_memory: str = "keep", save_optimizer_state: bool = False, **kwargs: Any):
            super().__init__(**kwargs)
            self.optimizer_memory = optimizer_memory
            self.save_optimizer_state = save_optimizer_state

        def make_optimizer(self, **kwargs: Any) -> None:
            # The optimizer already holds every parameter (nlbench's models never grow). Avalanche's own
            # reset would drop state kept outside `state` and it refuses several param groups (Muon, M3).
            if self.clock.train_exp_counter > 0 and self.optimizer_memory == "reset":
                reset_memory(self.optimizer)
            # Avalanche calls this twice at the first experience while `optimized_param_id` is unset.
            self.optimized_param_id = dict(self.model.named_parameters())

        def optimizer_step(self) -> None:
            if hasattr(self.optimizer, "observe_loss"):  # the meta-optimizer's context flow
                self.optimizer.observe_loss(float(self.loss.detach()))
            super().optimizer_step()

        def _after_training_exp(self, **kwargs: Any) -> None:
            super()._after_training_exp(**kwargs)
            if self.save_optimizer_state and end_of_experience(self.experience):
                # -> artifacts optimizer_state/exp{i}.pt, see nlbench.optim.load_state
                import tempfile
                from pathlib import Path

                with tempfile.TemporaryDirectory() as tmp:
                    path = Path(tmp) / f"exp{origin_index(self.experience)}.pt"
                    save_state(self.optimizer, path)
                    for logger in self.evaluator.loggers:
                        if hasattr(logger, "log_file"):
                            logger.log_file(str(path), "optimizer_state")

    return OptimizerPolicyTemplate


def finite_loss_guard() -> Any:
    """Plugin that stops a run at the first NaN/inf loss, before the optimizer applies it."""
    from avalanche.core import SupervisedPlugin

    class FiniteLossGuard(SupervisedPlugin):
        def before_update(self, strategy: Any, **kwargs: Any) -> None:
            loss = float(strategy.loss.detach())
            if not math.isfinite(loss):
                raise NonFiniteLossError(
                    f"loss became {loss} at training iteration {strategy.clock.train_iterations} "
                    f"of experience {strategy.clock.train_exp_counter}"
                )

    return FiniteLossGuard()


class AvalancheMethod(Method):
    """A method trained by an Avalanche `SupervisedTemplate` on the shared MLP backbone."""

    FAMILY = "avalanche"

    @classmethod
    def all_defaults(cls) -> dict[str, Any]:
        return {**TRAIN_DEFAULTS, **cls.DEFAULTS}

    @classmethod
    def all_constraints(cls) -> dict[str, Any]:
        return {**TRAIN_CONSTRAINTS, **cls._parameter_constraints}

    def build_model(self, hp: Mapping[str, Any], info: ScenarioInfo) -> nn.Module:
        from nlbench.methods.models import build_classifier, input_features
        from nlbench.nn import MLP

        return build_classifier(MLP(input_features(info), hp["hidden_sizes"], info.n_classes), info)

    def plugins(self, hp: Mapping[str, Any], info: ScenarioInfo) -> list[Any]:
        """The Avalanche plugins that make this method what it is (none for naive fine-tuning)."""
        return []

    def template(self) -> type:
        from avalanche.training.templates import SupervisedTemplate

        return SupervisedTemplate

    @classmethod
    def resolve(cls, *overrides: Mapping[str, Any], where: str = "") -> dict[str, Any]:
        hp = super().resolve(*overrides, where=where)
        hp["optimizer_options"] = resolve_optimizer_options(hp["optimizer"], hp["optimizer_options"], where)
        if hp["online"]:
            hp["epochs"] = 1  # an online stream is seen once; the resolved value is what gets logged
        check_optimizer(hp, f"method '{cls.NAME}'", where)
        return hp

    def make_optimizer(self, model: nn.Module, hp: Mapping[str, Any]) -> Any:
        return build_optimizer(model.parameters(), hp, model)

    def template_options(self, hp: Mapping[str, Any]) -> dict[str, Any]:
        """Extra keyword arguments for `template()` beyond the shared training ones."""
        return {}

    def build_strategy(self, model: nn.Module, hp: Mapping[str, Any], info: ScenarioInfo, device: str,
                       evaluator: Any) -> Any:
        return optimizer_template(self.template())(
            model=model,
            optimizer=self.make_optimizer(model, hp),
            criterion=nn.CrossEntropyLoss(),
            train_mb_size=hp["batch_size"],
            train_epochs=hp["epochs"],
            eval_mb_size=hp["eval_batch_size"],
            device=torch.device(device),
            plugins=[*self.plugins(hp, info), finite_loss_guard()],
            evaluator=evaluator,
            optimizer_memory=hp["optimizer_memory"],
            save_optimizer_state=hp["save_optimizer_state"],
            **self.template_options(hp),
        )

    def make_learner(self, hp: dict[str, Any], data: ScenarioData, device: str,
                     loggers: Sequence[Any] = ()) -> Learner:
        from avalanche.evaluation.metrics import accuracy_metrics, loss_metrics
        from avalanche.training.plugins import EvaluationPlugin

        evaluator = EvaluationPlugin(accuracy_metrics(epoch=True), loss_metrics(epoch=True),
                                     loggers=list(loggers))
        model = self.build_model(hp, data.info)
        strategy = self.build_strategy(model, hp, data.info, device, evaluator)
        return AvalancheLearner(strategy, data.benchmark, hp["eval_batch_size"],
                                hp["online_experience_size"] if hp["online"] else 0)
