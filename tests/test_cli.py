"""The CLI end to end: the smoke suite into a temporary MLflow store, errors and exit codes."""

import json
import os
import textwrap

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from nlbench.cli import ExitCode, main


@pytest.mark.slow
def test_smoke_suite_end_to_end(tracking_uri, capsys):
    code = main(["run", "smoke", "--tracking-uri", tracking_uri, "--no-progress"])
    out = capsys.readouterr().out
    assert code == ExitCode.OK, out
    assert "split-digits" in out and "permuted-digits" in out and "ACC" in out and "Forgetting" in out

    mlflow.set_tracking_uri(tracking_uri)
    runs = mlflow.search_runs(experiment_names=["nlbench-smoke"])
    parent = runs[runs["tags.kind"] == "suite"]
    children = runs[runs["tags.kind"] == "run"]
    assert len(parent) == 1 and (parent["status"] == "FINISHED").all()
    assert len(children) == 2 * 3 and (children["status"] == "FINISHED").all()
    assert (children["tags.mlflow.parentRunId"] == parent["run_id"].iloc[0]).all()

    row = children[(children["tags.method"] == "ewc") & (children["tags.scenario"] == "permuted-digits")].iloc[0]
    for tag, value in {"setting": "domain-incremental", "family": "avalanche", "seed": "0", "device": "cpu"}.items():
        assert row[f"tags.{tag}"] == value
    for tag in ("nlbench_version", "torch_version", "avalanche_version"):
        assert row[f"tags.{tag}"]
    assert row["params.ewc_lambda"] == "100.0" and row["params.epochs"] == "1"
    assert row["params.scenario.n_experiences"] == "3"
    for key in ("final/acc", "final/forgetting", "final/bwt", "final/fwt", "final/la", "time/train_s",
                "mem/peak_mb", "model/trainable_params", "acc/exp0", "acc/exp2"):
        assert f"metrics.{key}" in runs.columns and row[f"metrics.{key}"] == row[f"metrics.{key}"], key

    client = MlflowClient(tracking_uri)
    run_id = row["run_id"]
    history = client.get_metric_history(run_id, "acc/exp2")
    assert sorted(m.step for m in history) == [0, 1, 2]  # one value per row of R
    artifacts = {a.path for a in client.list_artifacts(run_id)}
    assert {"acc_matrix.csv", "acc_matrix.svg", "run_config.json"} <= artifacts
    csv = client.download_artifacts(run_id, "acc_matrix.csv")
    with open(csv) as f:
        lines = f.read().splitlines()
    assert lines[0] == "after_exp,exp0,exp1,exp2" and len(lines) == 1 + 1 + 3
    last = [float(v) for v in lines[-1].split(",")[1:]]
    assert sum(last) / 3 == pytest.approx(row["metrics.final/acc"], abs=1e-6)
    with open(client.download_artifacts(run_id, "run_config.json")) as f:
        config = json.load(f)
    assert config["method"] == "ewc" and config["hparams"]["ewc_lambda"] == 100.0
    # Avalanche's own training metrics came through the MLflow logger.
    assert any(k.startswith("metrics.Top1_Acc_Epoch/train_phase") for k in runs.columns)

    assert main(["runs", "--tracking-uri", tracking_uri, "--method", "ewc"]) == ExitCode.OK
    table = capsys.readouterr().out
    assert table.count("ewc") == 2 and "replay" not in table


@pytest.mark.slow
def test_failing_run_is_recorded_and_suite_goes_on(tmp_path, tracking_uri, capsys):
    suite = tmp_path / "explode.toml"
    suite.write_text(textwrap.dedent("""
        scenarios = ["split-digits"]
        methods = ["naive", "exploding"]
        [train]
        epochs = 1
        hidden_sizes = [16]
        [scenario.split-digits]
        n_experiences = 2
        [method.exploding]
        name = "naive"
        lr = 1e30
        momentum = 0.0
    """))
    code = main(["run", str(suite), "--tracking-uri", tracking_uri, "--no-progress"])
    captured = capsys.readouterr()
    assert code == ExitCode.RUNS_FAILED
    assert "FAILED split-digits/exploding/seed0: NonFiniteLossError" in captured.err
    mlflow.set_tracking_uri(tracking_uri)
    runs = mlflow.search_runs(experiment_names=["nlbench-explode"])
    status = dict(zip(runs["tags.mlflow.runName"], runs["status"], strict=True))
    assert status == {"suite:explode": "FAILED", "split-digits/naive/seed0": "FINISHED",
                      "split-digits/exploding/seed0": "FAILED"}
    failed = runs[runs["status"] == "FAILED"]
    assert failed["tags.error"].str.startswith("NonFiniteLossError").any()


