"""Seeded splits shared by the scenario modules: every random choice of a stream derives from its seed."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from nlbench.core.params import Interval, Param


def stratified_split(
    x: np.ndarray, y: np.ndarray, test_size: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stratified train/test split as tensors; the seed fixes which rows go where."""
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_size, stratify=y, random_state=seed)
    return (torch.from_numpy(np.ascontiguousarray(x_tr)), torch.from_numpy(np.ascontiguousarray(y_tr)),
            torch.from_numpy(np.ascontiguousarray(x_te)), torch.from_numpy(np.ascontiguousarray(y_te)))


def derived_seed(seed: int, *keys: int) -> int:
    """An independent 32-bit seed for a sub-stream (a split, a permutation) of the run seed."""
    return int(np.random.SeedSequence([seed, *keys]).generate_state(1)[0])


# The test share of a stratified split, an option of the streams built with `stratified_split`.
TEST_SIZE = Param(0.2, Interval(float, 0.0, 1.0, closed="neither"), "share of each experience held out for testing")
