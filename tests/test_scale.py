"""Scale-out: backends give the same results, a crashing run fails alone, a killed suite resumes without losing or
duplicating anything, several writers share one SQLite store, and a tracking server that goes away mid-suite
loses nothing. Real processes, a real SQLite store and a real `mlflow server`; nothing mocked."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from nlbench.core.errors import UsageError
from nlbench.results import schema
from nlbench.results.spool import Spool
from nlbench.run.backends import ProcessBackend, SerialBackend, resolve_backend
from nlbench.run.config import RunConfig, available_cores
from nlbench.run.execute import execute_run
from nlbench.run.pool import describe_exit
from nlbench.run.resources import process_alive, process_identity
from nlbench.run.suite import load_suite, parse_suite

PLUGINS = Path(__file__).parent / "plugins"
TINY = """
scenarios = ["split-digits"]
methods = ["naive"]
seeds = {seeds}
[train]
epochs = 1
hidden_sizes = [8]
[scenario.split-digits]
n_experiences = 2
"""


def tiny_configs(seeds=(0, 1), methods=("naive",)) -> list[RunConfig]:
    text = TINY.format(seeds=list(seeds)).replace('methods = ["naive"]', f"methods = {list(methods)}")
    return parse_suite(text, "tiny.toml", "tiny").run_configs()


def cli(*args: str, env: dict | None = None, **kwargs) -> subprocess.Popen:
    """`nlbench ARGS` in a process of its own, as a user would start it."""
    env = {**os.environ, "PYTHONPATH": str(PLUGINS), **(env or {})}
    env.pop("NLBENCH_BACKEND", None)  # conftest's serial default is for in-process runs
    return subprocess.Popen([sys.executable, "-m", "nlbench", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def child_runs(uri: str, experiment: str) -> list:
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    return [] if exp is None else client.search_runs([exp.experiment_id], max_results=5000)


def of_kind(runs: list, kind: str) -> list:
    return [r for r in runs if r.data.tags.get(schema.KIND) == kind]


def wait_for_finished(uri: str, experiment: str, n: int, proc: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [r for r in of_kind(child_runs(uri, experiment), schema.RUN_KIND) if r.info.status == "FINISHED"]
        if len(done) >= n:
            return
        if proc.poll() is not None:
            pytest.fail(f"the suite ended before {n} runs finished: {proc.communicate()}")
        time.sleep(0.3)
    pytest.fail(f"{n} runs did not finish within {timeout} s")


def assert_each_key_finished_once(runs: list, keys: set[str]) -> None:
    children = of_kind(runs, schema.RUN_KIND)
    finished = Counter(r.data.tags[schema.RUN_KEY] for r in children if r.info.status == "FINISHED")
    assert set(finished) == keys and set(finished.values()) == {1}, finished
    assert not [r for r in runs if r.info.status == "RUNNING"]


# --- the run key, backends, process identity, spool: pure or in-process ---

def test_a_run_key_names_what_is_computed_not_how_it_is_executed():
    config = tiny_configs()[0]
    assert config.key == replace(config, suite="another-suite").key  # a suite name is not the experiment
    for change in ({"seed": 7}, {"threads": 3}, {"method": "naive-2"}, {"device": "cuda"},
                   {"hparams": {**config.hparams, "lr": 0.5}}, {"scenario_options": {"n_experiences": 5}}):
        assert replace(config, **change).key != config.key, change


def test_backends_resolve_from_the_machine():
    cores = available_cores()
    assert resolve_backend("auto", 0) == (("process", cores) if cores > 1 else ("serial", 1))
    assert resolve_backend("process", 3) == ("process", 3) and resolve_backend("serial", 4) == ("serial", 1)
    with pytest.raises(UsageError, match="'backend' must be one of auto, serial, process, ray. Got 'mpi'"):
        resolve_backend("mpi", 0)


def test_a_suite_thread_count_is_one_per_run_unless_shared():
    assert {c.threads for c in tiny_configs()} == {1}  # results depend on it: fixed by default
    shared = parse_suite("threads = 0\njobs = 1\nbackend = 'process'\n" + TINY.format(seeds=[0]), "t.toml")
    assert shared.run_configs()[0].threads == available_cores()


def test_a_process_is_alive_until_it_is_gone():
    assert process_alive(process_identity()) is True
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    host = process_identity().rsplit(":", 2)[0]
    assert process_alive(f"{host}:{proc.pid}:1") is False  # a pid that exited (or was reused since)
    assert process_alive(f"another-host:{os.getpid()}:1") is None  # another machine: cannot tell


def test_describe_exit_names_the_signal():
    assert describe_exit(-signal.SIGSEGV) == "killed by SIGSEGV"
    assert "out of memory?" in describe_exit(-signal.SIGKILL) and describe_exit(3) == "exit code 3"


def test_a_spooled_result_comes_back_whole(tmp_path):
    result = execute_run(tiny_configs()[0])
    spool = Spool("sqlite:///x.db", "nlbench-tiny", tmp_path)
    path = spool.save(result)
    assert spool.pending() == [path] and Spool.load(path).R == result.R
    spool.remove(path)
    assert len(spool) == 0 and not spool.folder.exists()


def test_a_run_sets_every_thread_pool_it_uses():
    import torch
    from threadpoolctl import threadpool_info

    from nlbench.run.execute import run_settings

    config = tiny_configs()[0]
    with run_settings(config):
        assert torch.get_num_threads() == 1
        assert {pool["num_threads"] for pool in threadpool_info()} == {1}  # BLAS and OpenMP too (GEM, sklearn)


def test_the_process_pool_gives_the_serial_results():
    configs = tiny_configs(seeds=(0, 1, 2), methods=("naive", "gem"))
    serial = {r.config.key: r.R for r in SerialBackend().run(configs)}
    pooled = list(ProcessBackend(jobs=2, threads=1).run(configs))
    assert all(r.ok for r in pooled) and {r.config.key: r.R for r in pooled} == serial


# --- whole suites through the CLI, in processes of their own ---

def test_a_worker_that_segfaults_fails_only_its_own_run(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    suite = tmp_path / "crash.toml"
    suite.write_text(TINY.format(seeds=[0, 1]).replace('methods = ["naive"]', 'methods = ["naive", "segfault"]'))
    proc = cli("run", str(suite), "--backend", "process", "--jobs", "2", "--tracking-uri", uri, "--no-progress",
               env={"NLBENCH_PLUGINS": "crashing_methods"})
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err  # runs failed, the suite finished
    children = of_kind(child_runs(uri, "nlbench-crash"), schema.RUN_KIND)
    by_method = {m: sorted(r.info.status for r in children if r.data.tags["method"] == m)
                 for m in ("naive", "segfault")}
    assert by_method == {"naive": ["FINISHED", "FINISHED"], "segfault": ["FAILED", "FAILED"]}
    errors = {r.data.tags[schema.ERROR] for r in children if r.info.status == "FAILED"}
    assert errors == {"WorkerDied: the worker process running it killed by SIGSEGV"}
    assert "FAILED crash/segfault" not in err and "FAILED split-digits/segfault/seed0: WorkerDied" in err
    # The same matrices as this process computes for the same configs:
    from nlbench.results.store import read_matrix

    client = MlflowClient(uri)
    for r in children:
        if r.data.tags["method"] == "naive":
            config = next(c for c in tiny_configs() if c.key == r.data.tags[schema.RUN_KEY])
            assert read_matrix(client, r.info.run_id, 2).tolist() == execute_run(config).R


def test_kill_9_mid_suite_then_the_same_command_finishes_it_once(tmp_path):
    from nlbench.results.report import build_report

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    suite = tmp_path / "resume.toml"
    suite.write_text(textwrap.dedent("""
        scenarios = ["permuted-digits"]
        methods = ["naive", "ewc"]
        seeds = [0, 1, 2, 3]
        [train]
        epochs = 1
        hidden_sizes = [32]
        [scenario.permuted-digits]
        n_experiences = 3
    """))
    args = ("run", str(suite), "--backend", "process", "--jobs", "2", "--tracking-uri", uri, "--no-progress")
    first = cli(*args)
    wait_for_finished(uri, "nlbench-resume", 2, first)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    runs = child_runs(uri, "nlbench-resume")
    assert [r.info.status for r in of_kind(runs, schema.SUITE_KIND)] == ["RUNNING"]  # what kill -9 leaves
    n_before = len([r for r in of_kind(runs, schema.RUN_KIND) if r.info.status == "FINISHED"])
    assert 2 <= n_before < 8

    second = cli(*args)
    out, err = second.communicate(timeout=300)
    assert second.returncode == 0, err
    assert f"{n_before}/8 runs skipped" in out and "marked KILLED" in out
    runs = child_runs(uri, "nlbench-resume")
    keys = {c.key for c in load_suite(str(suite)).run_configs()}
    assert_each_key_finished_once(runs, keys)
    parents = sorted(of_kind(runs, schema.SUITE_KIND), key=lambda r: r.info.start_time)
    assert [p.info.status for p in parents] == ["KILLED", "FINISHED"]
    assert "was gone" in parents[0].data.tags[schema.KILLED_BY]
    text, _ = build_report(uri, "resume", tmp_path / "board", "test")
    board = (tmp_path / "board" / "LEADERBOARD.md").read_text()
    assert "8 finished runs" in board and board.count("| 4 |") == 2  # n = 4 seeds for each method


def test_two_suites_write_one_fresh_sqlite_store_at_once(tmp_path):
    uri = f"sqlite:///{tmp_path / 'shared.db'}"
    procs = []
    for name, seeds in (("a", list(range(20))), ("b", list(range(20, 40)))):
        path = tmp_path / f"{name}.toml"
        path.write_text(TINY.format(seeds=seeds))
        procs.append(cli("run", str(path), "--backend", "serial", "--experiment", "shared", "--tracking-uri", uri,
                         "--no-progress"))
    for proc in procs:
        out, err = proc.communicate(timeout=400)
        assert proc.returncode == 0, err
        assert "database is locked" not in err and "duplicate column" not in err
    runs = child_runs(uri, "shared")
    assert_each_key_finished_once(runs, {c.key for c in tiny_configs(seeds=range(40))})
    assert [r.info.status for r in of_kind(runs, schema.SUITE_KIND)] == ["FINISHED", "FINISHED"]


@pytest.mark.slow
def test_a_server_that_dies_mid_suite_loses_nothing(tmp_path, server):
    spool = tmp_path / "spool-of-this-test"
    suite = tmp_path / "outage.toml"
    suite.write_text(textwrap.dedent("""
        scenarios = ["permuted-digits"]
        methods = ["naive"]
        seeds = [0, 1, 2, 3, 4, 5, 6, 7]
        [train]
        epochs = 3
        hidden_sizes = [128]
    """))
    args = ("run", str(suite), "--backend", "serial", "--tracking-uri", server.uri, "--no-progress")
    env = {"NLBENCH_SPOOL": str(spool), "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1"}
    first = cli(*args, env=env)
    wait_for_finished(server.uri, "nlbench-outage", 1, first)
    server.stop()
    out, err = first.communicate(timeout=300)
    assert first.returncode == 4, err
    assert f"finished results are kept in {spool}" in err and "run the same command again" in err
    kept = list(spool.rglob("*.pkl"))
    assert kept  # the server was gone before the last run finished

    server.start()
    second = cli(*args, env=env)
    out, err = second.communicate(timeout=300)
    assert second.returncode == 0, err
    assert f"{len(kept)} results kept locally by an earlier invocation were uploaded" in out
    assert not list(spool.rglob("*.pkl"))
    keys = {c.key for c in load_suite(str(suite)).run_configs()}
    assert_each_key_finished_once(child_runs(server.uri, "nlbench-outage"), keys)


def test_a_plugin_module_that_fails_to_import_is_named(monkeypatch):
    from nlbench.core import registry

    monkeypatch.setenv(registry.PLUGINS_ENV, " , no_such_plugin_module")  # (crashing_methods must stay out of
    with pytest.raises(UsageError, match=r"^\$NLBENCH_PLUGINS: module 'no_such_plugin_module' failed to import: "
                                         "ModuleNotFoundError"):  # this process: it would crash the checks)
        registry.load_plugins()
