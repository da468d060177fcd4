"""`nlbench tune`: search spaces come from the declarations, tuning never reads a reported test row, every method gets
the same budget, trials are recorded apart from leaderboard runs, the tuned suite runs and says it was tuned, and a
tune killed with SIGKILL finishes on the next start with no trial lost or run twice. Real Optuna studies in SQLite,
a real MLflow store and real processes; nothing mocked."""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch
from conftest import SHARED, require_shared
from mlflow.tracking import MlflowClient

from nlbench.cli import ExitCode, main
from nlbench.core.errors import UsageError
from nlbench.core.params import POSITIVE, Declared, Param
from nlbench.core.registry import SCENARIOS, get_method, method_names
from nlbench.core.spaces import Choice, Float, Int, check_space
from nlbench.data.duplicates import row_keys
from nlbench.data.scenario import Experience, Scenario
from nlbench.results import schema
from nlbench.results.store import runs_frame, search
from nlbench.run.backends import ProcessBackend
from nlbench.run.config import RunConfig
from nlbench.run.execute import execute_run
from nlbench.run.suite import load_suite, parse_suite
from nlbench.tune.protocols import tuning_data
from nlbench.tune.study import INTERRUPTED_ATTR, PROCESS_ATTR, TuneOptions, Tuner

REPORTED = (0, 1, 2)
TINY = ('scenarios = ["split-digits"]\nmethods = ["naive"]\nseeds = [1000]\n[train]\nepochs = 1\nhidden_sizes = [8]\n'
        "[scenario.split-digits]\nn_experiences = 2\n")
SPEC = {"protocol": "tuning-stream", "val_share": 0.2, "reported_seeds": list(REPORTED)}


# --- search spaces ---
def test_every_space_only_produces_values_its_parameter_accepts():
    tuned = {name for name in method_names() if get_method(name).spaces()}
    for name in tuned:
        params = get_method(name).params()
        for key, space in get_method(name).spaces().items():
            check_space(space, params[key].rule, f"{name}.{key}")
    # every gradient method tunes its learning rate; the regularisers their strength; sklearn its grid
    assert {"naive", "ewc", "si", "lwf", "replay", "agem", "gem", "cms", "hope", "titans", "logreg", "knn"} <= tuned
    assert {"ewc_lambda", "lr"} <= set(get_method("ewc").spaces()) and "lwf_alpha" in get_method("lwf").spaces()
    assert get_method("logreg").spaces()["C"] == Choice((0.01, 0.1, 1.0, 10.0))  # the GRID


def test_a_space_a_rule_rejects_fails_at_declaration():
    with pytest.raises(UsageError, match="can produce -1.0, which the parameter rejects"):
        class Bad(Declared):  # noqa: F841
            PARAMS = {"x": Param(1.0, POSITIVE, "doc", Float(-1.0, 1.0))}


def test_spaces_decode_what_optuna_samples():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    spaces = {"f": Float(1e-3, 1.0, log=True), "i": Int(1, 9), "c": Choice(([1, 4, 16], [1, 2, 4]))}
    for _ in range(20):
        trial = study.ask({k: s.distribution() for k, s in spaces.items()})
        values = {k: spaces[k].decode(v) for k, v in trial.params.items()}
        assert 1e-3 <= values["f"] <= 1.0 and isinstance(values["i"], int) and values["c"] in ([1, 4, 16], [1, 2, 4])
        study.tell(trial, 0.0)


def test_a_suite_replaces_or_drops_a_declared_space():
    text = ('scenarios = ["split-digits"]\nmethods = ["ewc"]\n[tune.space.ewc]\newc_lambda = {low = 1, high = 100}\n'
            "lr = []\n")
    suite = parse_suite(text, "s.toml", "s")
    assert suite.spaces("ewc") == {"ewc_lambda": Float(1, 100)}  # a float parameter samples floats


# --- tuning data never holds a reported test row ---
def reported_test_rows(scenario: Scenario, first: int | None = None) -> set[bytes]:
    keys = set()
    for seed in REPORTED:
        for _, test in scenario.build(seed).raw_rows()[:first]:
            keys.update(row_keys(test))
    return keys


def tuning_rows(data) -> list[bytes]:
    return [k for train, val in data.raw_rows() for k in (*row_keys(train), *row_keys(val))]


