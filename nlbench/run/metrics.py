"""Continual-learning metrics over the accuracy matrix R, computed here and nowhere else.

R[i, j] is the test accuracy on experience j after training on experiences 0..i (0-indexed; the
reference formulas in the docs are 1-indexed). b[j] is the accuracy on experience j before any training.
Metrics that compare against earlier rows (BWT, forgetting, FWT) are undefined for T = 1 and return NaN
rather than a flattering 0.

`METRICS` declares each final metric once (name, direction, definition, function). A run logs all of them as
`final/<name>`, the leaderboard can rank by any of them, and docs/reference.md lists them: adding a metric is
adding its function and its line here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

NAN = float("nan")


def _square(R: np.ndarray) -> np.ndarray:
    R = np.asarray(R, dtype=float)
    if R.ndim != 2 or R.shape[0] != R.shape[1] or R.shape[0] == 0:
        raise ValueError(f"accuracy matrix must be a non-empty T x T array, got shape {R.shape}")
    return R


def average_accuracy(R: np.ndarray) -> float:
    """ACC = (1/T) sum_j R[T-1, j]: mean accuracy over all experiences at the end of the stream."""
    R = _square(R)
    return float(R[-1].mean())


def learning_accuracy(R: np.ndarray) -> float:
    """LA = (1/T) sum_j R[j, j]: accuracy on each experience right after learning it (plasticity)."""
    R = _square(R)
    return float(np.diag(R).mean())


def backward_transfer(R: np.ndarray) -> float:
    """BWT = (1/(T-1)) sum_{j<T-1} (R[T-1, j] - R[j, j]) (Lopez-Paz & Ranzato 2017, divisor T-1)."""
    R = _square(R)
    T = R.shape[0]
    if T == 1:
        return NAN
    return float((R[-1, :-1] - np.diag(R)[:-1]).mean())


def forgetting_per_experience(R: np.ndarray) -> np.ndarray:
    """f_j = max_{l < T-1} R[l, j] - R[T-1, j] for j < T-1 (Chaudhry et al. 2018, RWalk Eq. 3)."""
    R = _square(R)
    if R.shape[0] == 1:
        return np.empty(0)
    return R[:-1, :-1].max(axis=0) - R[-1, :-1]


def forgetting(R: np.ndarray) -> float:
    """F_T: mean of `forgetting_per_experience` (max over earlier rows, not only the diagonal)."""
    f = forgetting_per_experience(R)
    return float(f.mean()) if f.size else NAN


def forward_transfer(R: np.ndarray, b: np.ndarray) -> float:
    """FWT = (1/(T-1)) sum_{j>=1} (R[j-1, j] - b[j]): zero-shot gain on an experience before training on it."""
    R = _square(R)
    b = np.asarray(b, dtype=float)
    if b.shape != (R.shape[0],):
        raise ValueError(f"b must have one entry per experience ({R.shape[0]}), got shape {b.shape}")
    if R.shape[0] == 1:
        return NAN
    return float((np.diag(R, k=1) - b[1:]).mean())


def average_incremental_accuracy(R: np.ndarray) -> float:
    """(1/T) sum_i A_i with A_i = mean_{j<=i} R[i, j] (iCaRL): accuracy on the seen experiences, averaged over time."""
    R = _square(R)
    return float(np.mean([R[i, : i + 1].mean() for i in range(R.shape[0])]))


def final_row_mean(M: np.ndarray, b: np.ndarray | None = None) -> float:
    """Mean of the last row, ignoring NaN (a test set with one class has no ROC AUC)."""
    return float(np.nanmean(_square(M)[-1]))


BINARY_MATRICES = ("bacc", "auc")  # what the protocol also fills for a binary scenario, next to R ("acc")


@dataclass(frozen=True)
class Metric:
    """A final metric: `fn(matrix, b)` of the run's matrix `matrix` (acc, or a binary scenario's bacc / auc)."""

    name: str
    label: str  # column title in the end-of-run table
    higher_is_better: bool
    definition: str
    fn: Callable[[np.ndarray, np.ndarray], float]
    matrix: str = "acc"


METRICS: tuple[Metric, ...] = (
    Metric("acc", "ACC", True, "mean of the last row of R", lambda R, b: average_accuracy(R)),
    Metric("forgetting", "Forgetting", False, "mean over j < T of the max over earlier rows of R[l, j], minus "
                                              "R[T, j] (Chaudhry et al. 2018)", lambda R, b: forgetting(R)),
    Metric("bwt", "BWT", True, "mean over j < T of R[T, j] - R[j, j]", lambda R, b: backward_transfer(R)),
    Metric("fwt", "FWT", True, "mean over j > 1 of R[j-1, j] - b[j]", forward_transfer),
    Metric("la", "LA", True, "learning accuracy: mean of the diagonal of R", lambda R, b: learning_accuracy(R)),
    Metric("avg_inc_acc", "AvgIncAcc", True, "mean over i of the mean of R[i, :i] (iCaRL)",
           lambda R, b: average_incremental_accuracy(R)),
    Metric("bacc", "BalAcc", True, "binary scenarios: mean of the last row of the balanced-accuracy matrix",
           final_row_mean, "bacc"),
    Metric("auc", "AUC", True, "binary scenarios: mean of the last row of the ROC-AUC matrix", final_row_mean,
           "auc"),
)


def summarize(matrices: Mapping[str, np.ndarray], b: np.ndarray) -> dict[str, float]:
    """Every final metric the run's matrices (`acc` = R, and any binary ones) define, keyed as under `final/`."""
    return {m.name: m.fn(matrices[m.matrix], b) for m in METRICS if m.matrix in matrices}


def binary_scores(y_true: np.ndarray, p_positive: np.ndarray) -> tuple[float, float]:
    """(balanced accuracy at threshold 0.5, ROC AUC) of one binary test set; AUC is NaN with one class only."""
    from sklearn.metrics import balanced_accuracy_score, roc_auc_score

    y_true = np.asarray(y_true)
    bacc = float(balanced_accuracy_score(y_true, (np.asarray(p_positive) >= 0.5).astype(int)))
    if len(np.unique(y_true)) < 2:
        return bacc, float("nan")
    return bacc, float(roc_auc_score(y_true, p_positive))
