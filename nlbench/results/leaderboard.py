"""Forgetting leaderboards from what is in MLflow: seeds aggregated, methods ranked, gaps tested.

Only FINISHED child runs count. Per (scenario, method): n seeds, mean, sample std and a 95 % confidence
interval from the t distribution; methods are ranked by a metric (ties broken by lower forgetting); each
method is compared with a reference method (`naive`) on the seeds both have (paired t-test); a method whose
ACC interval reaches down to the scenario's chance level is marked, because "no forgetting" at chance
accuracy is not a result.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

# (metric key under `final/` or elsewhere, column label, higher is better)
LEADERBOARD_METRICS: tuple[tuple[str, str, bool], ...] = (
    ("final/acc", "acc", True),
    ("final/forgetting", "forgetting", False),
    ("final/bwt", "bwt", True),
    ("final/fwt", "fwt", True),
    ("final/la", "la", True),
    ("final/bacc", "bacc", True),  # binary scenarios only: balanced accuracy
    ("final/auc", "auc", True),  # binary scenarios only: ROC AUC
    ("time/train_s", "train_s", False),
    ("mem/peak_mb", "peak_mb", False),
)
HIGHER_IS_BETTER = {label: up for _, label, up in LEADERBOARD_METRICS}
OPTIONAL = ("bacc", "auc")  # columns a table shows only when some run logged them


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


def runs_frame(runs: pd.DataFrame) -> pd.DataFrame:
    """MLflow's `search_runs` frame -> one row per FINISHED child run with scenario, method, family, seed, metrics."""
    if runs.empty:
        return pd.DataFrame(columns=["run_id", "scenario", "method", "family", "seed", "chance"])
    runs = runs[(runs.get("tags.kind") == "run") & (runs["status"] == "FINISHED")]
    frame = pd.DataFrame({
        "run_id": runs["run_id"],
        "scenario": runs["tags.scenario"],
        "method": runs["tags.method"],
        "family": runs.get("tags.family"),
        "seed": pd.to_numeric(runs["tags.seed"]),
        "chance": runs.get("metrics.scenario/chance_acc", pd.Series(math.nan, index=runs.index)),
    })
    for key, label, _ in LEADERBOARD_METRICS:
        frame[label] = runs.get(f"metrics.{key}", pd.Series(math.nan, index=runs.index))
    return frame.reset_index(drop=True)


def leaderboard(frame: pd.DataFrame, rank_by: str = "acc", reference: str = "naive") -> dict[str, pd.DataFrame]:
    """{scenario: table}, one row per method ranked by `rank_by` (ties: lower forgetting).

    Columns: rank, method, family, n, one `Estimate` per metric, `vs_<reference>` (mean paired difference of
    `rank_by`), `p` (paired t-test), and `at_chance` (the ACC interval reaches the chance level).
    """
    if rank_by not in HIGHER_IS_BETTER:
        raise ValueError(f"rank_by must be one of {', '.join(HIGHER_IS_BETTER)}, got {rank_by!r}")
    tables = {}
    for scenario, group in frame.groupby("scenario", sort=True):
        by_seed = {m: g.drop_duplicates("seed", keep="last").set_index("seed") for m, g in group.groupby("method")}
        ref = by_seed.get(reference)
        rows = []
        for method, g in by_seed.items():
            row = {"method": method, "family": g["family"].iloc[0], "n": len(g)}
            row.update({label: estimate(g[label]) for _, label, _ in LEADERBOARD_METRICS})
            if ref is not None and method != reference:
                row[f"vs_{reference}"], row["p"], _ = paired_difference(g[rank_by], ref[rank_by])
            else:
                row[f"vs_{reference}"], row["p"] = math.nan, math.nan
            chance = g["chance"].dropna()
            acc = row["acc"]
            low = acc.mean - (acc.ci95 if math.isfinite(acc.ci95) else 0.0)
            row["at_chance"] = bool(len(chance) and math.isfinite(acc.mean) and low <= float(chance.max()))
            rows.append(row)
        sign = 1 if HIGHER_IS_BETTER[rank_by] else -1
        rows.sort(key=lambda r: _rank_key(r, rank_by, sign))
        table = pd.DataFrame(rows)
        table.insert(0, "rank", range(1, len(table) + 1))
        tables[str(scenario)] = table
    return tables


def _rank_key(row: dict, rank_by: str, sign: int) -> tuple[bool, float, float]:
    """Best first; methods without the metric last; ties by lower forgetting."""
    m, f = row[rank_by].mean, row["forgetting"].mean
    return (not math.isfinite(m), -sign * m if math.isfinite(m) else 0.0, f if math.isfinite(f) else math.inf)


def display_table(table: pd.DataFrame, reference: str = "naive") -> pd.DataFrame:
    """Strings for a terminal or Markdown: estimates as mean ± CI95, the p-value, a mark for at-chance methods."""
    out = pd.DataFrame({"rank": table["rank"], "method": table["method"] + np.where(table["at_chance"], " †", ""),
                        "family": table["family"], "n": table["n"]})
    for _, label, _ in LEADERBOARD_METRICS:
        if label not in OPTIONAL or any(e.n for e in table[label]):
            out[label] = table[label].map(str)
    vs = f"vs_{reference}"
    out[vs] = table[vs].map(lambda d: "" if not math.isfinite(d) else f"{d:+.3f}")
    out["p"] = table["p"].map(lambda p: "" if not math.isfinite(p) else "<0.001" if p < 0.001 else f"{p:.3f}")
    return out


def flat_table(tables: dict[str, pd.DataFrame], reference: str = "naive") -> pd.DataFrame:
    """One CSV row per (scenario, method) with mean, std and ci95 columns per metric."""
    rows = []
    for scenario, table in tables.items():
        for _, r in table.iterrows():
            row = {"scenario": scenario, "rank": r["rank"], "method": r["method"], "family": r["family"], "n": r["n"]}
            for _, label, _ in LEADERBOARD_METRICS:
                e = r[label]
                row.update({f"{label}_mean": e.mean, f"{label}_std": e.std, f"{label}_ci95": e.ci95})
            row.update({f"vs_{reference}": r[f"vs_{reference}"], "p": r["p"], "at_chance": r["at_chance"]})
            rows.append(row)
    return pd.DataFrame(rows)


def markdown_table(frame: pd.DataFrame) -> list[str]:
    """A DataFrame as Markdown table lines (no extra dependency)."""
    return ["| " + " | ".join(map(str, frame.columns)) + " |", "| " + " | ".join("---" for _ in frame.columns) + " |",
            *("| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False))]


def markdown(tables: dict[str, pd.DataFrame], header: Sequence[str], reference: str = "naive") -> str:
    lines = ["# Leaderboard", "", *header, "",
             f"Cells: mean ± 95 % t-interval over seeds (n seeds per method). `vs_{reference}`: mean paired "
             f"difference in the ranking metric against `{reference}` on the same seeds; `p`: paired t-test. "
             "† marks a method whose ACC interval reaches the scenario's chance level.", ""]
    for scenario, table in tables.items():
        lines += [f"## {scenario}", "", *markdown_table(display_table(table, reference)), ""]
    return "\n".join(lines)