@pytest.mark.parametrize("protocol", ["first-experiences", "tuning-stream"])
@pytest.mark.parametrize("name", ["split-digits", "heart-sites"])
def test_tuning_data_holds_no_row_of_a_reported_test_set(name, protocol):
    data_dir = ""
    if name == "heart-sites":
        require_shared()
        data_dir = str(SHARED / "data" / "heart")
    scenario = SCENARIOS.get(name)(data_dir=data_dir)
    data = tuning_data(scenario, 1000, {**SPEC, "protocol": protocol, "experiences": 2})
    assert data.info.n_experiences == (2 if protocol == "first-experiences" else len(scenario.build(0).experiences))
    rows = tuning_rows(data)
    assert rows and not set(rows) & reported_test_rows(scenario)
    # the rows are there to be used: each experience has training and validation rows of every class it holds
    for e in data.experiences:
        assert len(e.y_test) > 0 and set(e.y_test.tolist()) == set(e.y_train.tolist())


def test_permuted_tuning_streams_never_show_a_reported_test_image_under_any_permutation():
    scenario = SCENARIOS.get("permuted-digits")(n_experiences=3)
    data = tuning_data(scenario, 1000, SPEC)
    # experience 0 is unpermuted in every stream: its rows are the images themselves
    train0, val0 = data.raw_rows()[0]
    assert not {*row_keys(train0), *row_keys(val0)} & reported_test_rows(scenario, first=1)
    # and the other experiences permute those same images
    x0 = data.experiences[0].x_train.flatten(1).sort(dim=1).values
    assert torch.equal(x0, data.experiences[2].x_train.flatten(1).sort(dim=1).values)


def test_an_ordinary_stream_is_unchanged_by_the_holdout_machinery():
    scenario = SCENARIOS.get("split-digits")()
    a, b = scenario.build(3), scenario.build(3)
    assert all(torch.equal(x.x_test, y.x_test) for x, y in zip(a.experiences, b.experiences, strict=True))
    tuned = tuning_data(scenario, 3, {**SPEC, "reported_seeds": [0]})
    assert not torch.equal(tuned.experiences[0].x_test, a.experiences[0].x_test)


def test_first_experiences_cuts_the_stream_and_its_evaluation_views():
    require_shared()
    scenario = SCENARIOS.get("heart-sites")(data_dir=str(SHARED / "data" / "heart"))
    data = tuning_data(scenario, 1000, {**SPEC, "protocol": "first-experiences", "experiences": 1})
    assert data.info.n_experiences == 1 and len(data.eval_views) == 2 and all(len(v) == 1 for v in data.eval_views)
    assert data.info.classes_per_experience == ((0, 1),)


def test_a_scenario_that_splits_its_own_way_cannot_be_tuned():
    class OwnSplit(Scenario):
        NAME = "own-split"

        def make_experiences(self, seed: int) -> list[Experience]:
            x, y = torch.zeros(10, 2), torch.tensor([0, 1] * 5)
            return [Experience(x, y, x, y, classes=(0, 1))]

    with pytest.raises(UsageError, match="does not split its data through nlbench.data.splits"):
        tuning_data(OwnSplit(), 1000, SPEC)


def test_a_trial_config_trains_on_tuning_data_and_its_key_differs_from_the_run():
    (base,) = parse_suite(TINY, "t.toml", "t").run_configs()
    trial = RunConfig(**{**base.to_dict(), "tuning": {**SPEC, "study": "s", "trial": 0, "trial_id": 1}})
    assert base.key != trial.key and RunConfig(**base.to_dict()).key == base.key
    a, b = execute_run(base), execute_run(trial)
    assert a.ok and b.ok and a.R != b.R


# --- the pool reads trials as workers free up ---
def test_the_process_pool_asks_for_a_config_only_when_a_worker_is_free(tmp_path):
    suite = parse_suite(TINY.replace("seeds = [1000]", "seeds = [0, 1, 2]"), "t.toml", "t")
    asked = []

    def lazily():
        for config in suite.run_configs():
            asked.append(config.seed)
            yield config

    seen = []
    for result in ProcessBackend(1, 1).run(lazily(), execute_run):
        seen.append(len(asked))
        assert result.ok
    assert seen == [1, 2, 3]  # one config in the worker at a time, never read ahead


