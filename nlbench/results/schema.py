"""The run record: every tag, param, metric and artifact nlbench writes to MLflow, named here and nowhere else.

`record_of(result)` is the pure function from a run's result to what is written; `tracking.Tracker` writes it;
every reader (leaderboard, model table, `nlbench runs`, `show`, `compare`) finds things through these names.
docs/reference.md lists the record, generated from `RECORD`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nlbench.results.heatmap_svg import accuracy_heatmap_svg
from nlbench.run.metrics import METRICS

if TYPE_CHECKING:  # the record's readers (`nlbench runs`, reports) never import torch through it
    from nlbench.run.execute import RunResult

# --- tags ---
KIND = "kind"  # SUITE_KIND on a suite's parent run, RUN_KIND on each (scenario, method, seed) child run
SUITE_KIND, RUN_KIND = "suite", "run"
STUDY_KIND, TRIAL_KIND = "study", "trial"  # `nlbench tune`: its parent run, and each trial (never a leaderboard run)
TUNING_STUDY, TUNING_TRIAL, TUNING_STATE = "tuning_study", "tuning_trial", "tuning_state"  # a trial's Optuna study,
# number, and how it ended (complete, pruned, fail)
TUNED = "tuned"  # a run of a tuned suite: how its hyperparameters were chosen
PARENT = "mlflow.parentRunId"
RUN_TAGS = ("suite", "scenario", "scenario_name", "setting", "method", "method_name", "family", "seed", "device")
DATA_SOURCE = "data_source"  # where the data came from (FINISHED runs)
ENV_TAGS = ("nlbench_version", "torch_version", "avalanche_version", "machine", "git_commit")
ERROR = "error"  # first line of a FAILED run's error
TRACKING_ERROR = "tracking_error"  # the store failed while this run was being recorded
RUN_KEY = "run_key"  # RunConfig.key: runs with equal keys are the same experiment (resume skips FINISHED ones)
PROCESS = "process"  # host:pid:start of the process writing the run (a RUNNING run whose writer is gone is KILLED)
KILLED_BY = "killed_by"  # why a later `nlbench run` marked this RUNNING run KILLED

# --- params ---
SEED = "seed"
SCENARIO = "scenario"  # scenario.<option>: every option of the scenario, defaults included
SETTINGS = "settings"  # settings.<device|kernel_backend|threads|data_dir>: how the run ran
# Every other param is a resolved hyperparameter under its own name (optimizer_options.<knob> flattened), or a
# value the method chose itself (grid.<param>).

# --- metrics ---
TRAIN_TIME, EVAL_TIME = "time/train_s", "time/eval_s"
PEAK_MEM = "mem/peak_mb"  # peak resident memory of the process during the run


def mem_key(name: str) -> str:
    """The metric of one entry of RunResult.memory (MiB)."""
    return f"mem/{name}_mb"


STATE_MEM = mem_key("state")  # the method's own arrays: model, optimizer state, method state (nlbench.run.footprint)
MEM_PARTS = ("model", "optimizer", "method")  # the parts of mem/state_mb
RSS_GROWTH = mem_key("rss_increase")  # peak resident memory during the run minus resident memory at its start
CUDA_PEAK = mem_key("cuda_peak")  # peak CUDA memory allocated during the run (runs on a GPU only)
N_PARAMS = "model/trainable_params"
CHANCE = "scenario/chance_acc"  # uniform guessing, or the majority-class rate of binary scenarios


def matrix_key(matrix: str, j: int) -> str:
    """Column j of a matrix; its value at step i is the entry after training on experience i."""
    return f"{matrix}/exp{j}"


def init_key(matrix: str, j: int) -> str:
    """Entry j of b, the accuracy before any training (step 0)."""
    return f"init/{matrix}/exp{j}"


def final_key(metric: str) -> str:
    return f"final/{metric}"


SUMMARY_PREFIXES = ("final/", "time/", "mem/", "model/", "scenario/")  # one value per run, not a curve


@dataclass(frozen=True)
class Column:
    """A per-run number a table can show and rank by."""

    key: str
    label: str
    higher_is_better: bool


# Every final metric, then the costs: what leaderboards show and `--rank-by` / `--sort` accept.
COLUMNS: tuple[Column, ...] = (*(Column(final_key(m.name), m.name, m.higher_is_better) for m in METRICS),
                               Column(TRAIN_TIME, "train_s", False), Column(STATE_MEM, "state_mb", False),
                               Column(PEAK_MEM, "peak_mb", False))
RANKABLE = tuple(c.label for c in COLUMNS)  # what --rank-by and --sort accept

# --- artifacts ---
ACC_CSV = "acc_matrix.csv"
HEATMAP = "acc_matrix.svg"
RUN_CONFIG = "run_config.json"  # the RunConfig: enough to rerun the run
TEST_SCORES = "test_scores.json"  # binary scenarios: per test set, labels and positive-class scores at the end
ERROR_TXT = "error.txt"  # a FAILED run's traceback
OPTIMIZER_STATE = "optimizer_state"  # optimizer_state/exp{i}.pt with save_optimizer_state = true

# The record as docs/reference.md lists it: (kind, key, what it holds).
RECORD: tuple[tuple[str, str, str], ...] = (
    ("tag", f"{KIND}", f"'{SUITE_KIND}' on the parent run of an `nlbench run`, '{RUN_KIND}' on each child run"),
    *(("tag", tag, "the run's " + tag.replace("_", " ")) for tag in RUN_TAGS),
    ("tag", DATA_SOURCE, "where the data came from"),
    *(("tag", tag, "the environment the run ran in") for tag in ENV_TAGS),
    ("tag", ERROR, "first line of a FAILED run's error"),
    ("tag", TRACKING_ERROR, "the store failed while this run was recorded"),
    ("tag", RUN_KEY, "hash of the resolved run config: `nlbench run` skips a key that already FINISHED"),
    ("tag", PROCESS, "host:pid:start of the process that wrote the run"),
    ("tag", KILLED_BY, "why a later `nlbench run` marked this run KILLED (its process was gone)"),
    ("tag", TUNED, "a run of a tuned suite: how its hyperparameters were chosen (protocol, budget)"),
    ("tag", f"{KIND} = {TRIAL_KIND}", f"a tuning trial of `nlbench tune` (under a '{STUDY_KIND}' parent run, in the "
                                      "experiment <suite experiment>-tuning; never counted by a leaderboard)"),
    ("tag", TUNING_STUDY, "a trial's Optuna study: suite/scenario/method/digest of what is searched"),
    ("tag", TUNING_TRIAL, "a trial's number in its study"),
    ("tag", TUNING_STATE, "how a trial ended: complete, pruned or fail"),
    ("param", SEED, "the run's seed"),
    ("param", "<hyperparameter>", "every resolved hyperparameter of the method (optimizer_options.* flattened)"),
    ("param", f"{SCENARIO}.<option>", "every option of the scenario, defaults included"),
    ("param", f"{SETTINGS}.<setting>", "device, kernel_backend, threads, data_dir"),
    ("param", "grid.<param>", "a value the method chose itself (sklearn grid search)"),
    ("metric", matrix_key("acc", "{j}"), "R[i, j] at step i: accuracy on experience j after training on i"),
    ("metric", init_key("acc", "{j}"), "b[j]: accuracy on experience j before any training"),
    ("metric", "bacc/exp{j}, auc/exp{j}", "binary scenarios: balanced accuracy and ROC AUC, like acc"),
    *(("metric", final_key(m.name), m.definition) for m in METRICS),
    ("metric", TRAIN_TIME, "seconds of training (evaluation excluded)"),
    ("metric", EVAL_TIME, "seconds of the protocol's evaluations"),
    ("metric", PEAK_MEM, "peak resident memory of the process during the run, MiB (imports included: about 1 GB "
                         "whatever the method)"),
    ("metric", STATE_MEM, "the method's own memory, MiB: the tensors and arrays of its model, optimizer state and "
                          "method state (replay buffer, EWC's importances, ...), the stream's data excluded"),
    *(("metric", mem_key(part), f"the {part} part of {STATE_MEM}") for part in MEM_PARTS),
    ("metric", RSS_GROWTH, "peak resident memory during the run minus that at its start, MiB"),
    ("metric", CUDA_PEAK, "peak CUDA memory allocated during the run, MiB (GPU runs only)"),
    ("metric", N_PARAMS, "numbers the method learns"),
    ("metric", CHANCE, "accuracy of a constant guess: uniform, or the majority class of binary scenarios"),
    ("metric", "<Avalanche curve>", "Avalanche's per-epoch training loss and accuracy, at their own steps"),
    ("artifact", ACC_CSV, "b and R as a table"),
    ("artifact", HEATMAP, "b and R as a heatmap (SVG; the MLflow UI shows it)"),
    ("artifact", RUN_CONFIG, "the resolved run config: enough to rerun the run"),
    ("artifact", TEST_SCORES, "binary scenarios: labels and positive-class scores of each test set at the end"),
    ("artifact", f"{OPTIMIZER_STATE}/exp{{i}}.pt", "the optimizer's state after experience i "
                                                   "(save_optimizer_state = true)"),
    ("artifact", ERROR_TXT, "a FAILED run's traceback"),
)

_BAD_KEY = re.compile(r"[^A-Za-z0-9_\-. :/]")


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


@dataclass
class RunRecord:
    """What is written for one child run: the tracker's whole job is to put this in the store."""

    name: str
    status: str
    started_ms: int
    ended_ms: int
    tags: dict[str, str]
    params: dict[str, str]
    metrics: list[tuple[str, float, int]]  # (key, value, step); non-finite values are left out
    artifacts: dict[str, bytes]  # relative path -> content


