"""The evaluation protocol: one accuracy matrix per run, the same for every method family.

Before training, every test experience is evaluated (b). After training on experience i, every test
experience j is evaluated: R[i, j]. Evaluation time is kept out of the training time. Binary scenarios also
get balanced-accuracy and ROC-AUC matrices of the same shape (accuracy alone flatters a constant guess on
imbalanced sites).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from nlbench.data.scenario import Experience, ScenarioData
from nlbench.methods.base import Learner
from nlbench.run.metrics import BINARY_MATRICES, binary_scores


@dataclass
class ProtocolResult:
    R: np.ndarray
    b: np.ndarray
    train_time_s: float
    eval_time_s: float
    extra: dict[str, np.ndarray] = field(default_factory=dict)  # "bacc", "auc": T x T, binary scenarios
    # Binary scenarios: per test set, (labels, positive-class scores) after the last experience, for ROC
    # curves and confusion matrices.
    final_scores: list[tuple[list[int], list[float]]] = field(default_factory=list)


def accuracy(learner: Learner, experience: Experience) -> float:
    """Fraction of the experience's test samples whose predicted label is right."""
    if len(experience.y_test) == 0:
        return float("nan")
    pred = learner.predict(experience.x_test, experience.task_label)
    return float((pred == experience.y_test).to(torch.float64).mean())


def evaluate_all(learner: Learner, experiences: list[Experience]) -> np.ndarray:
    return np.array([accuracy(learner, e) for e in experiences])


def evaluate_binary(learner: Learner, experiences: list[Experience]) -> tuple[dict[str, np.ndarray], list]:
    """Accuracy, balanced accuracy and ROC AUC of every test set, from one pass of class scores; also the
    (labels, positive-class scores) of each test set."""
    rows, scores_out = [], []
    for e in experiences:
        if len(e.y_test) == 0:
            rows.append((float("nan"),) * 3)
            scores_out.append(([], []))
            continue
        scores = learner.predict_scores(e.x_test, e.task_label)
        p1 = scores[:, 1].numpy() if scores.shape[1] > 1 else np.zeros(len(scores))
        acc = float((scores.argmax(dim=1) == e.y_test).to(torch.float64).mean())
        rows.append((acc, *binary_scores(e.y_test.numpy(), p1)))
        scores_out.append((e.y_test.tolist(), p1.tolist()))
    acc, bacc, auc = (np.array(col) for col in zip(*rows, strict=True))
    return {"acc": acc, "bacc": bacc, "auc": auc}, scores_out


def run_protocol(
    learner: Learner,
    data: ScenarioData,
    on_experience: Callable[[int, np.ndarray], None] | None = None,
) -> ProtocolResult:
    """Train on each experience in order, filling R row by row; `on_experience(i, R[i])` after each row."""
    T = len(data.experiences)
    binary = data.info.n_classes == 2
    R = np.full((T, T), np.nan)
    extra = {k: np.full((T, T), np.nan) for k in BINARY_MATRICES} if binary else {}

    final_scores: list[tuple[list[int], list[float]]] = []

    def evaluate(after: int) -> dict[str, np.ndarray]:
        view = data.test_view(after)  # test sets as the stream presents them at this point
        if not binary:
            return {"acc": evaluate_all(learner, view)}
        metrics, scores = evaluate_binary(learner, view)
        final_scores[:] = scores  # kept from the last evaluation: after the last experience
        return metrics

    t0 = time.perf_counter()
    b = evaluate(-1)["acc"]
    eval_time = time.perf_counter() - t0
    train_time = 0.0
    for i in range(T):
        t0 = time.perf_counter()
        learner.train_experience(i)
        train_time += time.perf_counter() - t0
        t0 = time.perf_counter()
        row = evaluate(i)
        R[i] = row["acc"]
        for k in extra:
            extra[k][i] = row[k]
        eval_time += time.perf_counter() - t0
        if on_experience is not None:
            on_experience(i, R[i])
    return ProtocolResult(R=R, b=b, train_time_s=train_time, eval_time_s=eval_time, extra=extra,
                          final_scores=final_scores)
