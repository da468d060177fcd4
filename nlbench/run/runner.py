"""Runs a suite: each run config goes through the run unit (`execute_run`, no I/O), then its result is recorded.

Only the tracking layer writes. A failing run is recorded as FAILED with its error and the suite goes on; a
failing store is a `TrackingError`: the suite stops, and what was recorded so far stays as it is.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from nlbench.core.errors import TrackingError
from nlbench.run.config import RunConfig
from nlbench.run.execute import RunResult, execute_run
from nlbench.run.suite import Suite


@dataclass
class SuiteOutcome:
    results: list[RunResult]
    parent_run_id: str
    experiment: str
    tracking_uri: str
    wall_time_s: float
    total: int  # runs the suite asked for
    tracking_error: TrackingError | None = None  # set when the store failed and the suite stopped

    @property
    def failed(self) -> list[RunResult]:
        return [r for r in self.results if not r.ok]


def run_suite(suite: Suite, configs: list[RunConfig], tracking_uri: str, progress: bool = True,
              execute: Callable[[RunConfig], RunResult] = execute_run) -> SuiteOutcome:
    """Run every config under one parent MLflow run, with a progress bar (done/total, current run, ETA)."""
    from tqdm.auto import tqdm

    from nlbench.results.tracking import Tracker, environment_tags

    t0 = time.perf_counter()
    tracker = Tracker(tracking_uri, suite.experiment_name)
    env_tags = environment_tags()
    parent_id = tracker.start_parent(suite, configs, env_tags)
    results: list[RunResult] = []
    bar = tqdm(total=len(configs), unit="run", disable=not progress, file=sys.stderr, dynamic_ncols=True)
    error = None
    try:
        for config in configs:
            bar.set_description(config.run_name)
            result = execute(config)
            tracker.record(parent_id, result, env_tags)
            results.append(result)
            if not result.ok:
                bar.write(f"FAILED {config.run_name}: {result.error}", file=sys.stderr)
            bar.update(1)
    except TrackingError as exc:
        error = exc
    except BaseException:  # Ctrl-C: the parent is not left RUNNING
        tracker.finish_quietly(parent_id, "KILLED")
        raise
    finally:
        bar.close()
    if error is not None:
        tracker.finish_quietly(parent_id, "FAILED")
    else:
        try:
            tracker.finish(parent_id, "FAILED" if any(not r.ok for r in results) else "FINISHED")
        except TrackingError as exc:
            error = exc
    return SuiteOutcome(results, parent_id, suite.experiment_name, tracking_uri, time.perf_counter() - t0,
                        len(configs), error)
