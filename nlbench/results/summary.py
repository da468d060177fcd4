"""The end-of-run table: per scenario, each method's ACC, forgetting and BWT (and, for binary scenarios, their
own final metrics: balanced accuracy, ROC AUC) over seeds, in the same ± as every other table."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from nlbench.results.tables import PLUS_MINUS, estimate
from nlbench.run.metrics import METRICS

# ACC, forgetting, BWT, then the metrics of the binary scores, for the scenarios that have them
SHOWN = [m for m in METRICS if m.name in ("acc", "forgetting", "bwt") or m.matrix != "acc"]


def results_frame(results: Iterable[object]) -> pd.DataFrame:
    """One row per finished run: scenario, method, seed and its final metrics."""
    rows = [{"scenario": r.config.scenario, "method": r.config.method, "seed": r.config.seed, **r.summary}
            for r in results if r.ok]
    return pd.DataFrame(rows)


def summary_tables(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """{scenario: table} with methods sorted by mean ACC (best first)."""
    tables = {}
    for scenario, group in frame.groupby("scenario", sort=False):
        rows = []
        for method, g in group.groupby("method", sort=False):
            row = {"method": method, "seeds": len(g)}
            row.update({m.label: str(estimate(g[m.name])) for m in SHOWN
                        if m.matrix == "acc" or (m.name in g and g[m.name].notna().any())})
            row["_acc"] = g["acc"].mean()
            rows.append(row)
        table = pd.DataFrame(rows).sort_values("_acc", ascending=False, kind="stable").drop(columns="_acc")
        tables[str(scenario)] = table.reset_index(drop=True)
    return tables


def format_summary(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "No finished runs."
    parts = [f"{scenario}\n{table.to_string(index=False)}" for scenario, table in summary_tables(frame).items()]
    return "\n\n".join(parts) + f"\n\n(Cells: {PLUS_MINUS}.)"
