"""The run record: key rules, the pure record of a result, the tracker that writes it, and store failures."""

import json
import pickle
import textwrap

import mlflow
import pytest
from conftest import fabricated_result
from mlflow.tracking import MlflowClient

from nlbench.cli import ExitCode, main
from nlbench.core.errors import TrackingError
from nlbench.core.registry import get_method
from nlbench.results import schema
from nlbench.results.schema import flatten, record_of, sanitize_key
from nlbench.results.tracking import Tracker
from nlbench.results.uri import DEFAULT_TRACKING_URI, resolve_tracking_uri
from nlbench.run.config import RunConfig
from nlbench.run.execute import execute_run
from nlbench.run.suite import Suite


def test_sanitize_key_follows_mlflow_rules():
    assert sanitize_key("Top1_Acc_Epoch/train_phase/train_stream/Task000") == \
        "Top1_Acc_Epoch/train_phase/train_stream/Task000"
    assert sanitize_key("W&BConfusionMatrix_Stream") == "W_BConfusionMatrix_Stream"
    assert len(sanitize_key("x" * 400)) == 250


def test_flatten_nested_and_lists():
    assert flatten({"lr": 0.1, "hidden_sizes": [8, 8], "scenario": {"n": 2, "til": True}}) == {
        "lr": "0.1", "hidden_sizes": "[8, 8]", "scenario.n": "2", "scenario.til": "true"}


def test_resolve_tracking_uri(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert resolve_tracking_uri() == DEFAULT_TRACKING_URI == "sqlite:///mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5001")
    assert resolve_tracking_uri() == "http://127.0.0.1:5001"
    assert resolve_tracking_uri("sqlite:///x.db") == "sqlite:///x.db"


@pytest.mark.parametrize("options", [{}, {"task_incremental": True}])
def test_epoch_curves_equal_avalanches_epoch_metrics(options):
    """EpochCurves replaced Avalanche's EvaluationPlugin(accuracy_metrics(epoch), loss_metrics(epoch)): the same
    names, steps and values, replayed samples included."""
    from avalanche.evaluation.metrics import accuracy_metrics, loss_metrics
    from avalanche.logging import BaseLogger
    from avalanche.training.plugins import EvaluationPlugin

    from nlbench.core.registry import SCENARIOS
    from nlbench.methods.plugins import EpochCurves

    class Scalars(BaseLogger):
        def __init__(self):
            super().__init__()
            self.points = []

        def log_single_metric(self, name, value, x_plot):
            self.points.append((name, float(value), int(x_plot)))

    data = SCENARIOS.get("split-digits")(n_experiences=2, **options).build(0)
    learner = get_method("replay")().make_learner(get_method("replay").resolve({"epochs": 2}), data, "cpu")
    avalanche, strategy = Scalars(), learner.strategy
    where = strategy.plugins.index(strategy.evaluator)  # Avalanche keeps its evaluator among the plugins
    strategy.evaluator = EvaluationPlugin(accuracy_metrics(epoch=True), loss_metrics(epoch=True), loggers=[avalanche])
    strategy.plugins[where] = strategy.evaluator
    for i in range(2):
        learner.train_experience(i)
    ours = sorted(next(p for p in strategy.plugins if isinstance(p, EpochCurves)).points)
    theirs = sorted(avalanche.points)
    assert len(ours) == 8 and [(n, s) for n, _, s in ours] == [(n, s) for n, _, s in theirs]
    assert [v for _, v, _ in ours] == pytest.approx([v for _, v, _ in theirs], rel=1e-12)


