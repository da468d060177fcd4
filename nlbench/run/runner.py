"""Runs a suite: each run config goes to a backend (this process, a process pool, Ray), which executes it with the
run unit (`execute_run`, no I/O) and hands the result back here, where it is recorded. Only this driver writes.

Resumable: a run whose key (`RunConfig.key`) already FINISHED in the experiment is skipped (`rerun` forces it),
RUNNING runs left by a dead process are marked KILLED first, and results that a failing store could not take
are kept in a local spool (`nlbench.results.spool`) and uploaded by the next invocation. A failing run is
recorded as FAILED with its error and the suite goes on.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nlbench.core.errors import TrackingError
from nlbench.run.config import RunConfig
from nlbench.run.execute import RunResult, execute_run
from nlbench.run.suite import Suite


@dataclass
class SuiteOutcome:
    results: list[RunResult]  # the runs this invocation executed
    parent_run_id: str
    experiment: str
    tracking_uri: str
    wall_time_s: float
    total: int  # runs the suite asked for
    backend: str = ""
    skipped: dict[str, str] = field(default_factory=dict)  # run name -> id of the FINISHED run with the same key
    uploaded: int = 0  # results an earlier invocation had spooled, recorded now
    reaped: list[str] = field(default_factory=list)  # RUNNING runs of dead processes, now KILLED
    run_ids: list[str] = field(default_factory=list)  # this suite's runs in the store: recorded and skipped
    spooled: int = 0  # results still waiting in the spool (the store failed)
    spool_folder: str = ""
    tracking_error: TrackingError | None = None  # the store failed; what it could not take is in the spool

    @property
    def failed(self) -> list[RunResult]:
        return [r for r in self.results if not r.ok]


class _Recorder:
    """Records results in the store; while the store fails, keeps them in the spool and retries with each new
    result, so a server that comes back gets everything in order."""

    def __init__(self, tracker: Any, parent_id: str, env_tags: dict[str, str], spool: Any, outcome: SuiteOutcome,
                 run_tags: Callable[[RunConfig], dict[str, str]] = lambda config: {}):
        self.tracker, self.parent_id, self.env_tags, self.spool, self.outcome = (tracker, parent_id, env_tags,
                                                                                 spool, outcome)
        self.run_tags = run_tags

    def _record(self, result: RunResult) -> None:
        tags = {**self.env_tags, **self.run_tags(result.config)}
        self.outcome.run_ids.append(self.tracker.record(self.parent_id, result, tags))

    def add(self, result: RunResult) -> None:
        if self.outcome.tracking_error is None:
            try:
                self._record(result)
                return
            except TrackingError as exc:
                self.outcome.tracking_error = exc
                self.spool.save(result)
                return
        self.spool.save(result)
        self.flush()

    def flush(self) -> int:
        """Record the spooled results, oldest first; stops at the first store failure. Returns how many."""
        n = 0
        for path in self.spool.pending():
            try:
                self._record(self.spool.load(path))
            except TrackingError as exc:
                self.outcome.tracking_error = exc
                return n
            self.spool.remove(path)
            n += 1
        self.outcome.tracking_error = None
        return n


def _tuned_tag(suite: Suite, config: RunConfig) -> dict[str, str]:
    from nlbench.results.schema import TUNED

    note = suite.tuned_note(config.scenario, config.method)
    return {TUNED: note} if note else {}


def run_suite(suite: Suite, configs: list[RunConfig], tracking_uri: str, progress: bool = True,
              execute: Callable[[RunConfig], RunResult] = execute_run, backend: Any = None, rerun: bool = False,
              spool: Any = None) -> SuiteOutcome:
    """Run every config not yet FINISHED under one parent MLflow run, with one progress bar (done/total, running,
    failed, ETA). `backend` defaults to the suite's (see `nlbench.run.backends.make_backend`)."""
    from tqdm.auto import tqdm

    from nlbench.results.spool import Spool
    from nlbench.results.tracking import Tracker, environment_tags
    from nlbench.run.backends import make_backend

    t0 = time.perf_counter()
    tracker = Tracker(tracking_uri, suite.experiment_name)
    backend = backend or make_backend(suite.backend, suite.jobs, configs[0].threads if configs else 1)
    spool = spool or Spool(tracking_uri, suite.experiment_name)
    env_tags = environment_tags()
    reaped = tracker.reap()
    parent_id = tracker.start_parent(suite, configs, env_tags, {"backend": backend.describe(), "rerun": rerun})
    outcome = SuiteOutcome([], parent_id, suite.experiment_name, tracking_uri, 0.0, len(configs),
                           backend.describe(), reaped=reaped, spool_folder=str(spool.folder))
    recorder = _Recorder(tracker, parent_id, env_tags, spool, outcome, lambda config: _tuned_tag(suite, config))
    outcome.uploaded = recorder.flush()
    if outcome.tracking_error is not None:  # the store takes nothing: running now would only fill the spool
        tracker.finish_quietly(parent_id, "FAILED")
        raise outcome.tracking_error
    done = {} if rerun else tracker.finished_keys()
    todo = [c for c in configs if c.key not in done]
    outcome.skipped = {c.run_name: done[c.key] for c in configs if c.key in done}
    outcome.run_ids += list(outcome.skipped.values())
    bar = tqdm(total=len(todo), unit="run", disable=not progress, file=sys.stderr, dynamic_ncols=True)
    try:
        for result in backend.run(todo, execute):
            recorder.add(result)
            outcome.results.append(result)
            if not result.ok:
                bar.write(f"FAILED {result.config.run_name}: {result.error}", file=sys.stderr)
            bar.set_description(result.config.run_name)
            bar.set_postfix(running=backend.running, failed=len(outcome.failed), refresh=False)
            bar.update(1)
    except BaseException:  # Ctrl-C: the parent is not left RUNNING
        tracker.finish_quietly(parent_id, "KILLED")
        raise
    finally:
        bar.close()
    outcome.spooled = len(spool)
    status = "FAILED" if outcome.failed or outcome.tracking_error else "FINISHED"
    if outcome.tracking_error is not None:
        tracker.finish_quietly(parent_id, status)
    else:
        try:
            tracker.finish(parent_id, status)
        except TrackingError as exc:
            outcome.tracking_error = exc
    outcome.wall_time_s = time.perf_counter() - t0
    return outcome