def matrix_metrics(name: str, M: Sequence[Sequence[float]], b: Sequence[float] | None = None
                   ) -> list[tuple[str, float, int]]:
    """Row i of M as {name}/exp{j} at step i; b as init/{name}/exp{j} at step 0."""
    points = [(init_key(name, j), v, 0) for j, v in enumerate(b or ())]
    return points + [(matrix_key(name, j), v, i) for i, row in enumerate(M) for j, v in enumerate(row)]


def matrix_csv(R: Sequence[Sequence[float]], b: Sequence[float]) -> str:
    header = "after_exp," + ",".join(f"exp{j}" for j in range(len(b)))
    rows = ["init," + ",".join(f"{v:.6f}" for v in b)]
    rows += [f"{i}," + ",".join(f"{v:.6f}" for v in row) for i, row in enumerate(R)]
    return "\n".join([header, *rows]) + "\n"


def record_of(result: RunResult, parent_id: str, env_tags: Mapping[str, str]) -> RunRecord:
    """The record of one run (pure: no store is touched)."""
    config = result.config
    tags = {KIND: RUN_KIND, PARENT: parent_id, "suite": config.suite, "scenario": config.scenario,
            "scenario_name": config.scenario_name, "setting": result.setting, "method": config.method,
            "method_name": config.method_name, "family": result.family, "seed": str(config.seed),
            "device": config.device, RUN_KEY: config.key, **env_tags}
    if config.tuning:
        tags.update({KIND: TRIAL_KIND, TUNING_STUDY: config.tuning["study"], TUNING_TRIAL: str(config.tuning["trial"])})
    params = flatten({SEED: config.seed, **config.hparams, SCENARIO: config.scenario_options,
                      SETTINGS: config.settings, **result.learned_params,
                      **({"tuning": {k: v for k, v in config.tuning.items() if k not in ("study", "trial", "trial_id")}}
                         if config.tuning else {})})
    metrics = [(sanitize_key(name), value, step) for name, value, step in result.curves]
    artifacts = {RUN_CONFIG: json.dumps(config.to_dict(), indent=2).encode(), **result.files}
    if result.ok:
        tags[DATA_SOURCE] = result.data_source
        last = len(result.R) - 1
        metrics += matrix_metrics("acc", result.R, result.b)
        for name, M in result.extra.items():
            metrics += matrix_metrics(name, M)
        metrics += [(final_key(k), v, last) for k, v in result.summary.items()]
        metrics += [(TRAIN_TIME, result.train_time_s, 0), (EVAL_TIME, result.eval_time_s, 0),
                    (PEAK_MEM, result.peak_mem_mb, 0), (N_PARAMS, result.n_params, 0), (CHANCE, result.chance_acc, 0)]
        metrics += [(mem_key(name), value, 0) for name, value in result.memory.items()]
        artifacts[ACC_CSV] = matrix_csv(result.R, result.b).encode()
        artifacts[HEATMAP] = accuracy_heatmap_svg(result.R, result.b, config.run_name).encode()
        if result.final_scores:
            artifacts[TEST_SCORES] = json.dumps(result.final_scores).encode()
    else:
        tags[ERROR] = result.error or ""
        artifacts[ERROR_TXT] = (result.traceback or "").encode()
    metrics = [(k, float(v), int(s)) for k, v, s in metrics if isinstance(v, int | float) and math.isfinite(v)]
    return RunRecord(config.run_name, result.status, result.started_ms, result.ended_ms, tags, params, metrics,
                     artifacts)


# --- reading back: columns of mlflow.search_runs frames ---
def tag_column(tag: str) -> str:
    return f"tags.{tag}"


def metric_column(key: str) -> str:
    return f"metrics.{key}"

