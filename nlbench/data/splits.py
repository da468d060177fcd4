"""Seeded splits shared by the scenario modules: every random choice of a stream derives from its seed.

Every train/test split of a stream goes through `split_rows` (data re-split per seed: digits, heart) or
`validation_rows` (data with a fixed test set: MNIST), so one switch, `holdout`, turns any stream into tuning data:
under it the test sets are replaced by validation rows carved from training data, and a re-split dataset only
offers rows that no reported seed ever tests on. `nlbench tune` builds its streams under it; a scenario that
splits through these two functions is tunable without further code.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from nlbench.core.params import Interval, Param

VALIDATION_KEY = 7_000_001  # sub-stream of the validation split, apart from every experience index


@dataclass(frozen=True)
class Holdout:
    """Build tuning data: no row of the test sets of `reported_seeds`, validation rows in place of test sets."""

    reported_seeds: tuple[int, ...]
    val_share: float = 0.2


_HOLDOUT: ContextVar[tuple[Holdout, list[str]] | None] = ContextVar("nlbench_holdout", default=None)


@contextlib.contextmanager
def holdout(spec: Holdout) -> Iterator[list[str]]:
    """Streams built inside this block are tuning streams. Yields the list of splits that applied the holdout:
    empty after the block means the scenario split its data some other way, and its test sets were not held out."""
    uses: list[str] = []
    token = _HOLDOUT.set((spec, uses))
    try:
        yield uses
    finally:
        _HOLDOUT.reset(token)


def _active(kind: str) -> Holdout | None:
    current = _HOLDOUT.get()
    if current is None:
        return None
    current[1].append(kind)
    return current[0]


def derived_seed(seed: int, *keys: int) -> int:
    """An independent 32-bit seed for a sub-stream (a split, a permutation) of the run seed."""
    return int(np.random.SeedSequence([seed, *keys]).generate_state(1)[0])


def _split(y: np.ndarray, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (train, test) row indices; unstratified when a class has too few rows to be split."""
    rows = np.arange(len(y))
    try:
        train, test = train_test_split(rows, test_size=test_size, stratify=y, random_state=seed)
    except ValueError:
        train, test = train_test_split(rows, test_size=test_size, random_state=seed)
    return np.asarray(train), np.asarray(test)


def split_rows(y: np.ndarray, test_size: float, seed: int, *keys: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) row indices of sub-stream `keys` of `seed`, stratified by `y`.

    Under a holdout: (fit, validation) indices among the rows that the test split of no reported seed holds,
    so tuning never reads a reported test row, however the data is re-split per seed."""
    spec = _active("split_rows")
    if spec is None:
        return _split(y, test_size, derived_seed(seed, *keys))
    tested = np.zeros(len(y), dtype=bool)
    for reported in spec.reported_seeds:
        tested[_split(y, test_size, derived_seed(reported, *keys))[1]] = True
    free = np.flatnonzero(~tested)
    if len(free) < 2:
        raise ValueError(f"no rows are left for tuning: the test splits of seeds {list(spec.reported_seeds)} "
                         "cover the data; report fewer seeds or lower the test share")
    fit, val = _split(y[free], spec.val_share, derived_seed(seed, *keys, VALIDATION_KEY))
    return free[fit], free[val]


def validation_rows(y: np.ndarray, seed: int, *keys: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Under a holdout, (fit, validation) indices of training rows `y` (for data whose test set is fixed, such as
    MNIST's); None otherwise, when the stream keeps its own test set."""
    spec = _active("validation_rows")
    if spec is None:
        return None
    return _split(y, spec.val_share, derived_seed(seed, *keys, VALIDATION_KEY))


def stratified_split(
    x: np.ndarray, y: np.ndarray, test_size: float, seed: int, *keys: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stratified train/test split as tensors (see `split_rows`); the seed and keys fix which rows go where."""
    train, test = split_rows(y, test_size, seed, *keys)
    return (torch.from_numpy(np.ascontiguousarray(x[train])), torch.from_numpy(np.ascontiguousarray(y[train])),
            torch.from_numpy(np.ascontiguousarray(x[test])), torch.from_numpy(np.ascontiguousarray(y[test])))


# The test share of a stratified split, an option of the streams built with `stratified_split`.
TEST_SIZE = Param(0.2, Interval(float, 0.0, 1.0, closed="neither"), "share of each experience held out for testing")