def test_record_names_every_key_through_the_schema():
    R, b = [[0.9, 0.1], [0.5, 0.8]], [0.1, 0.2]
    result = fabricated_result("s", "toy", "naive", 3, R, b, {"acc": 0.65, "forgetting": 0.4, "fwt": float("nan")})
    result.curves = [("Top1&Acc", 0.7, 5)]
    result.files = {"optimizer_state/exp0.pt": b"state"}
    record = record_of(result, "parent-id", {"machine": "m"})
    assert record.tags[schema.KIND] == schema.RUN_KIND and record.tags[schema.PARENT] == "parent-id"
    assert record.tags["seed"] == "3" and record.tags["machine"] == "m" and record.tags[schema.DATA_SOURCE]
    assert record.params["seed"] == "3" and record.params["settings.kernel_backend"] == "auto"
    metrics = {(k, s): v for k, v, s in record.metrics}
    assert metrics[("acc/exp0", 1)] == 0.5 and metrics[("init/acc/exp1", 0)] == 0.2
    assert metrics[("final/acc", 1)] == 0.65 and ("final/fwt", 1) not in metrics  # NaN is not logged
    assert metrics[("Top1_Acc", 5)] == 0.7 and metrics[(schema.CHANCE, 0)] == 0.1
    assert set(record.artifacts) == {schema.RUN_CONFIG, schema.ACC_CSV, schema.HEATMAP, "optimizer_state/exp0.pt"}
    assert json.loads(record.artifacts[schema.RUN_CONFIG])["seed"] == 3
    assert record.artifacts[schema.HEATMAP].startswith(b"<svg") and b">0.50</text>" in record.artifacts[schema.HEATMAP]
    failed = record_of(fabricated_result("s", "toy", "naive", 0, None, None, {}, status="FAILED"), "p", {})
    assert failed.tags[schema.ERROR] == "RuntimeError: boom" and schema.ERROR_TXT in failed.artifacts
    assert not any(k.startswith(("acc/", "final/")) for k, _, _ in failed.metrics)


def test_tracker_writes_a_terminated_child_with_the_run_times(tracking_uri):
    tracker = Tracker(tracking_uri, "nlbench-x")
    again = Tracker(tracking_uri, "nlbench-x")
    assert tracker.experiment_id == again.experiment_id
    exp = MlflowClient(tracking_uri).get_experiment(tracker.experiment_id)
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    parent = tracker.start_parent(Suite("x", "x.toml", ("toy",), ("naive",)), [], {})
    result = fabricated_result("x", "toy", "naive", 0, [[0.5]], [0.1], {"acc": 0.5})
    result.started_ms, result.ended_ms = 1_700_000_000_000, 1_700_000_005_000
    run = tracker.client.get_run(tracker.record(parent, result, {}))
    assert run.info.status == "FINISHED" and run.data.tags[schema.PARENT] == parent
    assert (run.info.start_time, run.info.end_time) == (1_700_000_000_000, 1_700_000_005_000)
    assert run.data.metrics["final/acc"] == 0.5


def test_a_child_run_gets_its_kind_only_with_its_last_params_and_metrics(tracking_uri, monkeypatch):
    """A search counts a child by its kind tag, so a child killed while its record is written must not carry it:
    the store is read before each of the record's `log_batch` calls (several, with MLflow's limit made small)."""
    from nlbench.results import tracking

    monkeypatch.setattr(tracking, "_MAX_METRICS", 2)
    tracker = Tracker(tracking_uri, "nlbench-x")
    parent = tracker.start_parent(Suite("x", "x.toml", ("toy",), ("naive",)), [], {})
    reader, batches = MlflowClient(tracking_uri), []
    log_batch = tracker.client.log_batch

    def reading_first(run_id, params=(), metrics=(), tags=()):  # noqa: ANN001, ANN202 - MlflowClient's signature
        batches.append((reader.get_run(run_id).data.tags.get(schema.KIND), [t.key for t in tags]))
        return log_batch(run_id, params=params, metrics=metrics, tags=tags)

    monkeypatch.setattr(tracker.client, "log_batch", reading_first)
    run_id = tracker.record(parent, fabricated_result("x", "toy", "naive", 0, [[0.5]], [0.1], {"acc": 0.5}), {})
    assert len(batches) > 2, "the record should take several batches here"
    assert [kind for kind, _ in batches] == [None] * len(batches)  # not in the store before the last batch ...
    assert [keys for _, keys in batches] == [[]] * (len(batches) - 1) + [[schema.KIND]]  # ... which brings it
    assert reader.get_run(run_id).data.tags[schema.KIND] == schema.RUN_KIND


