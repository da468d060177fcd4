"""Runs a suite: each (scenario, method, seed) is an independent unit, `execute_run(config) -> RunResult`,
so that parallel or distributed backends can fan runs out later. A failing run is recorded as FAILED
with its error and the suite goes on.
"""

from __future__ import annotations

import sys
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nlbench.core.errors import UsageError
from nlbench.core.registry import SCENARIOS, get_method
from nlbench.run.config import RunConfig, Suite
from nlbench.run.metrics import summarize
from nlbench.run.protocol import run_protocol
from nlbench.run.resources import PeakMemory


@dataclass
class RunResult:
    config: RunConfig
    status: str  # "FINISHED" or "FAILED"
    R: list[list[float]] | None = None
    b: list[float] | None = None
    summary: dict[str, float] = field(default_factory=dict)
    train_time_s: float = float("nan")
    eval_time_s: float = float("nan")
    peak_mem_mb: float = float("nan")
    n_params: int = 0
    chance_acc: float = float("nan")  # a constant guess on this scenario: the floor a leaderboard compares with
    extra: dict[str, list[list[float]]] = field(default_factory=dict)  # binary scenarios: "bacc", "auc" matrices
    data_source: str = ""
    learned_params: dict[str, Any] = field(default_factory=dict)  # e.g. the values a grid search chose
    final_scores: list[tuple[list[int], list[float]]] = field(default_factory=list)  # binary scenarios
    error: str | None = None
    traceback: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "FINISHED"


def seed_everything(seed: int) -> None:
    """Python, numpy and torch RNGs (Avalanche's RNGManager), so the same seed gives the same run."""
    from avalanche.training.determinism.rng_manager import RNGManager

    RNGManager.set_random_seeds(seed)


def check_data(configs: Sequence[RunConfig]) -> None:
    """Resolve every external dataset the runs need before the first run starts, so missing or corrupt data
    is one usage error (saying how to provide it) rather than a suite of failed runs."""
    seen = set()
    for config in configs:
        key = (config.scenario_name, repr(sorted(config.scenario_options.items())))
        if key not in seen:
            seen.add(key)
            SCENARIOS.get(config.scenario_name)(**config.scenario_options).check_data()


def execute_run(config: RunConfig, loggers: Sequence[Any] = (),
                on_experience: Callable[[int, np.ndarray], None] | None = None) -> RunResult:
    """Build the scenario and method from `config`, run the protocol, return results (never raises on
    a failing run: the error is in the result)."""
    try:
        scenario = SCENARIOS.get(config.scenario_name)(**config.scenario_options)
        data = scenario.build(config.seed)
        method = get_method(config.method_name)()
        if data.info.setting not in method.COMPATIBILITY:
            raise UsageError(f"method '{config.method_name}' does not support the {data.info.setting} setting "
                             f"of scenario '{config.scenario}' (supports: {', '.join(method.COMPATIBILITY)}).")
        seed_everything(config.seed)  # model init and data order depend on the seed only
        with PeakMemory() as mem, warnings.catch_warnings():
            # Avalanche 0.6 warns about its own internals (ReplayPlugin's storage_policy.update, SI's numpy use).
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            learner = method.make_learner(config.hparams, data, config.device, loggers)
            res = run_protocol(learner, data, on_experience)
    except Exception as exc:
        return RunResult(config, "FAILED", error=f"{type(exc).__name__}: {exc}".splitlines()[0][:500],
                         traceback=traceback.format_exc())
    summary = summarize(res.R, res.b)
    summary.update({k: float(np.nanmean(m[-1])) for k, m in res.extra.items()})  # final bacc, auc
    return RunResult(
        config, "FINISHED", R=res.R.tolist(), b=res.b.tolist(), summary=summary,
        train_time_s=res.train_time_s, eval_time_s=res.eval_time_s, peak_mem_mb=mem.peak_mb,
        n_params=learner.n_trainable_params, chance_acc=data.info.chance_acc,
        extra={k: m.tolist() for k, m in res.extra.items()}, data_source=data.source,
        learned_params=dict(getattr(learner, "learned_params", {})), final_scores=res.final_scores,
    )


