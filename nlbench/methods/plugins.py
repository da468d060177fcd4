"""nlbench's own work inside Avalanche's loop, as plugins: what a strategy needs besides its CL method.

Each plugin overrides only the hooks it needs (Avalanche's `SupervisedPlugin` makes the rest no-ops). None
writes anywhere: what they collect (training curves, optimizer states) stays in memory for the run's result.
"""

from __future__ import annotations

import io
import math
from typing import Any

import torch
from avalanche.core import SupervisedPlugin

from nlbench.core.errors import NonFiniteLossError
from nlbench.methods.online import end_of_experience, origin_index
from nlbench.optim.catalog import save_state


class FiniteLossGuard(SupervisedPlugin):
    """Stops a run at the first NaN/inf loss, before the optimizer applies it."""

    def before_update(self, strategy: Any, **kwargs: Any) -> None:
        loss = float(strategy.loss.detach())
        if not math.isfinite(loss):
            raise NonFiniteLossError(
                f"loss became {loss} at training iteration {strategy.clock.train_iterations} "
                f"of experience {strategy.clock.train_exp_counter}"
            )


class IterationBudget(SupervisedPlugin):
    """Trains each experience for exactly `iterations` optimizer steps (van de Ven & Tolias's protocol): passes over
    the data repeat, each reshuffled by the template's loader, and the last one stops part-way."""

    def __init__(self, iterations: int):
        super().__init__()
        self.iterations, self.done = iterations, 0

    def before_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        self.done = 0
        strategy._stop_training = False  # a stop left over from the previous experience's last pass
        strategy.train_epochs = self.iterations  # an upper bound: every pass has at least one minibatch

    def after_training_iteration(self, strategy: Any, **kwargs: Any) -> None:
        self.done += 1
        if self.done >= self.iterations:
            strategy.stop_training()


class LossObserver(SupervisedPlugin):
    """Hands each minibatch loss to an optimizer that learns from the context flow (the meta-optimizer)."""

    def before_update(self, strategy: Any, **kwargs: Any) -> None:
        strategy.optimizer.observe_loss(float(strategy.loss.detach()))


class FlushPartialChunks(SupervisedPlugin):
    """CMS levels apply their partial chunk at the end of each experience (`partial_chunk = "flush"`), so the
    evaluated model has absorbed every gradient of the experience. It must come first among the plugins, so the
    others (EWC's importances, say) see the flushed model."""

    def after_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        if end_of_experience(strategy.experience):
            strategy.optimizer.flush()


class ResetStreamMemory(SupervisedPlugin):
    """Fast memories carried along the stream start again from their initial states when a new experience
    starts (`memory_reset = "experience"`; in an online stream, at its first sub-experience)."""

    def before_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        if getattr(strategy.experience, "is_first_subexp", True) is not False:
            for module in strategy.model.modules():
                if hasattr(module, "reset_stream_memory"):
                    module.reset_stream_memory()


class OptimizerStateSnapshots(SupervisedPlugin):
    """The optimizer's state after each experience, as the bytes of `optimizer_state/exp{i}.pt`
    (`nlbench.optim.load_state` reads them back)."""

    def __init__(self) -> None:
        super().__init__()
        self.files: dict[str, bytes] = {}

    def after_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        if end_of_experience(strategy.experience):
            buffer = io.BytesIO()
            save_state(strategy.optimizer, buffer)
            self.files[f"optimizer_state/exp{origin_index(strategy.experience)}.pt"] = buffer.getvalue()


class EpochCurves(SupervisedPlugin):
    """Per-epoch training loss and accuracy, as Avalanche's Loss_Epoch and Top1_Acc_Epoch metrics computed them
    (means over every sample of the epoch's minibatches, replayed ones included, named by the experience's task
    label, at the training-iteration clock), without Avalanche's evaluation machinery, which cost a fifth of a
    small run. The minibatch results stay on the device until the epoch ends: no sync per iteration."""

    def __init__(self) -> None:
        super().__init__()
        self.points: list[tuple[str, float, int]] = []
        self._losses: list[torch.Tensor] = []  # each minibatch's mean loss
        self._predicted: list[torch.Tensor] = []  # each minibatch's predicted labels
        self._labels: list[torch.Tensor] = []

    def before_training_epoch(self, strategy: Any, **kwargs: Any) -> None:
        self._losses, self._predicted, self._labels = [], [], []

    def after_training_iteration(self, strategy: Any, **kwargs: Any) -> None:
        self._losses.append(strategy.loss.detach())
        self._predicted.append(strategy.mb_output.detach().argmax(1))
        self._labels.append(strategy.mb_y)

    def after_training_epoch(self, strategy: Any, **kwargs: Any) -> None:
        if not self._labels:
            return
        sizes = torch.tensor([len(y) for y in self._labels], dtype=torch.float64)
        losses = torch.stack(self._losses).reshape(len(sizes), -1).sum(1).double().cpu()
        labels = torch.cat(self._labels)
        loss, hits, seen = float((losses * sizes).sum()), int((torch.cat(self._predicted) == labels).sum()), len(labels)
        step = strategy.clock.train_iterations
        task = experience_task(strategy.experience)
        name = "train_phase/train_stream" + (f"/Task{task:03d}" if task is not None else "")
        self.points.append((f"Top1_Acc_Epoch/{name}", hits / seen, step))
        self.points.append((f"Loss_Epoch/{name}", loss / seen, step))


def experience_task(experience: Any) -> int | None:
    """The experience's one task label, or None (an online sub-experience has none), as Avalanche names metrics."""
    labels = getattr(experience, "task_labels", None)
    return labels[0] if labels is not None and len(labels) == 1 else None


# What the harness adds to every strategy to observe it; not part of a method (nor of its memory footprint).
PROBES = (EpochCurves, FiniteLossGuard, IterationBudget, LossObserver, OptimizerStateSnapshots)
