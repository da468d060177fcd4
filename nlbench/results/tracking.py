"""The only code that writes to MLflow: one experiment per suite, a parent run per invocation, a child run per
(scenario, method, seed), each written in one go from its `RunRecord` after the run finished.

Uses `MlflowClient` with explicit run ids, so nothing depends on a global active run. A child run is created
only when its result is there, with the run's real start and end times, so a crash or Ctrl-C during training
leaves no RUNNING child behind. A store error becomes a `TrackingError`; the child is then marked FAILED with a
`tracking_error` tag when the store still answers.
"""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from nlbench.core.errors import TrackingError
from nlbench.results import schema

_MAX_METRICS, _MAX_PARAMS, _MAX_TAGS = 1000, 100, 100  # MLflow's log_batch limits


def git_commit() -> str | None:
    """The commit of the nlbench source tree, when it is a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def environment_tags() -> dict[str, str]:
    """Versions and machine, tagged on every run (leaderboard headers read them back)."""
    import avalanche
    import torch

    import nlbench
    from nlbench.run.resources import machine_description

    tags = {"nlbench_version": nlbench.__version__, "torch_version": torch.__version__,
            "avalanche_version": getattr(avalanche, "__version__", "unknown"), "machine": machine_description()}
    commit = git_commit()
    if commit:
        tags["git_commit"] = commit
    return tags


@contextmanager
def store_errors(uri: str, doing: str) -> Iterator[None]:
    """Any error of the store, as one `TrackingError` that says what was being done where."""
    try:
        yield
    except TrackingError:
        raise
    except Exception as exc:
        first = f"{type(exc).__name__}: {exc}".strip().splitlines()[0][:300]
        raise TrackingError(f"tracking store {uri} failed while {doing}: {first}") from exc


class Tracker:
    """Creates and fills the runs of one suite invocation."""

    def __init__(self, tracking_uri: str, experiment_name: str):
        from mlflow.tracking import MlflowClient

        self.tracking_uri = tracking_uri
        with store_errors(tracking_uri, f"opening experiment '{experiment_name}'"):
            self.client = MlflowClient(tracking_uri)
            exp = self.client.get_experiment_by_name(experiment_name)
            if exp is None:
                # The experiment kind makes the MLflow 3 UI open on its model-training pages (runs, metric
                # charts) rather than the GenAI tracing ones.
                self.experiment_id = self.client.create_experiment(
                    experiment_name, tags={"mlflow.experimentKind": "custom_model_development"})
            else:
                if exp.lifecycle_stage == "deleted":
                    self.client.restore_experiment(exp.experiment_id)
                self.experiment_id = exp.experiment_id

    def start_parent(self, suite: Any, configs: Sequence[Any], env_tags: Mapping[str, str]) -> str:
        """The parent run of one `nlbench run`: the suite, its runs and settings as params."""
        settings = configs[0].settings if configs else {}
        params = {"suite_file": suite.path, "n_runs": len(configs), "seeds": sorted({c.seed for c in configs}),
                  "scenarios": list(dict.fromkeys(c.scenario for c in configs)),
                  "methods": list(dict.fromkeys(c.method for c in configs)), schema.SETTINGS: settings}
        with store_errors(self.tracking_uri, "starting the suite's parent run"):
            run = self.client.create_run(self.experiment_id, run_name=f"suite:{suite.name}",
                                         tags={"suite": suite.name, schema.KIND: schema.SUITE_KIND,
                                               "device": settings.get("device", ""), **env_tags})
            self._params(run.info.run_id, schema.flatten(params))
        return run.info.run_id

    def record(self, parent_id: str, result: Any, env_tags: Mapping[str, str]) -> str:
        """Write one finished or failed run; the child run is created, filled and terminated here."""
        record = schema.record_of(result, parent_id, env_tags)
        run_id = None
        try:
            with store_errors(self.tracking_uri, f"recording {record.name}"):
                run_id = self.client.create_run(self.experiment_id, start_time=record.started_ms or None,
                                                tags=_text(record.tags, 5000), run_name=record.name).info.run_id
                self._params(run_id, record.params)
                self._metrics(run_id, record.metrics, record.ended_ms)
                self._artifacts(run_id, record.artifacts)
                self.client.set_terminated(run_id, status=record.status, end_time=record.ended_ms or None)
        except TrackingError as exc:
            if run_id is not None:
                self._mark_failed(run_id, str(exc))
            raise
        except BaseException:  # Ctrl-C while writing: the child is not left RUNNING
            if run_id is not None:
                self.finish_quietly(run_id, "KILLED")
            raise
        return run_id

    def _params(self, run_id: str, params: Mapping[str, str]) -> None:
        from mlflow.entities import Param

        items = [Param(k, v[:6000]) for k, v in params.items()]
        for start in range(0, len(items), _MAX_PARAMS):
            self.client.log_batch(run_id, params=items[start:start + _MAX_PARAMS])

    def _metrics(self, run_id: str, metrics: Sequence[tuple[str, float, int]], timestamp: int) -> None:
        from mlflow.entities import Metric

        items = [Metric(k, v, timestamp, step) for k, v, step in metrics]
        for start in range(0, len(items), _MAX_METRICS):
            self.client.log_batch(run_id, metrics=items[start:start + _MAX_METRICS])

    def _artifacts(self, run_id: str, artifacts: Mapping[str, bytes]) -> None:
        """All of a run's files in one upload."""
        with tempfile.TemporaryDirectory() as tmp:
            for rel, content in artifacts.items():
                path = Path(tmp) / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(content)
            self.client.log_artifacts(run_id, tmp)

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        from mlflow.entities import RunTag

        items = [RunTag(k, v) for k, v in _text(tags, 5000).items()]
        for start in range(0, len(items), _MAX_TAGS):
            self.client.log_batch(run_id, tags=items[start:start + _MAX_TAGS])

    def _mark_failed(self, run_id: str, message: str) -> None:
        with contextlib.suppress(Exception):  # the store is failing; the TrackingError already says so
            self.set_tags(run_id, {schema.TRACKING_ERROR: message})
        self.finish_quietly(run_id, "FAILED")

    def finish(self, run_id: str, status: str) -> None:
        with store_errors(self.tracking_uri, "finishing the suite's parent run"):
            self.client.set_terminated(run_id, status=status)

    def finish_quietly(self, run_id: str, status: str) -> None:
        """Terminate a run if the store still answers; a failing store was already reported."""
        with contextlib.suppress(Exception):
            self.client.set_terminated(run_id, status=status)


def _text(values: Mapping[str, Any], limit: int) -> dict[str, str]:
    return {k: str(v)[:limit] for k, v in values.items()}
