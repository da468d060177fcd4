"""Forgetting leaderboards from what is in MLflow: seeds aggregated, methods ranked, gaps tested.

Only FINISHED child runs count (the newest per scenario, method and seed). Per (scenario, method): n seeds,
mean and a 95 % confidence interval from the t distribution for every column of `schema.COLUMNS` (each final
metric, training time, peak memory); methods are ranked by any of them (ties broken by lower forgetting); each
method is compared with a reference method (`naive`) on the seeds both have (paired t-test), and a Nested Learning
method also with its own flat control (`cms` with `cms-flat`: same model, no level schedule); a method whose ACC
interval reaches down to the scenario's chance level is marked, because "no forgetting" at chance accuracy is
not a result.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from nlbench.results.schema import COLUMNS, RANKABLE
from nlbench.results.tables import PLUS_MINUS, estimate, estimate_columns, markdown_table, paired_difference

HIGHER_IS_BETTER = {c.label: c.higher_is_better for c in COLUMNS}


def own_controls(frame: pd.DataFrame, control_of: Callable[[str], str | None],
                 same_model: Callable[[str, str], bool] = lambda label, control: True) -> dict[str, str]:
    """{method label: label of its flat control}: `control_of(registered name)` names the control's registered
    method, and a label of it is the control when `same_model(label, control label)` (a variant with a linear
    memory is not paired with a control that has an MLP memory); the label spelled like the method comes first."""
    names = dict(zip(frame["method"], frame.get("method_name", frame["method"]), strict=True))
    controls = {}
    for label, name in names.items():
        control = control_of(name)
        candidates = sorted((lab for lab, n in names.items() if n == control and same_model(label, lab)),
                            key=lambda lab: lab != control)
        if candidates:
            controls[label] = candidates[0]
    return controls


def leaderboard(frame: pd.DataFrame, rank_by: str = "acc", reference: str = "naive",
                controls: Mapping[str, str] | None = None) -> dict[str, pd.DataFrame]:
    """{scenario: table}, one row per method ranked by `rank_by` (ties: lower forgetting).

    Columns: rank, method, family, n, one `Estimate` per column of `COLUMNS`, `vs_<reference>` (mean paired
    difference of `rank_by`), `p` (paired t-test), `control`, `vs_control` and `p_control` (the same against the
    method's flat control in `controls`, where it ran) and `at_chance` (the ACC interval reaches the chance level).
    """
    controls = controls or {}
    if rank_by not in HIGHER_IS_BETTER:
        raise ValueError(f"rank_by must be one of {', '.join(RANKABLE)}, got {rank_by!r}")
    tables = {}
    for scenario, group in frame.groupby("scenario", sort=True):
        by_seed = {m: g.drop_duplicates("seed").set_index("seed") for m, g in group.groupby("method")}
        ref = by_seed.get(reference)
        rows = []
        for method, g in by_seed.items():
            row = {"method": method, "family": g["family"].iloc[0], "n": len(g)}
            row.update({c.label: estimate(g[c.label]) for c in COLUMNS})
            if ref is not None and method != reference:
                row[f"vs_{reference}"], row["p"], _ = paired_difference(g[rank_by], ref[rank_by])
            else:
                row[f"vs_{reference}"], row["p"] = math.nan, math.nan
            control = controls.get(method)
            row["control"], row["vs_control"], row["p_control"] = "", math.nan, math.nan
            if control in by_seed and control != method:
                row["control"] = control
                row["vs_control"], row["p_control"], _ = paired_difference(g[rank_by], by_seed[control][rank_by])
            chance = g["chance"].dropna()
            acc = row["acc"]
            low = acc.mean - (acc.ci95 if math.isfinite(acc.ci95) else 0.0)
            row["at_chance"] = bool(len(chance) and math.isfinite(acc.mean) and low <= float(chance.max()))
            row["tuned"] = str(g["tuned"].iloc[0]) if "tuned" in g else ""  # how a tuned suite chose its values
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


def shown_columns(tables: dict[str, pd.DataFrame]) -> list[str]:
    """The columns some run logged (binary scores only on binary scenarios, say), in `COLUMNS` order."""
    return [c.label for c in COLUMNS if any(e.n for t in tables.values() for e in t[c.label])]


def display_table(table: pd.DataFrame, columns: Sequence[str], reference: str = "naive") -> pd.DataFrame:
    """Strings for a terminal or Markdown: estimates as mean ± CI95, the p-value, a mark for at-chance methods."""
    out = pd.DataFrame({"rank": table["rank"], "method": table["method"] + np.where(table["at_chance"], " †", ""),
                        "family": table["family"], "n": table["n"]})
    for label in columns:
        out[label] = table[label].map(str)
    vs = f"vs_{reference}"
    out[vs] = table[vs].map(_signed)
    out["p"] = table["p"].map(p_text)
    if "vs_control" in table and table["vs_control"].map(math.isfinite).any():
        out["vs_control"] = [f"{_signed(d)} ({c})" if c else "" for d, c in zip(table["vs_control"], table["control"],
                                                                              strict=True)]
        out["p_control"] = table["p_control"].map(p_text)
    if "tuned" in table and table["tuned"].astype(bool).any():  # a tuned suite: which values were tuned
        out["tuned"] = table["tuned"].map(lambda note: "tuned" if note else "default")
    return out


def _signed(d: float) -> str:
    return "" if not math.isfinite(d) else f"{d:+.3f}"


def p_text(p: float) -> str:
    """A p-value as the tables print it."""
    return "" if not math.isfinite(p) else "<0.001" if p < 0.001 else f"{p:.3f}"


def flat_table(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One CSV row per (scenario, method) with mean, std and ci95 columns per metric."""
    flat = pd.concat([estimate_columns(t).assign(scenario=s) for s, t in tables.items()], ignore_index=True)
    if "tuned" in flat and not flat["tuned"].astype(bool).any():  # a suite at its defaults: the CSV as before
        flat = flat.drop(columns="tuned")
    if "vs_control" in flat and not flat["vs_control"].map(math.isfinite).any():  # no method had its control here
        flat = flat.drop(columns=["control", "vs_control", "p_control"])
    return flat[["scenario", *(c for c in flat.columns if c != "scenario")]]


def terminal_text(tables: dict[str, pd.DataFrame], reference: str) -> str:
    columns = shown_columns(tables)
    return "\n\n".join(f"{s}\n{display_table(t, columns, reference).to_string(index=False)}"
                       for s, t in tables.items())


def tuned_lines(tables: dict[str, pd.DataFrame]) -> list[str]:
    """How the tuned methods were tuned (one line per distinct protocol), for a leaderboard's header."""
    notes: dict[str, set[str]] = {}
    for table in tables.values():
        for method, note in zip(table["method"], table.get("tuned", ()), strict=False):
            if note:
                notes.setdefault(note, set()).add(method)
    return [f"Tuned ({note}): {', '.join(sorted(methods))}." for note, methods in sorted(notes.items())]


def markdown(tables: dict[str, pd.DataFrame], header: Sequence[str], reference: str = "naive") -> str:
    columns = shown_columns(tables)
    lines = ["# Leaderboard", "", *header, *tuned_lines(tables), "",
             f"Cells: {PLUS_MINUS} (n seeds per method). `vs_{reference}`: mean paired difference in the ranking "
             f"metric against `{reference}` on the same seeds; `p`: paired t-test. † marks a method whose ACC "
             "interval reaches the scenario's chance level.",
             *(["`vs_control`: the same paired difference against the method's own flat control (same model, "
                "every level updated every step), `p_control` its p-value."]
               if any(t.get("vs_control", pd.Series(dtype=float)).map(math.isfinite).any() for t in tables.values())
               else []), ""]
    for scenario, table in tables.items():
        lines += [f"## {scenario}", "", *markdown_table(display_table(table, columns, reference)), ""]
    return "\n".join(lines)
