"""Reading runs back from MLflow: filters, one row per finished run, matrices and artifacts.

Every name comes from `nlbench.results.schema`, the same module the writer uses.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Mapping
from typing import Any

import numpy as np
import pandas as pd

from nlbench.core.errors import UsageError
from nlbench.results import schema


def run_filter(extra: Mapping[str, str] | None = None, **tags: str | None) -> str:
    """An MLflow filter string on run tags (nlbench's and any `extra` ones); None values are left out."""
    def clause(key: str, value: str) -> str:
        key = key if key.isidentifier() else f"`{key}`"  # MLflow quotes keys such as mlflow.user
        value = value.replace("'", "\\'")
        return f"tags.{key} = '{value}'"

    return " and ".join(clause(k, v) for k, v in {**tags, **(extra or {})}.items() if v)


def parse_tag_filters(pairs: list[str] | None) -> dict[str, str]:
    """`--tag KEY=VALUE` arguments as a dict, with a usage error naming a malformed one."""
    tags = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip() or not value:
            raise UsageError(f"--tag must look like KEY=VALUE (e.g. --tag device=cpu). Got {pair!r} instead.")
        tags[key.strip()] = value
    return tags


def search(tracking_uri: str, experiment: str, scenario: str | None = None, method: str | None = None,
           family: str | None = None, since: str | None = None, tags: Mapping[str, str] | None = None,
           run_ids: Collection[str] | None = None) -> pd.DataFrame:
    """Child runs of one experiment, filtered in MLflow (kind, scenario, method, family, tags, start date), then
    to `run_ids` when given (the runs of one `nlbench run`, including those it skipped as already FINISHED)."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    if mlflow.get_experiment_by_name(experiment) is None:
        names = [e.name for e in mlflow.search_experiments()]
        raise UsageError(f"no MLflow experiment '{experiment}' in {tracking_uri}; experiments there: "
                         f"{', '.join(names) or 'none'}. Run the suite first (nlbench run SUITE).")
    filters = [run_filter(tags, kind=schema.RUN_KIND,
                          scenario=scenario, method=method, family=family)]
    if since:
        try:
            ms = int(pd.Timestamp(since, tz="UTC").timestamp() * 1000)
        except ValueError as exc:
            raise UsageError(f"--since must be a date such as 2026-11-23. Got {since!r} instead.") from exc
        filters.append(f"attributes.start_time >= {ms}")
    runs = mlflow.search_runs(experiment_names=[experiment], filter_string=" and ".join(filters), max_results=50_000)
    return runs if run_ids is None else runs[runs["run_id"].isin(set(run_ids))]


def runs_frame(runs: pd.DataFrame) -> pd.DataFrame:
    """MLflow's `search_runs` frame -> one row per (scenario, method, seed): its newest FINISHED child run, with
    its start time, scenario, method, family, seed, chance level, and one column per metric of `COLUMNS`."""
    if runs.empty:
        return pd.DataFrame(columns=["run_id", "started", "scenario", "method", "method_name", "family", "seed",
                                     "chance", "tuned"])
    runs = runs[(runs.get(schema.tag_column(schema.KIND)) == schema.RUN_KIND) & (runs["status"] == "FINISHED")]
    runs = runs.sort_values("start_time", ascending=False)

    def metric(key: str) -> pd.Series:
        return runs.get(schema.metric_column(key), pd.Series(math.nan, index=runs.index))

    frame = pd.DataFrame({
        "run_id": runs["run_id"],
        "started": runs["start_time"],
        "scenario": runs[schema.tag_column("scenario")],
        "method": runs[schema.tag_column("method")],
        "method_name": runs.get(schema.tag_column("method_name"), runs[schema.tag_column("method")]),
        "family": runs.get(schema.tag_column("family")),
        "seed": pd.to_numeric(runs[schema.tag_column("seed")]),
        "chance": metric(schema.CHANCE),
        "tuned": runs.get(schema.tag_column(schema.TUNED), pd.Series("", index=runs.index)).fillna(""),
    })
    for column in schema.COLUMNS:
        frame[column.label] = metric(column.key)
    return frame.drop_duplicates(["scenario", "method", "seed"], keep="first").reset_index(drop=True)


def read_matrix(client: Any, run_id: str, n_experiences: int, name: str = "acc") -> np.ndarray:
    """A matrix back from a run's `{name}/exp{j}` histories (the inverse of `schema.matrix_metrics`)."""
    M = np.full((n_experiences, n_experiences), np.nan)
    for j in range(n_experiences):
        for m in client.get_metric_history(run_id, schema.matrix_key(name, j)):
            if m.step < n_experiences:
                M[m.step, j] = m.value
    return M


def n_experiences(run: Any) -> int:
    """Columns of R a run logged."""
    return sum(1 for key in run.data.metrics if key.startswith(schema.matrix_key("acc", "")))


def read_json_artifact(client: Any, run_id: str, path: str) -> Any:
    """A JSON artifact of a run, or None when the run has none."""
    import tempfile

    from mlflow.exceptions import MlflowException

    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = client.download_artifacts(run_id, path, tmp)
        except (MlflowException, OSError):
            return None
        with open(local, encoding="utf-8") as f:
            return json.load(f)


def get_run(client: Any, run_id: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(run_id)
    except MlflowException as exc:
        raise UsageError(f"no run '{run_id}' in {client.tracking_uri}; list runs with `nlbench runs`.") from exc
