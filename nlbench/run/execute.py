"""The run unit: `execute_run(RunConfig) -> RunResult`, one (scenario, method, seed) with no I/O.

It builds the scenario and the method from the config alone, runs the protocol, and returns everything the
record needs (matrices, metrics, costs, training curves, files) as plain data. It writes nothing and never
raises for a failing run (the error is in the result), so runs can go to other processes or machines and only
the tracking layer writes.
"""

from __future__ import annotations

import contextlib
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nlbench.core.registry import SCENARIOS, get_method
from nlbench.run.config import RunConfig
from nlbench.run.metrics import summarize
from nlbench.run.protocol import run_protocol
from nlbench.run.resources import PeakMemory


@dataclass
class RunResult:
    """What one run produced; every field is plain data (lists, dicts, bytes), so a result can be pickled."""

    config: RunConfig
    status: str  # "FINISHED" or "FAILED"
    setting: str = ""  # the scenario's setting (class-, domain- or task-incremental)
    family: str = ""  # the method's family (nested, avalanche, sklearn)
    R: list[list[float]] | None = None
    b: list[float] | None = None
    summary: dict[str, float] = field(default_factory=dict)  # final metrics, see nlbench.run.metrics.METRICS
    train_time_s: float = float("nan")
    eval_time_s: float = float("nan")
    peak_mem_mb: float = float("nan")
    memory: dict[str, float] = field(default_factory=dict)  # MiB: state, model, optimizer, method, rss_increase, ...
    n_params: int = 0
    chance_acc: float = float("nan")  # a constant guess on this scenario: the floor a leaderboard compares with
    extra: dict[str, list[list[float]]] = field(default_factory=dict)  # binary scenarios: "bacc", "auc" matrices
    data_source: str = ""
    learned_params: dict[str, Any] = field(default_factory=dict)  # e.g. the values a grid search chose
    final_scores: list[tuple[list[int], list[float]]] = field(default_factory=list)  # binary scenarios
    curves: list[tuple[str, float, int]] = field(default_factory=list)  # (name, value, step): training curves
    files: dict[str, bytes] = field(default_factory=dict)  # artifacts by relative path (optimizer states)
    started_ms: int = 0
    ended_ms: int = 0
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
        key = (config.scenario_name, repr(sorted(config.scenario_options.items())), config.data_dir)
        if key not in seen:
            seen.add(key)
            SCENARIOS.get(config.scenario_name)(data_dir=config.data_dir, **config.scenario_options).check_data()


@contextlib.contextmanager
def run_settings(config: RunConfig) -> Iterator[None]:
    """The config's kernel backend and thread count for the duration of the run; the process's are restored.

    The thread count covers torch and the BLAS/OpenMP pools numpy and scipy use (GEM's projection, sklearn), so
    a run computes the same numbers in this process as in a worker started with that many threads: with BLAS
    on 2 threads, split-digits/gem seed 1 of the default suite ends at ACC 0.897, on 1 thread at 0.739."""
    import torch
    from threadpoolctl import threadpool_limits

    from nlbench.kernels.dispatch import use_backend

    before = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    blas = threadpool_limits(limits=config.threads) if config.threads else contextlib.nullcontext()
    try:
        with use_backend(config.kernel_backend, config.threads), blas, warnings.catch_warnings():
            # Avalanche 0.6 warns about its own internals (ReplayPlugin's storage_policy.update, SI's numpy use).
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            yield
    finally:
        torch.set_num_threads(before)


def build_data(scenario: Any, config: RunConfig) -> Any:
    """The scenario's stream for this run; a tuning trial's stream comes from its protocol (`nlbench.tune`)."""
    if not config.tuning:
        return scenario.build(config.seed)
    from nlbench.tune.protocols import tuning_data

    return tuning_data(scenario, config.seed, config.tuning)


def method_memory(learner: Any, data: Any, mem: PeakMemory) -> dict[str, float]:
    """MiB the method keeps, by part (`Learner.state_parts`), their total as "state", the resident memory's
    growth over the run and, on a GPU, its device peak."""
    from nlbench.run.footprint import footprint_mb

    tensors = [t for e in data.experiences for t in (e.x_train, e.y_train, e.x_test, e.y_test)]
    sizes = footprint_mb(learner.state_parts(), tensors)
    cuda = {"cuda_peak": mem.cuda_peak_mb} if mem.cuda_peak_mb is not None else {}
    return {"state": sizes.pop("total"), **sizes, "rss_increase": mem.increase_mb, **cuda}


def now_ms() -> int:
    return int(time.time() * 1000)


def failed_result(config: RunConfig, error: str, started_ms: int = 0) -> RunResult:
    """The result of a run that ended outside `execute_run` (its worker process died, a remote task was lost)."""
    return RunResult(config, "FAILED", error=error, traceback=error, started_ms=started_ms or now_ms(),
                     ended_ms=now_ms())


def execute_run(config: RunConfig, on_experience: Callable[[int, np.ndarray], None] | None = None) -> RunResult:
    """Build the scenario and method from `config`, run the protocol, return the result (a failing run's error
    is in the result)."""
    started = now_ms()
    setting = family = ""
    learner = None
    try:
        method_cls = get_method(config.method_name)
        family = method_cls.FAMILY
        scenario = SCENARIOS.get(config.scenario_name)(data_dir=config.data_dir, **config.scenario_options)
        setting = scenario.setting
        with run_settings(config):
            data = build_data(scenario, config)
            seed_everything(config.seed)  # model init and data order depend on the seed only
            with PeakMemory() as mem:
                learner = method_cls().make_learner(config.hparams, data, config.device)
                res = run_protocol(learner, data, on_experience)
            memory = method_memory(learner, data, mem)
    except Exception as exc:  # the curves so far show where it went wrong
        return RunResult(config, "FAILED", setting, family, error=f"{type(exc).__name__}: {exc}".splitlines()[0][:500],
                         traceback=traceback.format_exc(), curves=learner.curves if learner else [],
                         started_ms=started, ended_ms=now_ms())
    return RunResult(
        config, "FINISHED", setting, family, R=res.R.tolist(), b=res.b.tolist(),
        summary=summarize({"acc": res.R, **res.extra}, res.b), train_time_s=res.train_time_s,
        eval_time_s=res.eval_time_s, peak_mem_mb=mem.peak_mb, n_params=learner.n_trainable_params,
        memory=memory,
        chance_acc=data.info.chance_acc, extra={k: m.tolist() for k, m in res.extra.items()},
        data_source=data.source, learned_params=learner.learned_params, final_scores=res.final_scores,
        curves=learner.curves, files=learner.files, started_ms=started, ended_ms=now_ms(),
    )
