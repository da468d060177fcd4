"""What every results table shares: seeds summarised as one `Estimate`, paired differences, Markdown.

"±" means one thing in every table nlbench prints or writes (the end-of-run summary, the leaderboard, the model
table): the half-width of the 95 % t-interval of the mean over seeds. The CSV files carry the standard deviation
too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

PLUS_MINUS = "mean ± half-width of its 95 % t-interval over seeds"


@dataclass(frozen=True)
class Estimate:
    n: int
    mean: float
    std: float  # sample std (ddof = 1); NaN for one seed
    ci95: float  # half-width of the t interval; NaN for one seed

    def __str__(self) -> str:
        if self.n == 0 or not math.isfinite(self.mean):
            return "n/a"
        return f"{self.mean:.3f}" if self.n == 1 else f"{self.mean:.3f} ± {self.ci95:.3f}"


def estimate(values: Sequence[float]) -> Estimate:
    """Mean, sample std and the 95 % t-interval half-width of the finite values."""
    v = np.array([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    if v.size == 0:
        return Estimate(0, math.nan, math.nan, math.nan)
    if v.size == 1:
        return Estimate(1, float(v[0]), math.nan, math.nan)
    std = float(v.std(ddof=1))
    return Estimate(int(v.size), float(v.mean()), std, float(stats.t.ppf(0.975, v.size - 1) * std / math.sqrt(v.size)))


def paired_difference(a: pd.Series, b: pd.Series) -> tuple[float, float, int]:
    """Mean of a - b over the seeds both have, its two-sided paired t-test p-value, and the number of pairs.

    `a` and `b` are indexed by seed. The p-value is NaN below two pairs or when every difference is equal.
    """
    both = a.dropna().index.intersection(b.dropna().index)
    if len(both) == 0:
        return math.nan, math.nan, 0
    diff = (a[both] - b[both]).astype(float)
    if len(both) < 2 or np.allclose(diff, diff.iloc[0]):
        return float(diff.mean()), math.nan, len(both)
    return float(diff.mean()), float(stats.ttest_rel(a[both], b[both]).pvalue), len(both)


def markdown_table(frame: pd.DataFrame) -> list[str]:
    """A DataFrame as Markdown table lines (no extra dependency)."""
    return ["| " + " | ".join(map(str, frame.columns)) + " |", "| " + " | ".join("---" for _ in frame.columns) + " |",
            *("| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False))]


def estimate_columns(table: pd.DataFrame) -> pd.DataFrame:
    """For CSV: every `Estimate` column as its mean, std and ci95 columns, in place."""
    out = {}
    for column in table.columns:
        values = list(table[column])
        if values and all(isinstance(v, Estimate) for v in values):
            out.update({f"{column}_{part}": [getattr(e, attr) for e in values]
                        for part, attr in (("mean", "mean"), ("std", "std"), ("ci95", "ci95"))})
        else:
            out[column] = values
    return pd.DataFrame(out)
