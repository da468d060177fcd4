"""Continual-learning metrics over the accuracy matrix R, computed here and nowhere else.

R[i, j] is the test accuracy on experience j after training on experiences 0..i (0-indexed; the
reference formulas in the docs are 1-indexed). b[j] is the accuracy on experience j before any training.
Metrics that compare against earlier rows (BWT, forgetting, FWT) are undefined for T = 1 and return NaN
rather than a flattering 0.
"""

from __future__ import annotations

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


def summarize(R: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """All summary metrics of one run, keyed as logged under `final/`."""
    return {
        "acc": average_accuracy(R),
        "forgetting": forgetting(R),
        "bwt": backward_transfer(R),
        "fwt": forward_transfer(R, b),
        "la": learning_accuracy(R),
        "avg_inc_acc": average_incremental_accuracy(R),
    }


def binary_scores(y_true: np.ndarray, p_positive: np.ndarray) -> tuple[float, float]:
    """(balanced accuracy at threshold 0.5, ROC AUC) of one binary test set; AUC is NaN with one class only."""
    from sklearn.metrics import balanced_accuracy_score, roc_auc_score

    y_true = np.asarray(y_true)
    bacc = float(balanced_accuracy_score(y_true, (np.asarray(p_positive) >= 0.5).astype(int)))
    if len(np.unique(y_true)) < 2:
        return bacc, float("nan")
    return bacc, float(roc_auc_score(y_true, p_positive))
