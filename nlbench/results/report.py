"""`nlbench leaderboard`: read a suite's runs from MLflow, write the leaderboard tables and plots, and log them
to the suite's latest parent run. The statistics are in `nlbench.results.leaderboard`."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nlbench.core.errors import UsageError, closest
from nlbench.results import schema
from nlbench.results.leaderboard import flat_table, leaderboard, markdown, own_controls, terminal_text
from nlbench.results.store import read_matrix, run_filter, runs_frame, search


def mean_matrices(runs: pd.DataFrame, frame: pd.DataFrame, tracking_uri: str) -> dict[tuple[str, str], np.ndarray]:
    """{(scenario, method): R averaged over seeds}, read back from each run's `acc/exp{j}` history."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    exp_cols = [c for c in runs.columns if c.startswith(schema.metric_column(schema.matrix_key("acc", "")))]
    n_experiences = runs.set_index("run_id")[exp_cols].notna().sum(axis=1)
    out: dict[tuple[str, str], list[np.ndarray]] = {}
    for row in frame.itertuples(index=False):
        R = read_matrix(client, row.run_id, int(n_experiences[row.run_id]))
        out.setdefault((row.scenario, row.method), []).append(R)
    return {k: np.nanmean(np.stack(v), axis=0) for k, v in out.items() if len({r.shape for r in v}) == 1}


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def write_plots(tables: dict[str, pd.DataFrame], matrices: dict[tuple[str, str], np.ndarray],
                frame: pd.DataFrame, out: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    from nlbench.results.plots import accuracy_matrix_heatmap, bar_with_ci, stream_lines, tradeoff_scatter

    out.mkdir(parents=True, exist_ok=True)
    paths = []

    def save(fig: object, name: str) -> None:
        path = out / name
        fig.savefig(path)
        plt.close(fig)
        paths.append(path)

    for scenario, t in tables.items():
        chance = frame.loc[frame["scenario"] == scenario, "chance"].max()
        labels = list(t["method"])
        acc, fgt = list(t["acc"]), list(t["forgetting"])
        save(bar_with_ci(labels, [e.mean for e in acc], [e.ci95 for e in acc], chance, title=f"{scenario}: ACC"),
             f"{_slug(scenario)}_acc.png")
        save(tradeoff_scatter(labels, [e.mean for e in acc], [e.ci95 for e in acc], [e.mean for e in fgt],
                              [e.ci95 for e in fgt], title=f"{scenario}: ACC vs forgetting"),
             f"{_slug(scenario)}_tradeoff.png")
        mats = {m: matrices[(scenario, m)] for m in labels if (scenario, m) in matrices}
        if mats:
            save(stream_lines(mats, title=f"{scenario}: accuracy on each experience over the stream"),
                 f"{_slug(scenario)}_stream.png")
        for method, R in mats.items():
            save(accuracy_matrix_heatmap(R, title=f"{scenario} / {method} (mean over seeds)"),
                 f"{_slug(scenario)}_{_slug(method)}_matrix.png")
    return paths


def header_lines(suite: str, command: str, runs: pd.DataFrame) -> list[str]:
    """Versions and machine as the runs recorded them (environment tags), not this process's."""

    def recorded(tag: str) -> str:
        values = runs.get(schema.tag_column(tag), pd.Series(dtype=object)).dropna().unique()
        return ", ".join(sorted(map(str, values))) or "not recorded"

    from nlbench.run.suite import builtin_suites

    generated = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    made_by = f"`nlbench run {suite}`" if suite in builtin_suites() else f"`nlbench run` of suite `{suite}`'s file"
    return [f"Suite `{suite}`, {len(runs)} finished runs; generated {generated}.",
            f"nlbench {recorded('nlbench_version')}, torch {recorded('torch_version')}, "
            f"avalanche {recorded('avalanche_version')}; machine: {recorded('machine')}.",
            f"Regenerate from the store of {made_by}: `{command}`"]


def control_of(name: str) -> str | None:
    """The registered name of a method's flat control (None for a method without one, or not registered here)."""
    from nlbench.core.registry import get_method

    try:
        return getattr(get_method(name), "CONTROL", None)
    except UsageError:
        return None


def model_matcher(runs: pd.DataFrame) -> Any:
    """`same_model(label, control)`: the two labels' runs logged the same values for every hyperparameter both
    have, the level schedule aside, and as many CMS levels."""
    from nlbench.methods.nested import SCHEDULE_KEYS

    method_tag = schema.tag_column("method")
    params: dict[str, dict[str, Any]] = {}
    for label, group in runs.groupby(method_tag):
        first = group.iloc[0]
        params[label] = {c[len("params."):]: first[c] for c in group.columns
                         if c.startswith("params.") and isinstance(first[c], str)}

    def hyper(label: str) -> dict[str, Any]:
        return {k: v for k, v in params.get(label, {}).items() if "." not in k and k not in (*SCHEDULE_KEYS, "seed")}

    def same_model(label: str, control: str) -> bool:
        a, b = hyper(label), hyper(control)
        if any(a[k] != b[k] for k in set(a) & set(b)):
            return False
        levels, periods = params.get(control, {}).get("levels"), params.get(label, {}).get("frequencies")
        return levels is None or periods is None or len(json.loads(periods)) == int(levels)

    return same_model


def build_report(tracking_uri: str, suite: str, out: Path, command: str, experiment: str | None = None,
                 rank_by: str = "acc", reference: str = "naive", **filters: str | None) -> tuple[str, list[Path]]:
    """Write LEADERBOARD.md, leaderboard.csv and plots/ under `out`; return the terminal text and the paths."""
    experiment = experiment or f"nlbench-{suite}"
    runs, frame = _frame_of(tracking_uri, experiment, reference, **filters)
    if frame[rank_by].isna().all():
        logged = [c for c in schema.RANKABLE if frame[c].notna().any()]
        raise UsageError(f"--rank-by {rank_by}: no run here logged it (binary scenarios log bacc and auc); "
                         f"rank by one of: {', '.join(logged)}.")
    controls = own_controls(frame, control_of, model_matcher(runs))
    tables = leaderboard(frame, rank_by=rank_by, reference=reference, controls=controls)
    matrices = mean_matrices(runs, frame, tracking_uri)
    out.mkdir(parents=True, exist_ok=True)
    md = out / "LEADERBOARD.md"
    finished = runs[runs["run_id"].isin(frame["run_id"])]
    md.write_text(markdown(tables, header_lines(suite, command, finished), reference) + "\n", encoding="utf-8")
    csv = out / "leaderboard.csv"
    flat_table(tables).to_csv(csv, index=False, float_format="%.6g")
    paths = [md, csv, *write_plots(tables, matrices, frame, out / "plots")]
    _log_to_parent(tracking_uri, experiment, paths, out)
    return terminal_text(tables, reference), paths


def _frame_of(tracking_uri: str, experiment: str, reference: str, **filters: str | None
              ) -> tuple[pd.DataFrame, pd.DataFrame]:
    runs = search(tracking_uri, experiment, **filters)
    frame = runs_frame(runs)
    if frame.empty:
        raise UsageError(f"no finished runs in experiment '{experiment}' at {tracking_uri} match the filters.")
    methods = sorted(set(frame["method"]))
    if reference not in methods:
        raise UsageError(f"--reference '{reference}' has no finished run here{closest(reference, methods)}; "
                         f"methods: {', '.join(methods)}.")
    return runs, frame


def build_nested_report(tracking_uri: str, suite: str, out: Path, command: str, experiment: str | None = None,
                        reference: str = "naive", pairs: dict[str, str] | None = None,
                        **filters: str | None) -> tuple[str, list[Path]]:
    """Write NESTED.md, nested.csv and plots/forgetting_vs_{slowest_period,base_lr}.png under `out`; `pairs`
    replaces the automatic flat control of some methods."""
    from nlbench.results.nested_study import plot_against, schedule_frame, study_markdown, study_table

    experiment = experiment or f"nlbench-{suite}"
    runs, frame = _frame_of(tracking_uri, experiment, reference, **filters)
    frame = schedule_frame(frame, runs)
    controls = own_controls(frame, control_of, model_matcher(runs))
    labels = set(frame["method"])
    for method, control in (pairs or {}).items():
        for label in (method, control):
            if label not in labels:
                raise UsageError(f"--control: '{label}' has no finished run here{closest(label, labels)}.")
        controls[method] = control
    table = study_table(frame, controls, reference)
    if table.empty:
        raise UsageError(f"no Nested Learning method has finished runs in experiment '{experiment}'.")
    out.mkdir(parents=True, exist_ok=True)
    finished = runs[runs["run_id"].isin(frame["run_id"])]
    md = out / "NESTED.md"
    md.write_text(study_markdown(table, header_lines(suite, command, finished), reference) + "\n", encoding="utf-8")
    csv = out / "nested.csv"
    table.to_csv(csv, index=False)
    scheduled = [m for m in sorted(set(frame["method"])) if m in controls or m in set(controls.values())]
    paths = [md, csv,
             plot_against(frame, "slowest", scheduled, reference, out / "plots" / "forgetting_vs_slowest_period.png",
                          "slowest level's period (experiences, log)"),
             plot_against(frame, "base_lr_scale", scheduled, reference, out / "plots" / "forgetting_vs_base_lr.png",
                          "base level lr / its rule's lr", log=False)]
    return table.to_string(index=False), paths


def _log_to_parent(tracking_uri: str, experiment: str, paths: Sequence[Path], root: Path) -> None:
    """Attach the files to the newest FINISHED parent (suite) run of the experiment (else the newest parent, e.g.
    of a suite with failed runs), under `leaderboard/`."""
    import mlflow
    from mlflow.tracking import MlflowClient

    suites = run_filter(kind=schema.SUITE_KIND)
    for where in (f"{suites} and attributes.status = 'FINISHED'", suites):
        parents = mlflow.search_runs(experiment_names=[experiment], filter_string=where,
                                     order_by=["attributes.start_time DESC"], max_results=1)
        if not parents.empty:
            break
    else:
        return
    client = MlflowClient(tracking_uri)
    for path in paths:
        sub = path.parent.relative_to(root).as_posix()
        client.log_artifact(parents["run_id"].iloc[0], str(path), "leaderboard" + ("" if sub == "." else f"/{sub}"))