# --- the command ---
SMOKE = ["--only", "split-digits", "--only", "naive,ewc", "--experiences", "2", "--no-progress"]


def tune(tmp_path: Path, *extra: str, budget: int = 3) -> int:
    return main(["tune", "smoke", "--budget", str(budget), *SMOKE, "--tracking-uri", f"sqlite:///{tmp_path}/m.db",
                 "--out", str(tmp_path / "tuned"), *extra])


def studies(tmp_path: Path) -> dict[str, optuna.Study]:
    storage = f"sqlite:///{tmp_path}/optuna.db"
    return {s.study_name: optuna.load_study(study_name=s.study_name, storage=storage)
            for s in optuna.get_all_study_summaries(storage)}


def test_tune_gives_every_method_the_same_budget_and_writes_a_suite_that_runs_tuned(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path}/m.db"
    assert tune(tmp_path) == ExitCode.OK
    out = capsys.readouterr().out
    assert "6 trials run" in out
    found = studies(tmp_path)
    assert sorted(s.split("/")[2] for s in found) == ["ewc", "naive"]
    assert all(len(s.trials) == 3 for s in found.values())
    # trials are MLflow trial runs in their own experiment: no leaderboard ever reads them
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("nlbench-smoke-tuning")
    trials = client.search_runs([exp.experiment_id], "tags.kind = 'trial'")
    assert len(trials) == 6 and {t.data.tags[schema.TUNING_STATE] for t in trials} <= {"complete", "pruned", "fail"}
    assert runs_frame(search(uri, "nlbench-smoke-tuning")).empty
    parent = client.search_runs([exp.experiment_id], "tags.kind = 'study'")[0]
    assert parent.info.status == "FINISHED" and "best.split-digits.ewc.ewc_lambda" in parent.data.params
    # a ready suite file: the chosen values per scenario, how they were chosen, the same reported seeds
    tuned = load_suite(str(tmp_path / "tuned" / "smoke.toml"))
    assert tuned.name == "smoke-tuned" and tuned.seeds == (0,)
    chosen = tuned.scenario_parts("split-digits")[2]["ewc"]
    assert set(chosen) == {"lr", "ewc_lambda"} and 3e-3 <= chosen["lr"] <= 0.3
    assert "3 trials, first-experiences" in tuned.tuned_note("split-digits", "ewc")
    assert str(tmp_path) not in (tmp_path / "tuned" / "smoke.toml").read_text()
    # the same command again: the budget is spent, nothing runs; a bigger budget continues the same studies
    assert tune(tmp_path) == ExitCode.OK and "0 trials run" in capsys.readouterr().out
    assert tune(tmp_path, budget=4) == ExitCode.OK and "2 trials run" in capsys.readouterr().out
    assert all(len(s.trials) == 4 for s in studies(tmp_path).values())
    # the tuned suite's runs say they were tuned, and so does its leaderboard
    path = str(tmp_path / "tuned" / "smoke.toml")
    assert main(["run", path, "--only", "split-digits", "--tracking-uri", uri, "--no-progress"]) in (0, 1)
    frame = runs_frame(search(uri, "nlbench-smoke-tuned")).set_index("method")
    assert frame.loc["naive", "tuned"].startswith("4 trials, first-experiences") and frame.loc["replay", "tuned"] == ""
    assert main(["leaderboard", "--suite", "smoke-tuned", "--tracking-uri", uri, "--out", str(tmp_path / "lb")]) == 0
    board = (tmp_path / "lb" / "LEADERBOARD.md").read_text()
    assert "Tuned (4 trials, first-experiences (first 2 experience(s), validation 0.2, seed 1000), objective acc): " \
           "ewc, naive." in board
    assert "| tuned |" in board and "| default |" in board  # replay kept its defaults


