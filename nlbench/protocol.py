"""The evaluation protocol: one accuracy matrix per run, the same for every method family.

Before training, every test experience is evaluated (b). After training on experience i, every test
experience j is evaluated: R[i, j]. Evaluation time is kept out of the training time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from nlbench.method import Learner
from nlbench.scenario import Experience, ScenarioData


@dataclass
class ProtocolResult:
    R: np.ndarray
    b: np.ndarray
    train_time_s: float
    eval_time_s: float


def accuracy(learner: Learner, experience: Experience) -> float:
    """Fraction of the experience's test samples whose predicted label is right."""
    if len(experience.y_test) == 0:
        return float("nan")
    pred = learner.predict(experience.x_test, experience.task_label)
    return float((pred == experience.y_test).to(torch.float64).mean())


def evaluate_all(learner: Learner, experiences: list[Experience]) -> np.ndarray:
    return np.array([accuracy(learner, e) for e in experiences])


def run_protocol(
    learner: Learner,
    data: ScenarioData,
    on_experience: Callable[[int, np.ndarray], None] | None = None,
) -> ProtocolResult:
    """Train on each experience in order, filling R row by row; `on_experience(i, R[i])` after each row."""
    exps = data.experiences
    T = len(exps)
    R = np.full((T, T), np.nan)
    t0 = time.perf_counter()
    b = evaluate_all(learner, exps)
    eval_time = time.perf_counter() - t0
    train_time = 0.0
    for i in range(T):
        t0 = time.perf_counter()
        learner.train_experience(i)
        train_time += time.perf_counter() - t0
        t0 = time.perf_counter()
        R[i] = evaluate_all(learner, exps)
        eval_time += time.perf_counter() - t0
        if on_experience is not None:
            on_experience(i, R[i])
    return ProtocolResult(R=R, b=b, train_time_s=train_time, eval_time_s=eval_time)
