"""Local data loading and splitting shared by the scenario modules."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from sklearn.model_selection import train_test_split


@lru_cache(maxsize=1)
def load_digits_scaled() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled digits as (1797, 8, 8) images (no download), pixels scaled from 0..16 to [0, 1].

    Kept 2-D so sequence models can read one row per token; MLPs flatten.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


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