def test_a_trial_recorded_but_never_told_is_told_from_mlflow_not_run_again(tmp_path):
    uri, storage = f"sqlite:///{tmp_path}/m.db", f"sqlite:///{tmp_path}/optuna.db"
    suite = load_suite("smoke")
    options = TuneOptions(budget=2, experiences=2, pruner="none")
    from nlbench.run.backends import SerialBackend

    class Crash(Exception):
        pass

    def tell_once_then_die(*args):  # the process dies between recording a trial and telling its study
        raise Crash

    tuner = Tuner(suite, options, uri, storage, SerialBackend(), ("split-digits", "naive"))
    tuner._tell = tell_once_then_die
    with pytest.raises(Crash):
        tuner.run(progress=False)
    (study,) = studies(tmp_path).values()
    (trial,) = study.trials
    assert trial.state == optuna.trial.TrialState.RUNNING
    study._storage.set_trial_user_attr(trial._trial_id, PROCESS_ATTR, f"{socket.gethostname()}:999999:1")  # gone
    outcome = Tuner(suite, options, uri, storage, SerialBackend(), ("split-digits", "naive")).run(progress=False)
    assert outcome.resumed == 1 and outcome.trials_run == 1  # told from MLflow; only the second trial ran
    (study,) = studies(tmp_path).values()
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
    recorded = MlflowClient(uri).search_runs(
        [MlflowClient(uri).get_experiment_by_name("nlbench-smoke-tuning").experiment_id], "tags.kind = 'trial'")
    value = {int(r.data.tags[schema.TUNING_TRIAL]): r.data.metrics["final/acc"] for r in recorded}
    assert len(recorded) == 2 and study.trials[0].value == pytest.approx(value[0])


def test_kill_9_mid_tune_then_the_same_command_finishes_with_no_trial_lost_or_run_twice(tmp_path):
    budget = 6
    argv = [sys.executable, "-m", "nlbench", "tune", "smoke", "--budget", str(budget), "--only", "split-digits",
            "--only", "naive", "--set", "train.epochs=60", "--pruner", "none", "--backend", "serial", "--no-progress",
            "--tracking-uri", f"sqlite:///{tmp_path}/m.db", "--out", str(tmp_path / "tuned")]
    env = {k: v for k, v in os.environ.items() if k != "NLBENCH_BACKEND"}
    first = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    client, deadline = MlflowClient(f"sqlite:///{tmp_path}/m.db"), time.time() + 240
    while time.time() < deadline and first.poll() is None:  # kill it once two trials are recorded, mid-third
        exp = client.get_experiment_by_name("nlbench-smoke-tuning") if (tmp_path / "m.db").exists() else None
        if exp and len(client.search_runs([exp.experiment_id], "tags.kind = 'trial'")) >= 2:
            time.sleep(0.5)
            break
        time.sleep(0.2)
    assert first.poll() is None, first.communicate()
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    second = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr
    (study,) = studies(tmp_path).values()
    counted = [t for t in study.trials if not t.user_attrs.get(INTERRUPTED_ATTR)]
    assert len(counted) == budget and all(t.state.name == "COMPLETE" for t in counted)
    recorded = client.search_runs([client.get_experiment_by_name("nlbench-smoke-tuning").experiment_id],
                                  "tags.kind = 'trial'")
    numbers = Counter(int(r.data.tags[schema.TUNING_TRIAL]) for r in recorded)
    assert all(n == 1 for n in numbers.values())  # no trial recorded twice
    assert sorted(numbers) == sorted(t.number for t in counted)  # every counted trial is recorded
    for t in study.trials:  # an interrupted trial's parameters ran again, once (none: killed before it drew any)
        if t.user_attrs.get(INTERRUPTED_ATTR):
            reruns = [r for r in counted if r.user_attrs.get("rerun_of") == t.number]
            assert len(reruns) == 1 and (not t.params or reruns[0].params == t.params)
    assert (tmp_path / "tuned" / "smoke.toml").is_file()


def test_tuned_table_compares_default_and_tuned_runs_on_the_same_seeds(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path}/m.db"
    assert tune(tmp_path, budget=2) == ExitCode.OK
    only = ["--only", "split-digits", "--only", "naive", "--tracking-uri", uri, "--no-progress"]
    assert main(["run", "smoke", *only]) == 0
    assert main(["run", str(tmp_path / "tuned" / "smoke.toml"), *only]) == 0
    assert main(["tuned-table", "--suite", "smoke", "--tuned-suite", str(tmp_path / "tuned" / "smoke.toml"),
                 "--tracking-uri", uri, "--out", str(tmp_path / "cmp")]) == 0
    text = (tmp_path / "cmp" / "COMPARISON.md").read_text()
    assert "| split-digits | naive | 1 |" in text and "acc tuned-default" in text
    assert np.isfinite(float(text.split("| split-digits | naive | 1 |")[1].split("|")[0].split("±")[0]))


