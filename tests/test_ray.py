"""The Ray backend: a local Ray instance (`ray.init` on this machine, started and stopped by the run) runs the smoke
suite with the matrices the serial backend computes. Needs the `ray` extra (pip install -e ".[ray]")."""

import pytest
from mlflow.tracking import MlflowClient

from nlbench.cli import main
from nlbench.cli.common import ExitCode
from nlbench.results import schema
from nlbench.results.store import read_matrix
from nlbench.run.execute import execute_run
from nlbench.run.suite import load_suite

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow


def test_a_local_ray_cluster_runs_the_smoke_suite_with_the_serial_matrices(tracking_uri, capsys):
    assert main(["run", "smoke", "--backend", "ray", "--tracking-uri", tracking_uri, "--no-progress"]) == ExitCode.OK
    assert "ray (local cluster)" in capsys.readouterr().err
    assert not ray.is_initialized()  # the suite's own Ray instance is shut down
    client = MlflowClient(tracking_uri)
    runs = client.search_runs([client.get_experiment_by_name("nlbench-smoke").experiment_id], "tags.kind = 'run'")
    configs = {c.key: c for c in load_suite("smoke").run_configs()}
    assert sorted(r.data.tags[schema.RUN_KEY] for r in runs) == sorted(configs)
    for run in runs:
        config = configs[run.data.tags[schema.RUN_KEY]]
        n = config.scenario_options["n_experiences"]
        assert read_matrix(client, run.info.run_id, n).tolist() == execute_run(config).R, config.run_name


def test_a_ray_address_with_no_cluster_is_a_usage_error(tracking_uri, capsys):
    code = main(["run", "smoke", "--backend", "ray", "--ray-address", "127.0.0.1:1", "--tracking-uri", tracking_uri,
                 "--no-progress"])
    assert code == ExitCode.USAGE_ERROR
    assert capsys.readouterr().err.startswith("ERROR: --ray-address 127.0.0.1:1: no Ray cluster answers there")
    assert MlflowClient(tracking_uri).get_experiment_by_name("nlbench-smoke") is None  # checked before writing