def track_run(tracker: Any, parent_id: str, config: RunConfig, env_tags: dict[str, str]) -> RunResult:
    """One child run in MLflow around `execute_run`."""
    from nlbench.results.tracking import MetricBuffer, mlflow_logger

    method_cls = get_method(config.method_name)
    scenario = SCENARIOS.get(config.scenario_name)(**config.scenario_options)
    tags = {"suite": config.suite, "scenario": config.scenario, "scenario_name": config.scenario_name,
            "setting": scenario.setting, "method": config.method, "method_name": config.method_name,
            "family": method_cls.FAMILY, "seed": str(config.seed), **env_tags, "device": config.device}
    run_id = tracker.start_child(parent_id, config.run_name, tags)
    tracker.log_params(run_id, {"seed": config.seed, **config.hparams, "scenario": config.scenario_options})
    buffer = MetricBuffer(tracker.client, run_id)
    try:
        result = execute_run(config, loggers=[mlflow_logger(buffer)])
    except BaseException:  # Ctrl-C: do not leave the run RUNNING forever
        tracker.finish(run_id, "KILLED")
        raise
    if result.ok:
        R, b = np.array(result.R), np.array(result.b)
        tracker.log_matrix(buffer, R, b)
        for key, M in result.extra.items():
            tracker.log_matrix(buffer, np.array(M), prefix=key)
        tracker.set_tags(run_id, {"data_source": result.data_source})
        if result.learned_params:
            tracker.log_params(run_id, result.learned_params)
        for k, v in result.summary.items():
            buffer.add(f"final/{k}", v, len(R) - 1)
        buffer.add("time/train_s", result.train_time_s, 0)
        buffer.add("time/eval_s", result.eval_time_s, 0)
        buffer.add("mem/peak_mb", result.peak_mem_mb, 0)
        buffer.add("model/trainable_params", result.n_params, 0)
        buffer.add("scenario/chance_acc", result.chance_acc, 0)
        buffer.flush()
        tracker.log_artifacts(run_id, R, b, config.to_dict(), title=config.run_name)
    else:
        buffer.flush()
        tracker.set_tags(run_id, {"error": result.error or ""})
        tracker.client.log_text(run_id, result.traceback or "", "error.txt")
    tracker.finish(run_id, result.status)
    return result


@dataclass
class SuiteOutcome:
    results: list[RunResult]
    parent_run_id: str
    experiment: str
    tracking_uri: str
    wall_time_s: float

    @property
    def failed(self) -> list[RunResult]:
        return [r for r in self.results if not r.ok]


def run_suite(suite: Suite, configs: list[RunConfig], tracking_uri: str, progress: bool = True) -> SuiteOutcome:
    """Run every config under one parent MLflow run, with a progress bar (done/total, current run, ETA)."""
    from tqdm.auto import tqdm

    from nlbench.results.tracking import Tracker, environment_tags

    t0 = time.perf_counter()
    tracker = Tracker(tracking_uri, suite.experiment_name)
    env_tags = environment_tags(configs[0].device if configs else "cpu")
    parent_id = tracker.start_parent(suite.name, env_tags, {
        "suite_file": suite.path, "n_runs": len(configs),
        "seeds": sorted({c.seed for c in configs}), "scenarios": list(dict.fromkeys(c.scenario for c in configs)),
        "methods": list(dict.fromkeys(c.method for c in configs)),
    })
    results: list[RunResult] = []
    bar = tqdm(total=len(configs), unit="run", disable=not progress, file=sys.stderr, dynamic_ncols=True)
    status = "KILLED"
    try:
        for config in configs:
            bar.set_description(config.run_name)
            result = track_run(tracker, parent_id, config, env_tags)
            results.append(result)
            if not result.ok:
                bar.write(f"FAILED {config.run_name}: {result.error}")
            bar.update(1)
        status = "FAILED" if any(not r.ok for r in results) else "FINISHED"
    finally:
        bar.close()
        tracker.finish(parent_id, status)
    return SuiteOutcome(results, parent_id, suite.experiment_name, tracking_uri, time.perf_counter() - t0)