def test_usage_errors_exit_2_with_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('scenarios = ["split-digits"]\nmethods = ["ewk"]\n')
    assert main(["run", str(bad)]) == ExitCode.USAGE_ERROR
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"ERROR: {bad}: 'methods': Unknown method 'ewk'. Did you mean 'ewc'?")
    assert "\n" not in err
    assert main(["run", "smoke", "--only", "nope"]) == ExitCode.USAGE_ERROR
    assert "'nope' is neither a scenario nor a method" in capsys.readouterr().err
    assert main(["run", "smoke", "--bogus"]) == ExitCode.USAGE_ERROR
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err
    assert main(["run", "smoke", "--device", "tpu"]) == ExitCode.USAGE_ERROR


def test_list_shows_everything(capsys):
    assert main(["list"]) == ExitCode.OK
    out = capsys.readouterr().out
    for name in ("split-digits", "permuted-digits", "naive", "gem", "smoke", "default"):
        assert name in out


def test_runs_on_empty_store(tracking_uri, capsys):
    assert main(["runs", "--tracking-uri", tracking_uri]) == ExitCode.OK
    assert "No" in capsys.readouterr().out


def test_command_line_settings_and_overrides_reach_the_record(tracking_uri, monkeypatch, capsys):
    """`--set`, `--kernel-backend`, `--threads` and $NLBENCH_KERNEL_BACKEND are suite edits, logged with each run."""
    from nlbench.kernels.dispatch import ENV

    base = ["run", "smoke", "--only", "naive", "--only", "split-digits", "--tracking-uri", tracking_uri,
            "--no-progress"]
    assert main([*base, "--set", "train.lr=0.05", "--kernel-backend", "reference", "--threads", "1"]) == ExitCode.OK
    monkeypatch.setenv(ENV, "numba")
    assert main([*base, "--experiment", "env-backend"]) == ExitCode.OK
    capsys.readouterr()
    mlflow.set_tracking_uri(tracking_uri)
    flags = mlflow.search_runs(experiment_names=["nlbench-smoke"], filter_string="tags.kind = 'run'").iloc[0]
    assert flags["params.lr"] == "0.05" and flags["params.settings.kernel_backend"] == "reference"
    assert flags["params.settings.threads"] == "1" and flags["params.settings.device"] == "cpu"
    env = mlflow.search_runs(experiment_names=["env-backend"], filter_string="tags.kind = 'run'").iloc[0]
    assert env["params.settings.kernel_backend"] == "numba" and env["params.lr"] == "0.1"
    monkeypatch.delenv(ENV)
    assert main([*base, "--set", "train.lr=-1"]) == ExitCode.USAGE_ERROR
    err = capsys.readouterr().err
    assert "smoke.toml (with --set train.lr=-1): The 'lr' parameter of [train]" in err and err.count("\n") == 1


LIST_IN_FRESH_PROCESS = ("import sys; from nlbench.cli import main; code = main(sys.argv[1:]); "
                         "print('IMPORTED', sorted(m for m in ('torch', 'avalanche', 'mlflow') if m in sys.modules))")


def test_list_reads_a_cached_listing_without_importing_torch(tmp_path):
    """The first `nlbench list` builds the listing (importing every module); later ones read it from the cache."""
    import subprocess
    import sys

    env = {**os.environ, "NLBENCH_CACHE": str(tmp_path)}
    env.pop("NLBENCH_PLUGINS", None)
    outs = [subprocess.run([sys.executable, "-c", LIST_IN_FRESH_PROCESS, "list", "--params"], env=env,
                           capture_output=True, text=True, check=True).stdout for _ in range(2)]
    first, second = (out.rsplit("IMPORTED", 1) for out in outs)
    assert first[0] == second[0] and "memory_impl" in first[0]  # the same listing, parameters included
    assert "torch" in first[1] and second[1].strip() == "[]"
    assert list(tmp_path.glob("listing/list-*.json"))


def test_the_listing_cache_key_follows_the_sources(tmp_path, monkeypatch):
    from nlbench.core import listing

    package = tmp_path / "extra_methods"
    package.mkdir()
    (package / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(listing, "REGISTRIES", (*listing.REGISTRIES, ("Extra", "extra_methods", "none")))
    monkeypatch.delenv("NLBENCH_PLUGINS", raising=False)
    before = listing._source_stamp()
    assert listing._source_stamp() == before
    (package / "new_method.py").write_text("NAME = 'new-method'\n")  # adding a method is adding a file
    assert listing._source_stamp() != before
    monkeypatch.setenv("NLBENCH_PLUGINS", "some_module")
    assert listing._source_stamp() is None  # plugins can live anywhere: never cached
