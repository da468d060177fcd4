"""`nlbench tune`: one Optuna study per (scenario, method) of a suite, the same budget, sampler and seed for every
method, trials run by the suite's backends through the run unit, and recorded as MLflow trial runs.

Resumable and safe to kill: a trial is asked from the study only when a worker is free; when it ends it is first
recorded in MLflow (tagged with its study and number), then told to the study. A later `nlbench tune` finds the
trials a dead process left RUNNING: one that MLflow recorded is told its recorded value; one that never finished is
marked failed (`interrupted`, not counted) and its parameters are queued again, so no trial is lost and none runs
twice. Only FINISHED, pruned and failed trials count toward the budget.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from nlbench.core.errors import UsageError
from nlbench.core.spaces import Space
from nlbench.run.config import RunConfig
from nlbench.run.execute import RunResult, execute_run
from nlbench.run.metrics import METRICS
from nlbench.run.suite import Suite
from nlbench.tune.choices import PROTOCOLS, PRUNERS

OBJECTIVES = tuple(m.name for m in METRICS)
HIGHER_IS_BETTER = {m.name: m.higher_is_better for m in METRICS}
NEEDS_TWO = ("forgetting", "bwt", "fwt")  # undefined on a one-experience tuning stream
PROCESS_ATTR, INTERRUPTED_ATTR = "process", "interrupted"


@dataclass(frozen=True)
class TuneOptions:
    """How a suite is tuned; the same for every (scenario, method)."""

    budget: int
    protocol: str = "first-experiences"
    experiences: int = 1  # first-experiences: how many
    val_share: float = 0.2
    seed: int = 1000  # the tuning stream's seed and the sampler's
    objective: str = "acc"
    pruner: str = "median"

    def check(self, suite: Suite) -> None:
        """One-line usage errors before anything is written."""
        if isinstance(self.budget, bool) or not isinstance(self.budget, int) or self.budget < 1:
            raise UsageError(f"--budget must be an int >= 1 (trials per scenario and method). Got {self.budget!r}.")
        if self.protocol not in PROTOCOLS:
            raise UsageError(f"--protocol must be one of {', '.join(PROTOCOLS)}. Got {self.protocol!r} instead.")
        if self.experiences < 1:
            raise UsageError(f"--experiences must be an int >= 1. Got {self.experiences!r} instead.")
        if not 0.0 < self.val_share < 1.0:
            raise UsageError(f"--val-share must be a float in (0, 1). Got {self.val_share!r} instead.")
        if self.seed in suite.seeds:
            raise UsageError(f"--seed {self.seed} is one of the seeds suite '{suite.name}' reports "
                             f"({', '.join(map(str, suite.seeds))}); tune on a seed the report never uses.")
        if self.objective not in OBJECTIVES:
            raise UsageError(f"--objective must be one of {', '.join(OBJECTIVES)}. Got {self.objective!r} instead.")
        if self.objective in NEEDS_TWO and self.protocol == "first-experiences" and self.experiences == 1:
            raise UsageError(f"--objective {self.objective} is undefined on one experience; use --experiences 2 "
                             "or more, or --protocol tuning-stream.")
        if self.pruner not in PRUNERS:
            raise UsageError(f"--pruner must be one of {', '.join(PRUNERS)}. Got {self.pruner!r} instead.")

    def spec(self, reported_seeds: tuple[int, ...]) -> dict[str, Any]:
        """The protocol part of a trial's RunConfig.tuning."""
        spec = {"protocol": self.protocol, "val_share": self.val_share, "reported_seeds": sorted(reported_seeds)}
        if self.protocol == "first-experiences":
            spec["experiences"] = self.experiences
        return spec

    def summary(self) -> str:
        """One line for leaderboards and suite files."""
        data = f"first {self.experiences} experience(s)" if self.protocol == "first-experiences" else "tuning stream"
        return (f"{self.budget} trials, {self.protocol} ({data}, validation {self.val_share:g}, seed {self.seed}), "
                f"objective {self.objective}")


def open_storage(url: str) -> Any:
    """Optuna's storage; SQLite waits for its lock instead of failing at once (workers report to it too), and its
    folder is made, as MLflow makes its store's (a new --tracking-uri folder puts optuna.db there)."""
    import optuna

    from nlbench.results.uri import local_store

    if (local := local_store(url)) is not None and local[1]:
        local[0].parent.mkdir(parents=True, exist_ok=True)
    kwargs = {"engine_kwargs": {"connect_args": {"timeout": 60}}} if url.startswith("sqlite") else {}
    return optuna.storages.RDBStorage(url, **kwargs)