def test_the_run_unit_writes_nothing_and_its_result_travels(monkeypatch):
    def no_store(*args, **kwargs):
        raise AssertionError("the run unit touched MLflow")

    monkeypatch.setattr(MlflowClient, "__init__", no_store)
    monkeypatch.setattr(mlflow, "set_tracking_uri", no_store)
    hp = get_method("m3").resolve({"epochs": 1, "hidden_sizes": [16], "save_optimizer_state": True})
    result = execute_run(RunConfig("t", "split-digits", "split-digits", {"n_experiences": 2}, "m3", "m3", hp, 0))
    assert result.ok, result.traceback
    assert set(result.files) == {"optimizer_state/exp0.pt", "optimizer_state/exp1.pt"}
    assert any(name.startswith("Top1_Acc_Epoch/train_phase") for name, _, _ in result.curves)
    assert pickle.loads(pickle.dumps(result)).R == result.R  # can be sent to another process


def test_a_store_that_fails_mid_record_is_a_tracking_error_keeps_the_result_and_leaves_nothing_running(
        tmp_path, tracking_uri, capsys):
    not_a_dir = tmp_path / "artifacts-are-a-file"
    not_a_dir.write_text("")
    MlflowClient(tracking_uri).create_experiment("nlbench-broken", artifact_location=not_a_dir.as_uri())
    suite = tmp_path / "broken.toml"
    suite.write_text(textwrap.dedent("""
        scenarios = ["split-digits"]
        methods = ["naive"]
        [train]
        epochs = 1
        hidden_sizes = [8]
        [scenario.split-digits]
        n_experiences = 2
    """))
    code = main(["run", str(suite), "--tracking-uri", tracking_uri, "--no-progress"])
    err = capsys.readouterr().err
    assert code == ExitCode.TRACKING_ERROR
    assert f"ERROR: tracking store {tracking_uri} failed while recording split-digits/naive/seed0" in err
    assert "1 finished results are kept in" in err and "run the same command again" in err
    assert "NonFinite" not in err
    assert len(list((tmp_path / "spool").rglob("*.pkl"))) == 1  # NLBENCH_SPOOL, see conftest
    runs = MlflowClient(tracking_uri).search_runs(
        [MlflowClient(tracking_uri).get_experiment_by_name("nlbench-broken").experiment_id])
    assert {r.info.status for r in runs} == {"FAILED"} and len(runs) == 2  # the parent and the child
    child = next(r for r in runs if r.data.tags.get(schema.KIND) == schema.RUN_KIND)
    assert "failed while recording" in child.data.tags[schema.TRACKING_ERROR]


def test_a_store_that_cannot_open_is_a_tracking_error(tmp_path):
    (tmp_path / "a-file").write_text("")
    with pytest.raises(TrackingError, match="tracking store .* failed while opening experiment 'nlbench-x'"):
        Tracker(f"sqlite:///{tmp_path}/a-file/m.db", "nlbench-x")


@pytest.mark.slow
def test_a_suite_records_into_a_tracking_server_checked_up_front(mlflow_server, capsys):
    from nlbench.results.uri import check_tracking_uri

    assert check_tracking_uri(mlflow_server) == mlflow_server  # /health answers
    code = main(["run", "smoke", "--only", "naive", "--only", "split-digits", "--tracking-uri", mlflow_server,
                 "--no-progress"])
    out = capsys.readouterr().out
    assert code == ExitCode.OK and "Open MLflow with" not in out  # the server is its own UI
    client = MlflowClient(mlflow_server)
    runs = client.search_runs([client.get_experiment_by_name("nlbench-smoke").experiment_id], "tags.kind = 'run'")
    assert [r.info.status for r in runs] == ["FINISHED"] and "final/acc" in runs[0].data.metrics
    assert {a.path for a in client.list_artifacts(runs[0].info.run_id)} >= {schema.ACC_CSV, schema.RUN_CONFIG}
