"""The end-of-suite table: per scenario, each method's ACC, forgetting and BWT (and, for binary scenarios,
balanced accuracy and ROC AUC) as mean +- std over seeds."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd

SUMMARY_METRICS = (("acc", "ACC"), ("forgetting", "Forgetting"), ("bwt", "BWT"))
BINARY_METRICS = (("bacc", "BalAcc"), ("auc", "AUC"))  # shown for scenarios that log them


def results_frame(results: Iterable[object]) -> pd.DataFrame:
    """One row per finished run: scenario, method, seed and its final metrics."""
    rows = [{"scenario": r.config.scenario, "method": r.config.method, "seed": r.config.seed, **r.summary}
            for r in results if r.ok]
    return pd.DataFrame(rows)


def mean_std(values: Iterable[float]) -> str:
    """'0.912 ± 0.013'; std is the sample std (ddof=1) and is omitted for one seed; 'n/a' when undefined."""
    v = np.array([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    if v.size == 0:
        return "n/a"
    if v.size == 1:
        return f"{v[0]:.3f}"
    return f"{v.mean():.3f} ± {v.std(ddof=1):.3f}"


def summary_tables(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """{scenario: table} with methods in first-seen order, sorted by mean ACC (best first)."""
    tables = {}
    for scenario, group in frame.groupby("scenario", sort=False):
        rows = []
        for method, g in group.groupby("method", sort=False):
            row = {"method": method, "seeds": len(g)}
            row.update({label: mean_std(g[key]) for key, label in SUMMARY_METRICS})
            row.update({label: mean_std(g[key]) for key, label in BINARY_METRICS
                        if key in g and g[key].notna().any()})
            row["_acc"] = g["acc"].mean()
            rows.append(row)
        table = pd.DataFrame(rows).sort_values("_acc", ascending=False).drop(columns="_acc")
        tables[str(scenario)] = table.reset_index(drop=True)
    return tables


def format_summary(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "No finished runs."
    parts = []
    for scenario, table in summary_tables(frame).items():
        parts.append(f"{scenario}\n{table.to_string(index=False)}")
    return "\n\n".join(parts)