def test_a_trial_below_the_median_is_pruned_after_an_experience_never_after_the_last(tmp_path):
    from nlbench.tune.study import _pruned, execute_trial, make_pruner

    storage = f"sqlite:///{tmp_path}/optuna.db"
    study = optuna.create_study(study_name="s", storage=storage, direction="maximize", pruner=make_pruner("median"))
    dist = {"lr": optuna.distributions.FloatDistribution(1e-3, 1.0)}
    for value in (0.9, 0.95, 1.0, 0.97, 0.99):  # five finished trials that were near-perfect after experience 0
        study.add_trial(optuna.trial.create_trial(params={"lr": 0.1}, distributions=dist, value=value,
                                                  intermediate_values={0: value}))
    (two,) = parse_suite(TINY, "t.toml", "t").run_configs()
    one = RunConfig(**{**two.to_dict(), "scenario_options": {"n_experiences": 1}})
    outcomes = []
    for base in (two, one):
        trial = study.ask(dist)
        config = RunConfig(**{**base.to_dict(), "tuning": {**SPEC, "study": "s", "trial": trial.number,
                                                           "trial_id": trial._trial_id}})
        outcomes.append(execute_trial(config, storage, "median", "acc"))
    assert _pruned(outcomes[0]) and "after experience 0 is below the median" in outcomes[0].error
    assert outcomes[1].ok  # one experience: reported, but a finished trial is never pruned
    assert execute_trial(config, storage, "none", "acc").ok  # no pruner, no study needed


def test_a_tune_on_two_workers_chooses_what_a_serial_tune_chooses(tmp_path):
    """A study's next trial is asked only once its earlier ones are told, so its sampler (past TPE's random start)
    and pruner see the same history at any speed; the studies run side by side."""
    histories = {}
    for backend in ("serial", "process"):
        out = tmp_path / backend
        assert main(["tune", "smoke", "--budget", "4", *SMOKE, "--backend", backend, "--jobs", "1" if backend ==
                     "serial" else "2", "--tracking-uri", f"sqlite:///{out}/m.db", "--out", str(out / "tuned")]) == 0
        found = studies(out)
        histories[backend] = {name: [(t.params, t.value, t.state.name) for t in s.trials]
                              for name, s in found.items()}
        for s in found.values():
            assert len(s.trials) == 4
            for earlier, later in itertools.pairwise(s.trials):
                assert later.datetime_start >= earlier.datetime_complete, (backend, s.study_name)
        histories[backend]["suite"] = (out / "tuned" / "smoke.toml").read_text()
    assert histories["serial"] == histories["process"]
    naive, ewc = (next(s for name, s in studies(tmp_path / "process").items() if m in name).trials[0]
                  for m in ("/naive/", "/ewc/"))
    assert ewc.datetime_start < naive.datetime_complete and naive.datetime_start < ewc.datetime_complete


@pytest.mark.parametrize("backend", ["process", "ray"])
def test_trials_run_on_the_parallel_backends_with_the_numbers_a_serial_run_gives(tmp_path, backend, capsys):
    if backend == "ray":
        pytest.importorskip("ray")
    uri = f"sqlite:///{tmp_path}/m.db"
    assert main(["tune", "smoke", "--budget", "3", "--only", "split-digits", "--only", "naive", "--experiences", "2",
                 "--backend", backend, "--jobs", "2", "--no-progress", "--tracking-uri", uri,
                 "--out", str(tmp_path / "tuned")]) == ExitCode.OK
    assert "3 trials run" in capsys.readouterr().out
    (study,) = studies(tmp_path).values()
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3
    assert all(len(t.intermediate_values) == 2 for t in study.trials)  # the workers reported to the study
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("nlbench-smoke-tuning").experiment_id],
                              "tags.kind = 'trial'")
    run = min(runs, key=lambda r: int(r.data.tags[schema.TUNING_TRIAL]))
    config = RunConfig.from_dict(json.loads(Path(client.download_artifacts(run.info.run_id, "run_config.json",
                                                                           str(tmp_path))).read_text()))
    assert run.data.metrics["final/acc"] == pytest.approx(execute_run(config).summary["acc"], abs=1e-12)
