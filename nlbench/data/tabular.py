"""Tabular features without leakage: statistics are fitted on training rows only, then applied.

A `TabularSpec` fixes the feature set: numeric columns (median-imputed, then standardised), categorical
columns (one-hot over fixed codes; a missing value is all zeros), and missing-value indicators. The set is
the same whatever the data, so every experience of a stream has the same inputs. `fit_tabular` and
`transform_tabular` are pure functions: the stream decides which rows the statistics see.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class TabularSpec:
    numeric: tuple[str, ...]
    categorical: tuple[tuple[str, tuple[float, ...]], ...] = ()
    indicators: tuple[str, ...] = ()

    @property
    def feature_names(self) -> list[str]:
        names = list(self.numeric)
        names += [f"{col}={code:g}" for col, codes in self.categorical for code in codes]
        return names + [f"{col}_missing" for col in self.indicators]


@dataclass(frozen=True)
class TabularStats:
    """What preprocessing learned from its training rows: medians, means and standard deviations."""

    median: dict[str, float]
    mean: dict[str, float]
    std: dict[str, float]
    n_rows: int


def fit_tabular(frame: pd.DataFrame, spec: TabularSpec) -> TabularStats:
    median, mean, std = {}, {}, {}
    for col in spec.numeric:
        values = frame[col]
        m = float(values.median()) if values.notna().any() else 0.0  # a column never seen: impute 0
        filled = values.fillna(m)
        median[col], mean[col] = m, float(filled.mean()) if len(filled) else 0.0
        s = float(filled.std(ddof=0)) if len(filled) else 0.0
        std[col] = s if s > 1e-12 else 1.0
    return TabularStats(median, mean, std, len(frame))


def transform_tabular(frame: pd.DataFrame, spec: TabularSpec, stats: TabularStats) -> np.ndarray:
    parts = [((frame[c].fillna(stats.median[c]) - stats.mean[c]) / stats.std[c]).to_numpy()[:, None]
             for c in spec.numeric]
    for col, codes in spec.categorical:
        parts.append(np.stack([(frame[col] == code).to_numpy() for code in codes], axis=1))
    parts += [frame[c].isna().to_numpy()[:, None] for c in spec.indicators]
    return np.concatenate(parts, axis=1).astype(np.float32)


def stream_stats(train: Sequence[pd.DataFrame], spec: TabularSpec) -> list[TabularStats]:
    """Stats after each experience: those of experience i see the training rows of experiences 0..i only."""
    return [fit_tabular(pd.concat(train[: i + 1], ignore_index=True), spec) for i in range(len(train))]
