"""Glue between plain torch backbones and Avalanche's task-aware forward."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from avalanche.models import MultiTaskModule
from torch import nn

from nlbench.data.scenario import ScenarioInfo

MASKED_LOGIT = -1e9  # finite, so LwF's softmax-times-log stays NaN-free


class TaskMaskedClassifier(MultiTaskModule):
    """Multi-head evaluation for task-incremental scenarios: one shared output layer whose logits are
    restricted, per sample, to the classes of its task (the masked multi-head of Mammoth/FACIL).

    All heads exist from the start, so the untrained model can be evaluated on every task (b_j).
    """

    def __init__(self, net: nn.Module, classes_per_task: Sequence[Sequence[int]], n_classes: int):
        super().__init__()
        self.net = net
        mask = torch.zeros(len(classes_per_task), n_classes, dtype=torch.bool)
        for t, classes in enumerate(classes_per_task):
            mask[t, list(classes)] = True
        self.register_buffer("task_mask", mask)
        self.max_class_label = n_classes

    def forward(self, x: torch.Tensor, task_labels: torch.Tensor | int | None) -> torch.Tensor | dict:
        if task_labels is None:  # every trained head, as LwF's teacher is asked for (a dict by task)
            return self.forward_all_tasks(x)
        logits = self.net(x)
        if isinstance(task_labels, int):
            allowed = self.task_mask[task_labels].expand_as(logits)
        else:
            allowed = self.task_mask[task_labels.long()]
        return logits.masked_fill(~allowed, MASKED_LOGIT)

    def forward_all_tasks(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        """Every trained task's masked logits from one pass through the shared net (Avalanche's default runs the
        net once per task)."""
        logits = self.net(x)
        return {t: logits.masked_fill(~self.task_mask[t], MASKED_LOGIT) for t in self.known_train_tasks_labels}

    def forward_single_task(self, x: torch.Tensor, task_label: int) -> torch.Tensor:
        return self.forward(x, task_label)


def build_classifier(net: nn.Module, info: ScenarioInfo) -> nn.Module:
    """Wrap `net` for multi-head evaluation when the scenario gives task labels."""
    if info.task_labels:
        return TaskMaskedClassifier(net, info.classes_per_experience, info.n_classes)
    return net


def input_features(info: ScenarioInfo) -> int:
    return math.prod(info.input_shape)


def trainable_params(model: nn.Module) -> int:
    """How many numbers the optimizer can change."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
