"""The Avalanche adapter: a method trained by an Avalanche `SupervisedTemplate`, driven as a `Learner`.

A baseline module subclasses `AvalancheMethod` and returns its plugins (or a template, for `cumulative`).
nlbench adds its own plugins (`nlbench.methods.plugins`) and subclasses the template only where Avalanche
gives no hook: `make_optimizer`, to keep one optimizer over the whole stream.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from nlbench.core.errors import UsageError
from nlbench.core.params import Param
from nlbench.data.scenario import Experience, ScenarioData, ScenarioInfo
from nlbench.methods.base import Learner, Method
from nlbench.methods.online import online_parts
from nlbench.methods.training import BACKBONE_PARAMS, TRAIN_PARAMS
from nlbench.optim.catalog import build_optimizer, check_optimizer, reset_memory, resolve_options


def to_avalanche_benchmark(experiences: list[Experience]) -> Any:
    """Train and test streams with one experience per task; samples are (x, y, task_label)."""
    from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
    from avalanche.benchmarks.scenarios.supervised import with_classes_timeline
    from avalanche.benchmarks.scenarios.task_aware import with_task_labels
    from avalanche.benchmarks.utils import DataAttribute
    from avalanche.benchmarks.utils.classification_dataset import TaskAwareClassificationDataset
    from avalanche.benchmarks.utils.data_attribute import TaskLabels
    from avalanche.benchmarks.utils.flat_data import ConstantSequence
    from torch.utils.data import TensorDataset

    def dataset(x: torch.Tensor, y: torch.Tensor, t: int) -> Any:
        targets = DataAttribute(y.tolist(), "targets")
        # Avalanche 0.6 finds the classes by one property call per sample: a tenth of a small run's fixed cost.
        targets._uniques = set(torch.unique(y).tolist())
        return TaskAwareClassificationDataset(
            [TensorDataset(x, y)], data_attributes=[targets, TaskLabels(ConstantSequence(t, len(y)))],
        )

    train = [dataset(e.x_train, e.y_train, e.task_label) for e in experiences]
    test = [dataset(e.x_test, e.y_test, e.task_label) for e in experiences]
    # classes_in_this_experience & co. are needed by multi-head models and some plugins.
    return with_classes_timeline(with_task_labels(benchmark_from_datasets(train=train, test=test)))


class AvalancheLearner(Learner):
    """Drives an Avalanche strategy one experience at a time; evaluation is nlbench's, not Avalanche's."""

    def __init__(self, strategy: Any, benchmark: Any, eval_batch_size: int, online_experience_size: int = 0,
                 recorder: Any = None, snapshots: Any = None):
        self.strategy = strategy
        self.benchmark = benchmark
        self.eval_batch_size = eval_batch_size
        self.online_experience_size = online_experience_size
        self.recorder, self.snapshots = recorder, snapshots
        self.learned: dict[str, Any] = {}  # what the method resolved for this stream (a CMS schedule in steps)

    def train_experience(self, index: int) -> None:
        experience = self.benchmark.train_stream[index]
        parts = online_parts(experience, self.online_experience_size) if self.online_experience_size else [experience]
        for part in parts:
            self.strategy.train(part)

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

    def state_parts(self) -> dict[str, Any]:
        """The model (parameters, gradients, buffers), the optimizer's state and the method's plugins' state
        (nlbench's probes, which record curves and snapshots for the run's record, are not the method's)."""
        from nlbench.methods.plugins import PROBES

        plugins = [p for p in self.strategy.plugins if not isinstance(p, PROBES)]
        return {"model": self.strategy.model, "optimizer": self.strategy.optimizer, "method": plugins}

    @property
    def learned_params(self) -> dict[str, Any]:
        return dict(self.learned)

    @property
    def curves(self) -> list[tuple[str, float, int]]:
        return list(self.recorder.points) if self.recorder else []

    @property
    def files(self) -> dict[str, bytes]:
        return dict(self.snapshots.files) if self.snapshots else {}


def no_evaluation() -> Any:
    """An Avalanche evaluator that does nothing: the protocol evaluates and EpochCurves records the curves.
    Avalanche's own, even without metrics, copies the experience at every callback (~10 per iteration)."""
    import warnings

    from avalanche.training.plugins import EvaluationPlugin

    class NoEvaluation(EvaluationPlugin):
        # EvaluationPlugin answers every `before_*`/`after_*` lookup with a forwarding closure (after a caught
        # AttributeError), so Avalanche called it at each of ~10 callbacks per iteration; plain lookup skips them.
        __getattribute__ = object.__getattribute__

        def _update_metrics_and_loggers(self, strategy: Any, callback: str) -> list:
            return []

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No loggers specified")
        return NoEvaluation(loggers=[])


def harness_template(base: type) -> type:
    """`base` whose optimizer is built once over every parameter and kept (or reset) at each new experience,
    whose training batches are cut from the stream's tensors where that draws the same batches
    (`nlbench.methods.batches`), and whose per-iteration events call only the plugins' implemented hooks
    (`nlbench.methods.hooks`)."""

    from nlbench.methods.hooks import with_direct_hooks

    class KeptOptimizerTemplate(with_direct_hooks(base)):
        def __init__(self, *, optimizer_memory: str = "keep", stream: tuple[list[Any], list[Any]] | None = None,
                     **kwargs: Any):
            super().__init__(**kwargs)
            self.optimizer_memory = optimizer_memory
            self.stream = stream  # (nlbench experiences, the Avalanche train datasets made from them)

        def make_train_dataloader(self, **kwargs: Any) -> None:
            from nlbench.methods.batches import tensor_batches

            super().make_train_dataloader(**kwargs)
            fast = tensor_batches(self, *self.stream) if self.stream is not None else None
            if fast is not None:
                self.dataloader = fast

        def make_optimizer(self, **kwargs: Any) -> None:
            # The optimizer already holds every parameter (nlbench's models never grow). Avalanche's own
            # reset would drop state kept outside `state` and it refuses several param groups (Muon, M3).
            if self.clock.train_exp_counter > 0 and self.optimizer_memory == "reset":
                reset_memory(self.optimizer)
            # Avalanche calls this twice at the first experience while `optimized_param_id` is unset.
            self.optimized_param_id = dict(self.model.named_parameters())

    return KeptOptimizerTemplate


class AvalancheMethod(Method):
    """A method trained by an Avalanche `SupervisedTemplate` on the shared MLP backbone."""

    FAMILY = "avalanche"

    @classmethod
    def shared_params(cls) -> dict[str, Param]:
        return {**TRAIN_PARAMS, **BACKBONE_PARAMS}

    @classmethod
    def resolve(cls, *overrides: Mapping[str, Any], where: str = "") -> dict[str, Any]:
        hp = super().resolve(*overrides, where=where)
        hp["optimizer_options"] = resolve_options(hp["optimizer"], hp["optimizer_options"], where)
        if hp["online"]:
            if hp["iterations"]:
                raise UsageError(f"{where + ': ' if where else ''}'iterations' of method '{cls.NAME}' counts steps "
                                 f"over repeated passes, but an online stream is seen once: set iterations = 0 or "
                                 f"online = false. Got iterations = {hp['iterations']!r} instead.")
            hp["epochs"] = 1  # an online stream is seen once; the resolved value is what gets logged
        check_optimizer(hp, f"method '{cls.NAME}'", where)
        return hp

    def build_model(self, hp: Mapping[str, Any], info: ScenarioInfo) -> nn.Module:
        from nlbench.methods.models import build_classifier, input_features
        from nlbench.nn import MLP

        return build_classifier(MLP(input_features(info), hp["hidden_sizes"], info.n_classes, hp["activation"],
                                    hp["dropout"]), info)

    def plugins(self, hp: Mapping[str, Any], info: ScenarioInfo) -> list[Any]:
        """The Avalanche plugins that make this method what it is (none for naive fine-tuning)."""
        return []

    def template(self) -> type:
        from avalanche.training.templates import SupervisedTemplate

        return SupervisedTemplate

    def make_optimizer(self, model: nn.Module, hp: Mapping[str, Any]) -> Any:
        return build_optimizer(model.parameters(), hp, model)

    def boundary_plugins(self, hp: Mapping[str, Any]) -> list[Any]:
        """nlbench's plugins that must run before the method's own at each boundary (none here)."""
        return []

    def make_learner(self, hp: dict[str, Any], data: ScenarioData, device: str) -> Learner:
        from nlbench.methods.plugins import (
            EpochCurves,
            FiniteLossGuard,
            IterationBudget,
            LossObserver,
            OptimizerStateSnapshots,
        )

        model = self.build_model(hp, data.info)
        optimizer = self.make_optimizer(model, hp)
        recorder = EpochCurves()
        snapshots = OptimizerStateSnapshots() if hp["save_optimizer_state"] else None
        probes = [FiniteLossGuard(), *([LossObserver()] if hasattr(optimizer, "observe_loss") else []),
                  *([snapshots] if snapshots else []),
                  *([IterationBudget(hp["iterations"])] if hp["iterations"] else []), recorder]
        benchmark = to_avalanche_benchmark(data.experiences)
        strategy = harness_template(self.template())(
            model=model,
            optimizer=optimizer,
            criterion=nn.CrossEntropyLoss(),
            train_mb_size=hp["batch_size"],
            train_epochs=hp["epochs"],
            eval_mb_size=hp["eval_batch_size"],
            device=torch.device(device),
            plugins=[*self.boundary_plugins(hp), *self.plugins(hp, data.info), *probes],
            evaluator=no_evaluation(),  # nlbench evaluates; EpochCurves records the training curves
            optimizer_memory=hp["optimizer_memory"],
            stream=(data.experiences, [e.dataset for e in benchmark.train_stream]),
        )
        return AvalancheLearner(strategy, benchmark, hp["eval_batch_size"],
                                hp["online_experience_size"] if hp["online"] else 0, recorder, snapshots)
