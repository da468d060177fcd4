"""The only code that writes to MLflow: one experiment per suite, a parent run per invocation, a child run per
(scenario, method, seed), each written in one go from its `RunRecord` after the run finished.

Uses `MlflowClient` with explicit run ids, so nothing depends on a global active run. A child run is created
only when its result is there, with the run's real start and end times, so a crash or Ctrl-C during training
leaves no RUNNING child behind. A store error becomes a `TrackingError`; the child is then marked FAILED with a
`tracking_error` tag when the store still answers.

Several `nlbench run` processes may share a store: writes to a SQLite file are serialised by a lock file beside
it (MLflow's first-use schema migration is not safe to run twice at once) and retried when SQLite still reports
the database locked; a tracking server's requests are retried a few times with backoff, so a dead server is
noticed in seconds rather than MLflow's default of minutes per request.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from nlbench.core.errors import TrackingError
from nlbench.results import schema

_MAX_METRICS, _MAX_PARAMS, _MAX_TAGS = 1000, 100, 100  # MLflow's log_batch limits
# A dead server fails a request after ~7 s (retries after 1, 2 and 4 s) instead of MLflow's ~4 minutes; the
# environment still wins.
HTTP_RETRY_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                       "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}
_LOCKED_RETRIES = 6  # "database is locked" from SQLite: retried after 0.25, 0.5, ... 8 s


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


def _first_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".strip().splitlines()[0][:300]


@contextmanager
def store_lock(uri: str) -> Iterator[None]:
    """Exclusive access to a SQLite store among the processes of this machine (a no-op for other stores)."""
    from nlbench.results.uri import local_store

    local = local_store(uri)
    if local is None or not local[1]:
        yield
        return
    import fcntl

    path = local[0]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f".{path.name}.nlbench-lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextmanager
def store_errors(uri: str, doing: str) -> Iterator[None]:
    """Any error of the store, as one `TrackingError` that says what was being done where."""
    try:
        yield
    except TrackingError:
        raise
    except Exception as exc:
        raise TrackingError(f"tracking store {uri} failed while {doing}: {_first_line(exc)}") from exc


def _locked(exc: BaseException) -> bool:
    return "database is locked" in str(exc)


def writing(uri: str, doing: str, write: Any) -> Any:
    """`write()` under the store's lock, retried with backoff while SQLite says the database is locked (another
    program, e.g. the MLflow UI, holds it); any other failure is a `TrackingError`."""
    attempt = 0
    while True:
        try:
            with store_errors(uri, doing), store_lock(uri):
                return write()
        except TrackingError as exc:
            if attempt == _LOCKED_RETRIES or not _locked(exc.__cause__ or exc):
                raise
            time.sleep(0.25 * 2**attempt)
            attempt += 1


class Tracker:
    """Creates and fills the runs of one suite invocation."""

    def __init__(self, tracking_uri: str, experiment_name: str):
        from mlflow.tracking import MlflowClient

        from nlbench.run.resources import process_identity

        for key, value in HTTP_RETRY_DEFAULTS.items():
            os.environ.setdefault(key, value)
        self.tracking_uri = tracking_uri
        self.process = process_identity()  # tagged on every run this tracker writes
        with store_errors(tracking_uri, f"opening experiment '{experiment_name}'"), store_lock(tracking_uri):
            self.client = MlflowClient(tracking_uri)  # opens (and on first use creates) the store
        self.experiment_id = writing(tracking_uri, f"opening experiment '{experiment_name}'",
                                     lambda: self._experiment(experiment_name))

    def _experiment(self, name: str) -> str:
        exp = self.client.get_experiment_by_name(name)
        if exp is None:
            try:  # The kind makes the MLflow 3 UI open on its model-training pages rather than the GenAI ones.
                return self.client.create_experiment(name, tags={"mlflow.experimentKind": "custom_model_development"})
            except Exception:  # another process created it first (a server store has no lock of ours)
                exp = self.client.get_experiment_by_name(name)
                if exp is None:
                    raise
        if exp.lifecycle_stage == "deleted":
            self.client.restore_experiment(exp.experiment_id)
        return exp.experiment_id

    def start_parent(self, suite: Any, configs: Sequence[Any], env_tags: Mapping[str, str],
                     execution: Mapping[str, Any] | None = None) -> str:
        """The parent run of one `nlbench run`: the suite, its runs, settings and execution as params."""
        settings = configs[0].settings if configs else {}
        params = {"suite_file": suite.path, "n_runs": len(configs), "seeds": sorted({c.seed for c in configs}),
                  "scenarios": list(dict.fromkeys(c.scenario for c in configs)),
                  "methods": list(dict.fromkeys(c.method for c in configs)), schema.SETTINGS: settings,
                  "execution": dict(execution or {})}
        tags = {"suite": suite.name, schema.KIND: schema.SUITE_KIND, "device": settings.get("device", ""), **env_tags}
        return self.start(f"suite:{suite.name}", tags, params)

    def start(self, run_name: str, tags: Mapping[str, str], params: Mapping[str, Any]) -> str:
        """A parent run (a suite's, a tuning study's), tagged with this process so a later invocation can tell
        whether it died."""

        def write() -> str:
            run = self.client.create_run(self.experiment_id, run_name=run_name,
                                         tags={**tags, schema.PROCESS: self.process})
            self._params_and_metrics(run.info.run_id, schema.flatten(params), [], 0)
            return run.info.run_id

        return writing(self.tracking_uri, f"starting the parent run {run_name}", write)

    def record(self, parent_id: str, result: Any, env_tags: Mapping[str, str]) -> str:
        """Write one finished or failed run; the child run is created, filled and terminated here."""
        record = schema.record_of(result, parent_id, env_tags)
        tags = _text({**record.tags, schema.PROCESS: self.process}, 5000)
        # The kind comes with the metrics: a child killed before them is no run, nor trial, to any search.
        kind = {schema.KIND: tags.pop(schema.KIND)}
        created: list[str] = []

        def write() -> str:
            run_id = self.client.create_run(self.experiment_id, start_time=record.started_ms or None, tags=tags,
                                            run_name=record.name).info.run_id
            created.append(run_id)
            self._params_and_metrics(run_id, record.params, record.metrics, record.ended_ms, kind)
            self._artifacts(run_id, record.artifacts)
            self.client.set_terminated(run_id, status=record.status, end_time=record.ended_ms or None)
            return run_id

        try:
            return writing(self.tracking_uri, f"recording {record.name}", write)
        except TrackingError as exc:
            for run_id in created:  # a half-written child is FAILED, never counted
                self._mark_failed(run_id, str(exc))
            raise
        except BaseException:  # Ctrl-C while writing: the child is not left RUNNING
            for run_id in created:
                self.finish_quietly(run_id, "KILLED")
            raise

    def finished_keys(self) -> dict[str, str]:
        """{run key: run id} of the experiment's FINISHED runs, newest first wins."""
        from nlbench.results.store import run_filter

        keys: dict[str, str] = {}
        for run in self._runs(f"{run_filter(kind=schema.RUN_KIND)} and attributes.status = 'FINISHED'"):
            key = run.data.tags.get(schema.RUN_KEY)
            if key:
                keys.setdefault(key, run.info.run_id)
        return keys

    def reap(self) -> list[str]:
        """Mark KILLED the experiment's RUNNING runs whose writing process is gone (kill -9, a crash, a reboot);
        returns their names. Runs written on other machines are left alone: their process cannot be checked."""
        from nlbench.run.resources import process_alive

        reaped = []
        for run in self._runs("attributes.status = 'RUNNING'"):
            owner = run.data.tags.get(schema.PROCESS, "")
            if owner and process_alive(owner) is False:
                self._kill(run.info.run_id, f"its process {owner} was gone when a later nlbench run started")
                reaped.append(run.info.run_name)
        return reaped

    def _kill(self, run_id: str, why: str) -> None:
        def write() -> None:
            self.client.set_tag(run_id, schema.KILLED_BY, why)
            self.client.set_terminated(run_id, status="KILLED")

        writing(self.tracking_uri, f"marking run {run_id} KILLED", write)

    def log(self, run_id: str, params: Mapping[str, str], metrics: Sequence[tuple[str, float, int]]) -> None:
        """Params and metrics on an existing run (a study's chosen values)."""
        writing(self.tracking_uri, f"logging to run {run_id}",
                lambda: self._params_and_metrics(run_id, params, metrics, int(time.time() * 1000)))

    def runs(self, filter_string: str) -> list[Any]:
        """The experiment's runs matching an MLflow filter, every page."""
        return self._runs(filter_string)

    def _runs(self, filter_string: str) -> list[Any]:
        runs, token = [], None
        with store_errors(self.tracking_uri, "searching runs"):
            while True:
                page = self.client.search_runs([self.experiment_id], filter_string, max_results=1000, page_token=token)
                runs += list(page)
                token = page.token
                if not token:
                    return runs

    def _params_and_metrics(self, run_id: str, params: Mapping[str, str],
                            metrics: Sequence[tuple[str, float, int]], timestamp: int,
                            last_tags: Mapping[str, str] | None = None) -> None:
        """As few `log_batch` calls as MLflow's limits allow (each is a store transaction): up to _MAX_PARAMS
        params and, with them, metrics up to _MAX_METRICS entries in all; `last_tags` with the last of them, so
        they are in the store only once every param and metric is."""
        from mlflow.entities import Metric, Param, RunTag

        param_items = [Param(k, v[:6000]) for k, v in params.items()]
        metric_items = [Metric(k, v, timestamp, step) for k, v, step in metrics]
        tag_items = [RunTag(k, v) for k, v in (last_tags or {}).items()]
        while param_items or metric_items or tag_items:
            chunk, param_items = param_items[:_MAX_PARAMS], param_items[_MAX_PARAMS:]
            room = _MAX_METRICS - len(chunk)
            metric_chunk, metric_items = metric_items[:room], metric_items[room:]
            last = not param_items and not metric_items
            self.client.log_batch(run_id, params=chunk, metrics=metric_chunk, tags=tag_items if last else [])
            tag_items = [] if last else tag_items

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
        writing(self.tracking_uri, "finishing the suite's parent run",
                lambda: self.client.set_terminated(run_id, status=status))

    def finish_quietly(self, run_id: str, status: str) -> None:
        """Terminate a run if the store still answers; a failing store was already reported."""
        with contextlib.suppress(Exception), store_lock(self.tracking_uri):
            self.client.set_terminated(run_id, status=status)


def _text(values: Mapping[str, Any], limit: int) -> dict[str, str]:
    return {k: str(v)[:limit] for k, v in values.items()}
