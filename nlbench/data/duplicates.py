"""Exact duplicate rows inside and across a stream's train and test sets.

A row in both a training set and a test set inflates accuracy: the model is tested on what it memorised.
The widely copied 1025-row Kaggle `heart.csv` holds only 302 unique rows, for example. The check runs on
the rows before preprocessing, and NaN equals NaN.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def row_keys(rows: np.ndarray) -> list[bytes]:
    """One hashable key per row; missing values (NaN) compare equal to each other."""
    values = np.asarray(rows, dtype=np.float64).reshape(len(rows), -1)
    values = np.where(np.isnan(values), -np.inf, values)  # -inf never occurs in the data
    return [r.tobytes() for r in np.ascontiguousarray(values)]


@dataclass(frozen=True)
class DuplicateReport:
    train_rows: list[int]
    test_rows: list[int]
    repeated_in_train: list[int]  # rows that repeat an earlier row of the same training set
    repeated_in_test: list[int]
    train_test: np.ndarray  # [i, j]: test rows of experience j that also occur in the training set of i
    train_train: np.ndarray  # [i, j]: distinct rows the training sets of i and j share (i != j)

    @property
    def leaks(self) -> int:
        """Test rows that a training set of the stream contains."""
        return int(self.train_test.sum())


def repeated(keys: Sequence[bytes]) -> int:
    """How many rows repeat an earlier row."""
    return sum(c - 1 for c in Counter(keys).values())


def duplicate_report(raw: Sequence[tuple[np.ndarray, np.ndarray]]) -> DuplicateReport:
    train = [row_keys(tr) for tr, _ in raw]
    test = [row_keys(te) for _, te in raw]
    train_sets = [set(k) for k in train]
    T = len(raw)
    train_test = np.array([[sum(k in train_sets[i] for k in test[j]) for j in range(T)] for i in range(T)])
    train_train = np.array([[len(train_sets[i] & train_sets[j]) if i != j else 0 for j in range(T)]
                            for i in range(T)])
    return DuplicateReport([len(k) for k in train], [len(k) for k in test], [repeated(k) for k in train],
                           [repeated(k) for k in test], train_test, train_train)


def format_report(report: DuplicateReport) -> str:
    lines = ["experience  train  test  repeated in train  repeated in test  test rows also in a train set"]
    for j in range(len(report.train_rows)):
        lines.append(f"{j:>10}  {report.train_rows[j]:>5}  {report.test_rows[j]:>4}  "
                     f"{report.repeated_in_train[j]:>17}  {report.repeated_in_test[j]:>16}  "
                     f"{int(report.train_test[:, j].sum()):>29}")
    if len(report.train_rows) > 1:
        lines.append("test rows of experience j found in the training set of experience i (rows i, columns j):")
        lines += ["  " + " ".join(f"{v:>4}" for v in row) for row in report.train_test]
        lines.append(f"rows shared by two training sets: {int(report.train_train.sum()) // 2}")
    return "\n".join(lines)
