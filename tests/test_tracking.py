"""MLflow helpers: key sanitizing, param flattening, the Avalanche logger, the tracking URI."""

import math

import torch
from mlflow.tracking import MlflowClient

from nlbench.results.tracking import (
    DEFAULT_TRACKING_URI,
    MetricBuffer,
    Tracker,
    flatten,
    mlflow_logger,
    resolve_tracking_uri,
    sanitize_key,
)


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


def test_avalanche_logger_forwards_scalars_in_batches(tracking_uri):
    client = MlflowClient(tracking_uri)
    exp = client.create_experiment("t")
    run_id = client.create_run(exp).info.run_id
    buffer = MetricBuffer(client, run_id)
    logger = mlflow_logger(buffer)
    logger.log_single_metric("Loss_Epoch/train_phase/train_stream/Task000", torch.tensor(0.5), 3)
    logger.log_single_metric("Weird&Name", 1, 4)
    logger.log_single_metric("EvalStream/Acc_Matrix", torch.zeros(2, 2), 4)  # not a scalar: skipped
    logger.log_single_metric("nan", math.nan, 4)  # not finite: skipped
    assert client.get_run(run_id).data.metrics == {}  # buffered until the experience ends
    logger.after_training_exp(strategy=None, metric_values=[])
    assert client.get_run(run_id).data.metrics == {
        "Loss_Epoch/train_phase/train_stream/Task000": 0.5, "Weird_Name": 1.0}
    assert [m.step for m in client.get_metric_history(run_id, "Weird_Name")] == [4]


def test_tracker_creates_a_model_training_experiment_once(tracking_uri):
    first = Tracker(tracking_uri, "nlbench-x")
    again = Tracker(tracking_uri, "nlbench-x")
    assert first.experiment_id == again.experiment_id
    exp = MlflowClient(tracking_uri).get_experiment(first.experiment_id)
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