def default_storage(tracking_uri: str) -> str:
    """Beside an embedded MLflow store (sqlite:///DIR/mlflow.db -> sqlite:///DIR/optuna.db), else ./optuna.db."""
    if tracking_uri.startswith("sqlite:///"):
        return f"sqlite:///{Path(tracking_uri.removeprefix('sqlite:///')).with_name('optuna.db')}"
    return "sqlite:///optuna.db"


def make_pruner(name: str) -> Any:
    import optuna

    if name == "median":  # the same for every method: stop a trial whose running ACC is below the median
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0)
    return optuna.pruners.NopPruner()


def make_sampler(seed: int, budget: int, n_trials: int) -> Any:
    """TPE with the same seed for every study; offset by the trials a study already has, so a resumed study does
    not replay its first random draws."""
    import optuna

    return optuna.samplers.TPESampler(seed=seed + n_trials, n_startup_trials=max(1, min(10, budget // 2)))


def execute_trial(config: RunConfig, storage: str, pruner: str, objective: str) -> RunResult:
    """The run unit for a trial: after each experience but the last, the running validation ACC (mean over the
    experiences seen) is reported to the study, which may prune the trial (it then ends as a FAILED result whose
    error starts with 'TrialPruned')."""
    if pruner == "none" or objective != "acc":
        return execute_run(config)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=config.tuning["study"], storage=open_storage(storage),
                              pruner=make_pruner(pruner))
    trial = optuna.trial.Trial(study, config.tuning["trial_id"])

    def report(i: int, row: np.ndarray) -> None:
        value = float(np.nanmean(row[: i + 1]))
        trial.report(value, i)
        if i + 1 < len(row) and trial.should_prune():  # never after the last experience: the trial is done
            raise optuna.TrialPruned(f"validation ACC {value:.3f} after experience {i} is below the median")

    return execute_run(config, on_experience=report)


@dataclass
class Pair:
    """One (scenario, method) of the suite and its study."""

    scenario: str
    method: str
    base: RunConfig  # the suite's config at the tuning seed: hyperparameters before tuning
    space: dict[str, Space]
    study_name: str
    study: Any = None
    best: dict[str, Any] = field(default_factory=dict)
    best_value: float = math.nan
    counted: int = 0  # trials that count toward the budget, at the end
    note: str = ""


@dataclass
class TuneOutcome:
    pairs: list[Pair]
    parent_run_id: str
    experiment: str
    wall_time_s: float
    trials_run: int = 0
    resumed: int = 0  # trials a dead process left: told from MLflow, or queued again
    failed: list[RunResult] = field(default_factory=list)


def study_name(suite: Suite, base: RunConfig, space: dict[str, Space], options: TuneOptions) -> str:
    """Readable, and new whenever what is searched or how it is scored changes (a changed suite never mixes into
    an old study; a bigger --budget continues the same one)."""
    what = {"config": base.key, "space": {k: str(v) for k, v in sorted(space.items())},
            "protocol": options.spec(suite.seeds), "objective": options.objective, "pruner": options.pruner,
            "seed": options.seed}
    digest = hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:10]
    return f"{suite.name}/{base.scenario}/{base.method}/{digest}"


def pairs_of(suite: Suite, options: TuneOptions, only: tuple[str, ...] = ()) -> list[Pair]:
    configs = [c for c in suite.run_configs(only) if c.seed == suite.seeds[0]]
    pairs = []
    for config in configs:
        base = replace(config, seed=options.seed)
        space = suite.spaces(config.method)
        pairs.append(Pair(config.scenario, config.method, base, space, study_name(suite, base, space, options)))
    return pairs


class Tuner:
    def __init__(self, suite: Suite, options: TuneOptions, tracking_uri: str, storage: str, backend: Any,
                 only: tuple[str, ...] = ()):
        options.check(suite)
        self.suite, self.options, self.tracking_uri, self.storage_url = suite, options, tracking_uri, storage
        self.backend = backend
        self.pairs = pairs_of(suite, options, only)
        self.in_flight: dict[str, tuple[Pair, Any]] = {}

    @property
    def experiment(self) -> str:
        return f"{self.suite.experiment_name}-tuning"

    def run(self, progress: bool = True) -> TuneOutcome:
        import optuna
        from tqdm.auto import tqdm

        from nlbench.results.tracking import Tracker, environment_tags

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        t0 = time.perf_counter()
        storage = open_storage(self.storage_url)
        tracker = Tracker(self.tracking_uri, self.experiment)
        tracker.reap()
        env_tags = environment_tags()
        recorded = self._recorded_trials(tracker)
        outcome = TuneOutcome(self.pairs, "", self.experiment, 0.0)
        todo = 0
        for pair in self.pairs:
            pair.study = self._open_study(pair, storage)
            outcome.resumed += self._resume(pair, recorded)
            todo += self._remaining(pair) if pair.space else 0
        outcome.parent_run_id = tracker.start(f"tune:{self.suite.name}", self._parent_tags(env_tags),
                                              self._parent_params())
        bar = tqdm(total=todo, unit="trial", disable=not progress, file=sys.stderr, dynamic_ncols=True)
        execute = partial(execute_trial, storage=self.storage_url, pruner=self.options.pruner,
                          objective=self.options.objective)
        try:
            for result in self.backend.run(self._trials(), execute):
                pair, trial = self.in_flight.pop(result.config.key)
                self._finish(tracker, outcome.parent_run_id, env_tags, pair, trial, result)
                outcome.trials_run += 1
                if not result.ok and not _pruned(result):
                    outcome.failed.append(result)
                    bar.write(f"FAILED {pair.scenario}/{pair.method} trial {trial.number}: {result.error}",
                              file=sys.stderr)
                bar.set_description(f"{pair.scenario}/{pair.method}")
                bar.update(1)
        except BaseException:
            tracker.finish_quietly(outcome.parent_run_id, "KILLED")
            raise
        finally:
            bar.close()
        for pair in self.pairs:
            self._choose(pair)
        self._log_choices(tracker, outcome.parent_run_id)
        tracker.finish(outcome.parent_run_id, "FINISHED")
        outcome.wall_time_s = time.perf_counter() - t0
        return outcome

    # --- studies ---
    def _open_study(self, pair: Pair, storage: Any) -> Any:
        import optuna

        direction = "maximize" if HIGHER_IS_BETTER[self.options.objective] else "minimize"
        study = optuna.create_study(study_name=pair.study_name, storage=storage, direction=direction,
                                    load_if_exists=True, pruner=make_pruner(self.options.pruner))
        study.sampler = make_sampler(self.options.seed, self.options.budget, len(study.trials))
        if not study.user_attrs:
            for key, value in {"suite": self.suite.name, "scenario": pair.scenario, "method": pair.method,
                               "protocol": self.options.summary()}.items():
                study.set_user_attr(key, value)
        return study

    def _recorded_trials(self, tracker: Any) -> dict[tuple[str, int], tuple[str, float]]:
        """{(study, number): (state, value)} of the trials MLflow holds: what a killed tuner recorded but may not
        have told its study."""
        from nlbench.results import schema

        out = {}
        for run in tracker.runs(f"tags.{schema.KIND} = '{schema.TRIAL_KIND}'"):
            tags = run.data.tags
            if schema.TUNING_STUDY in tags and schema.TUNING_STATE in tags:
                value = run.data.metrics.get(f"final/{self.options.objective}", math.nan)
                out[(tags[schema.TUNING_STUDY], int(tags[schema.TUNING_TRIAL]))] = (tags[schema.TUNING_STATE], value)
        return out

    def _resume(self, pair: Pair, recorded: dict[tuple[str, int], tuple[str, float]]) -> int:
        """Settle the RUNNING trials of dead processes; returns how many."""
        from optuna.trial import TrialState

        from nlbench.run.resources import process_alive

        settled = 0
        for trial in pair.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            owner = trial.user_attrs.get(PROCESS_ATTR, "")  # none: killed between asking and tagging it
            if owner and process_alive(owner) is not False:
                continue  # another live tuner's trial (or another host's): left alone
            settled += 1
            state, value = recorded.get((pair.study_name, trial.number), ("", math.nan))
            if state:  # it ran and was recorded; only the tell was lost
                self._tell(pair.study, trial.number, state, value)
                continue
            pair.study._storage.set_trial_user_attr(trial._trial_id, INTERRUPTED_ATTR, True)
            pair.study.tell(trial.number, state=TrialState.FAIL)
            pair.study.enqueue_trial(trial.params, user_attrs={"rerun_of": trial.number})
        return settled

    def _counted(self, pair: Pair) -> list[Any]:
        from optuna.trial import TrialState

        return [t for t in pair.study.get_trials(deepcopy=False)
                if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
                or (t.state == TrialState.FAIL and not t.user_attrs.get(INTERRUPTED_ATTR))]

    def _remaining(self, pair: Pair) -> int:
        from optuna.trial import TrialState

        running = len(pair.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
        return max(0, self.options.budget - len(self._counted(pair)) - running)

    def _trials(self) -> Iterator[RunConfig | None]:
        """Trial configs, asked as workers free up. A study's next trial is asked only once its earlier ones are
        told, so its sampler and pruner see the same history on any backend and at any speed: a tune on 2 workers
        chooses what a serial one chooses. Studies take turns, which keeps the workers busy while there are at
        least as many studies left as workers; None says every study left waits on its trial in flight."""
        from nlbench.run.resources import process_identity

        identity = process_identity()
        spec = self.options.spec(self.suite.seeds)
        left = {}
        for pair in self.pairs:
            if pair.space:
                left[pair.study_name] = self._remaining(pair)
            else:
                pair.note = "nothing to tune (no search space)"
        while any(left.values()):
            waiting = {pair.study_name for pair, _ in self.in_flight.values()}
            free = [p for p in self.pairs if left.get(p.study_name) and p.study_name not in waiting]
            if not free:
                yield None
            for pair in free:
                left[pair.study_name] -= 1
                yield self._ask(pair, identity, spec)

    def _ask(self, pair: Pair, identity: str, spec: dict[str, Any]) -> RunConfig:
        distributions = {key: space.distribution() for key, space in pair.space.items()}
        trial = pair.study.ask(distributions)
        trial.set_user_attr(PROCESS_ATTR, identity)
        values = {key: pair.space[key].decode(v) for key, v in trial.params.items()}
        tuning = {**spec, "study": pair.study_name, "trial": trial.number, "trial_id": trial._trial_id}
        config = replace(pair.base, hparams={**pair.base.hparams, **values}, tuning=tuning)
        self.in_flight[config.key] = (pair, trial)
        return config

    def _finish(self, tracker: Any, parent_id: str, env_tags: dict[str, str], pair: Pair, trial: Any,
                result: RunResult) -> None:
        """Record the trial in MLflow first, then tell the study (see the module docstring)."""
        from nlbench.results import schema

        value = result.summary.get(self.options.objective, math.nan) if result.ok else math.nan
        state = "complete" if result.ok and math.isfinite(value) else "pruned" if _pruned(result) else "fail"
        if result.ok and state == "fail":
            result = replace(result, status="FAILED", error=f"the objective {self.options.objective} is undefined "
                                                            "(NaN) for this trial")
        if state == "pruned":
            result = replace(result, status="KILLED")
        tracker.record(parent_id, result, {**env_tags, schema.TUNING_STATE: state})
        self._tell(pair.study, trial.number, state, value)

    @staticmethod
    def _tell(study: Any, number: int, state: str, value: float) -> None:
        from optuna.trial import TrialState

        if state == "complete":
            study.tell(number, value)
        else:
            study.tell(number, state=TrialState.PRUNED if state == "pruned" else TrialState.FAIL)

    def _choose(self, pair: Pair) -> None:
        from optuna.trial import TrialState

        pair.counted = len(self._counted(pair))
        complete = pair.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if not pair.space or not complete:
            pair.note = pair.note or "no trial completed: defaults kept"
            return
        best = pair.study.best_trial
        pair.best = {key: pair.space[key].decode(v) for key, v in best.params.items()}
        pair.best_value = float(best.value)

    # --- the parent run ---
    def _parent_tags(self, env_tags: dict[str, str]) -> dict[str, str]:
        from nlbench.results import schema

        return {"suite": self.suite.name, schema.KIND: schema.STUDY_KIND, **env_tags}

    def _parent_params(self) -> dict[str, Any]:
        o = self.options
        return {"suite_file": self.suite.path, "budget": o.budget, "protocol": o.protocol,
                "experiences": o.experiences, "val_share": o.val_share, "tuning_seed": o.seed,
                "objective": o.objective, "pruner": o.pruner, "reported_seeds": list(self.suite.seeds),
                "storage": self.storage_url.split("///")[-1].rsplit("/", 1)[-1], "backend": self.backend.describe()}

    def _log_choices(self, tracker: Any, parent_id: str) -> None:
        """The chosen values as params (best.<scenario>.<method>.<key>) and the best validation scores as metrics."""
        from nlbench.results.schema import sanitize_key

        params = {f"best.{p.scenario}.{p.method}.{k}": json.dumps(v) for p in self.pairs for k, v in p.best.items()}
        metrics = [(sanitize_key(f"best/{p.scenario}/{p.method}"), p.best_value, 0) for p in self.pairs
                   if math.isfinite(p.best_value)]
        tracker.log(parent_id, params, metrics)


def _pruned(result: RunResult) -> bool:
    return (result.error or "").startswith("TrialPruned")
