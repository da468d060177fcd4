"""The Nested Learning report: each method read against its own flat control and against naive, and forgetting
plotted against the slowest level's period and the base level's learning rate.

A Nested Learning result is a paired difference over seeds (same seeds, same streams): `method - control` says
what the level schedule adds to the architecture, `method - naive` what the whole method adds to fine-tuning an
MLP. Cells are mean ± the 95 % t half-width of the per-seed differences, with the paired t-test's p.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from nlbench.results.leaderboard import p_text
from nlbench.results.tables import estimate, markdown_table, paired_difference

METRICS = ("acc", "forgetting")


def _param(runs: pd.DataFrame, key: str) -> pd.Series:
    return runs.get(f"params.{key}", pd.Series(None, index=runs.index, dtype=object))


def schedule_frame(frame: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """`frame` (one row per run) with `slowest` (the slowest level's period in experiences, resolved; a flat
    control's levels are one step) and `base_lr_scale` (1 for a flat control: it trains the base at lr)."""
    params = runs.set_index("run_id")
    per = pd.to_numeric(_param(params, "schedule.steps_per_experience"), errors="coerce")
    periods = _param(params, "schedule.resolved_frequencies").map(
        lambda v: max(json.loads(v)) if isinstance(v, str) else math.nan)
    slowest = (periods / per).reindex(frame["run_id"]).to_numpy()
    scale = pd.to_numeric(_param(params, "base_lr_scale"), errors="coerce").reindex(frame["run_id"]).to_numpy()
    levels = pd.to_numeric(_param(params, "levels"), errors="coerce").reindex(frame["run_id"]).to_numpy()
    flat = ~np.isnan(levels)
    # a flat control's period is one step: 1 / (the scenario's steps per experience, from its scheduled runs)
    data_per = per.groupby(params["tags.scenario"]).median() if "tags.scenario" in params else pd.Series(dtype=float)
    out = frame.copy()
    out["slowest"] = np.where(flat, [1 / data_per.get(s, math.nan) for s in frame["scenario"]], slowest)
    out["base_lr_scale"] = np.where(flat, 1.0, scale)
    return out


def _diff(a: pd.Series, b: pd.Series) -> str:
    both = a.dropna().index.intersection(b.dropna().index)
    if len(both) == 0:
        return ""
    _, p, _ = paired_difference(a, b)
    e = estimate(list((a[both] - b[both]).astype(float)))
    p_part = f", p {p_text(p)}" if math.isfinite(p) else ""
    return f"{e.mean:+.3f} ± {e.ci95:.3f}{p_part}" if e.n > 1 else f"{e.mean:+.3f}"


def study_table(frame: pd.DataFrame, controls: Mapping[str, str], reference: str = "naive") -> pd.DataFrame:
    """One row per (scenario, Nested Learning method): ACC and forgetting, and the paired differences of both
    against the method's flat control and against `reference`."""
    rows = []
    for scenario, group in frame.groupby("scenario", sort=True):
        by = {m: g.drop_duplicates("seed").set_index("seed") for m, g in group.groupby("method")}
        for method, g in sorted(by.items()):
            if g["family"].iloc[0] != "nested":
                continue
            row = {"scenario": scenario, "method": method, "n": len(g),
                   "slowest (exp)": _fmt(g["slowest"].median()) if "slowest" in g else "",
                   "base lr x": _fmt(g["base_lr_scale"].median()) if "base_lr_scale" in g else ""}
            row.update({m: str(estimate(g[m])) for m in METRICS})
            control = controls.get(method)
            for m in METRICS:
                row[f"{m} vs control"] = _diff(g[m], by[control][m]) if control in by else ""
                row[f"{m} vs {reference}"] = _diff(g[m], by[reference][m]) if reference in by else ""
            row["control"] = control if control in by else ""
            rows.append(row)
    return pd.DataFrame(rows)


def _fmt(x: float) -> str:
    return "" if not math.isfinite(x) else f"{x:.3g}"


def study_markdown(table: pd.DataFrame, header: Sequence[str], reference: str = "naive") -> str:
    lines = ["# Nested Learning against its flat controls and naive", "", *header, "",
             "Cells: mean ± 95 % t half-width over seeds; differences are paired per seed (same stream), with the "
             f"paired t-test's p. `vs control`: against the method's flat control (same model, every level every "
             f"step, one lr); `vs {reference}`: against fine-tuning the MLP. `slowest (exp)`: the slowest level's "
             "period in experiences, resolved; `base lr x`: the base level's learning rate as a multiple of its "
             "rule's. Forgetting: lower is better, so a negative difference means less forgetting.", ""]
    for scenario, group in table.groupby("scenario", sort=True):
        lines += [f"## {scenario}", "", *markdown_table(group.drop(columns="scenario")), ""]
    return "\n".join(lines)


def plot_against(frame: pd.DataFrame, x: str, methods: Sequence[str], reference: str, path: Path,
                 xlabel: str, log: bool = True) -> Path:
    """Forgetting (mean ± 95 % CI over seeds) against `x` per scenario, for the methods given; the reference
    as a band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = sorted(frame["scenario"].unique())
    fig, axes = plt.subplots(1, len(scenarios), figsize=(4.2 * len(scenarios), 3.6), squeeze=False)
    for ax, scenario in zip(axes[0], scenarios, strict=True):
        group = frame[(frame["scenario"] == scenario)]
        points = []
        for method in methods:
            g = group[group["method"] == method]
            if g.empty or not g[x].notna().any():
                continue
            e = estimate(g["forgetting"])
            points.append((float(g[x].median()), e.mean, e.ci95 if math.isfinite(e.ci95) else 0.0, method))
        for xv, mean, ci, method in sorted(points):
            ax.errorbar([xv], [mean], yerr=[ci], fmt="o", capsize=3)
            ax.annotate(method, (xv, mean), textcoords="offset points", xytext=(4, 4), fontsize=7)
        ref = group[group["method"] == reference]
        if not ref.empty:
            e = estimate(ref["forgetting"])
            ax.axhline(e.mean, color="grey", linestyle="--", linewidth=1, label=reference)
            if math.isfinite(e.ci95):
                ax.axhspan(e.mean - e.ci95, e.mean + e.ci95, color="grey", alpha=0.15)
            ax.legend(fontsize=7)
        if log and points and min(p[0] for p in points) > 0:
            ax.set_xscale("log")
        ax.set_title(scenario, fontsize=9)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_ylabel("forgetting (lower is better)", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
