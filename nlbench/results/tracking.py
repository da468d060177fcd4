"""MLflow layout of a suite: one experiment per suite, a parent run per invocation, a child run per
(scenario, method, seed). Uses `MlflowClient` with explicit run ids, so nothing depends on a global
active run and a worker process could log its own child.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
_BAD_KEY = re.compile(r"[^A-Za-z0-9_\-. :/]")
_MAX_BATCH = 1000  # MLflow's log_batch limit for metrics


def resolve_tracking_uri(cli_uri: str | None = None) -> str:
    """--tracking-uri, else MLFLOW_TRACKING_URI, else the embedded SQLite store in the working directory."""
    return cli_uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def sanitize_key(name: str) -> str:
    """MLflow allows alphanumerics, '_', '-', '.', ' ', ':' and '/' in keys, up to 250 characters."""
    return _BAD_KEY.sub("_", name)[:250]


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested dicts to dotted keys; lists and other values as compact strings (MLflow params are text)."""
    out: dict[str, str] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, key + "."))
        else:
            out[key] = json.dumps(v) if isinstance(v, (list, tuple, bool)) or v is None else str(v)
    return out


def git_commit() -> str | None:
    """The commit of the nlbench source tree, when it is a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def environment_tags(device: str) -> dict[str, str]:
    import avalanche
    import torch

    import nlbench
    from nlbench.run.resources import machine_description

    tags = {"nlbench_version": nlbench.__version__, "torch_version": torch.__version__,
            "avalanche_version": getattr(avalanche, "__version__", "unknown"), "device": device,
            "machine": machine_description()}
    commit = git_commit()
    if commit:
        tags["git_commit"] = commit
    return tags


def run_filter(extra: Mapping[str, str] | None = None, **tags: str | None) -> str:
    """An MLflow filter string on run tags (nlbench's and any `extra` ones); None values are left out."""
    def clause(key: str, value: str) -> str:
        key = key if key.isidentifier() else f"`{key}`"  # MLflow quotes keys such as mlflow.user
        value = value.replace("'", "\\'")
        return f"tags.{key} = '{value}'"

    return " and ".join(clause(k, v) for k, v in {**tags, **(extra or {})}.items() if v)


def parse_tag_filters(pairs: list[str] | None) -> dict[str, str]:
    """`--tag KEY=VALUE` arguments as a dict, with a usage error naming a malformed one."""
    from nlbench.core.errors import UsageError

    tags = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip() or not value:
            raise UsageError(f"--tag must look like KEY=VALUE (e.g. --tag device=cpu). Got {pair!r} instead.")
        tags[key.strip()] = value
    return tags


def read_matrix(client: MlflowClient, run_id: str, n_experiences: int) -> np.ndarray:
    """R back from a run's `acc/exp{j}` histories (the inverse of `Tracker.log_matrix`); NaN where missing."""
    R = np.full((n_experiences, n_experiences), np.nan)
    for j in range(n_experiences):
        for m in client.get_metric_history(run_id, f"acc/exp{j}"):
            if m.step < n_experiences:
                R[m.step, j] = m.value
    return R


def _metric(key: str, value: float, step: int, ts: int | None = None) -> Metric:
    return Metric(sanitize_key(key), float(value), ts or int(time.time() * 1000), int(step))


class MetricBuffer:
    """Batches metric writes to one run and flushes them with `log_batch` (one round-trip, not hundreds)."""

    def __init__(self, client: MlflowClient, run_id: str):
        self.client, self.run_id = client, run_id
        self.pending: list[Metric] = []

    def add(self, key: str, value: float, step: int) -> None:
        if isinstance(value, (int, float)) and math.isfinite(value):
            self.pending.append(_metric(key, value, step))

    def flush(self) -> None:
        while self.pending:
            batch, self.pending = self.pending[:_MAX_BATCH], self.pending[_MAX_BATCH:]
            self.client.log_batch(self.run_id, metrics=batch)


def mlflow_logger(buffer: MetricBuffer) -> Any:
    """An Avalanche logger that forwards Avalanche's own metrics (per-epoch train loss and accuracy, ...)
    to MLflow with sanitized names, flushing at each experience boundary. Avalanche ships no MLflow logger."""
    import torch
    from avalanche.logging import BaseLogger

    class MLflowLogger(BaseLogger):
        def log_single_metric(self, name: str, value: Any, x_plot: int) -> None:
            if torch.is_tensor(value) and value.numel() == 1:
                value = value.item()
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                buffer.add(name, float(value), x_plot)
            # Tensors (e.g. Avalanche's own accuracy matrix), images and figures are skipped: nlbench logs
            # its own accuracy matrix as an artifact.

        def after_training_exp(self, strategy: Any, metric_values: Any, **kwargs: Any) -> None:
            buffer.flush()

        def log_file(self, local_path: str, artifact_path: str) -> None:
            """A file for the run's artifacts (e.g. the optimizer state after an experience)."""
            buffer.client.log_artifact(buffer.run_id, local_path, artifact_path)

    return MLflowLogger()


class Tracker:
    """Creates and fills the runs of one suite invocation."""

    def __init__(self, tracking_uri: str, experiment_name: str):
        self.tracking_uri = tracking_uri
        mlflow.set_tracking_uri(tracking_uri)
        self.client = MlflowClient(tracking_uri)
        exp = self.client.get_experiment_by_name(experiment_name)
        if exp is None:
            # The experiment kind makes the MLflow 3 UI open on its model-training pages (runs, metric
            # charts) rather than the GenAI tracing ones.
            self.experiment_id = self.client.create_experiment(
                experiment_name, tags={"mlflow.experimentKind": "custom_model_development"})
        elif exp.lifecycle_stage == "deleted":
            self.client.restore_experiment(exp.experiment_id)
            self.experiment_id = exp.experiment_id
        else:
            self.experiment_id = exp.experiment_id

    def start_parent(self, suite: str, tags: Mapping[str, str], params: Mapping[str, Any]) -> str:
        run = self.client.create_run(self.experiment_id, run_name=f"suite:{suite}",
                                     tags={"suite": suite, "kind": "suite", **tags})
        self.log_params(run.info.run_id, params)
        return run.info.run_id

    def start_child(self, parent_id: str, run_name: str, tags: Mapping[str, str]) -> str:
        run = self.client.create_run(self.experiment_id, run_name=run_name,
                                     tags={"mlflow.parentRunId": parent_id, "kind": "run", **tags})
        return run.info.run_id

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        self.client.log_batch(run_id, params=[Param(k, v[:6000]) for k, v in flatten(params).items()])

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        self.client.log_batch(run_id, tags=[RunTag(k, str(v)[:5000]) for k, v in tags.items()])

    def log_matrix(self, buffer: MetricBuffer, R: np.ndarray, b: np.ndarray | None = None,
                   prefix: str = "acc") -> None:
        """Row i of R as {prefix}/exp{j} at step i; b as init/{prefix}/exp{j}."""
        for j, v in enumerate(b if b is not None else ()):
            buffer.add(f"init/{prefix}/exp{j}", v, 0)
        for i, row in enumerate(R):
            for j, v in enumerate(row):
                buffer.add(f"{prefix}/exp{j}", v, i)

    def log_artifacts(self, run_id: str, R: np.ndarray, b: np.ndarray, config: Mapping[str, Any],
                      title: str) -> None:
        from nlbench.results.plots import accuracy_matrix_heatmap

        header = "after_exp," + ",".join(f"exp{j}" for j in range(len(b)))
        rows = ["init," + ",".join(f"{v:.6f}" for v in b)]
        rows += [f"{i}," + ",".join(f"{v:.6f}" for v in row) for i, row in enumerate(R)]
        self.client.log_text(run_id, "\n".join([header, *rows]) + "\n", "acc_matrix.csv")
        fig = accuracy_matrix_heatmap(R, title=title, b=b)
        try:
            self.client.log_figure(run_id, fig, "acc_matrix.png")
        finally:
            import matplotlib.pyplot as plt

            plt.close(fig)
        self.client.log_dict(run_id, dict(config), "run_config.json")

    def finish(self, run_id: str, status: str) -> None:
        self.client.set_terminated(run_id, status=status)
