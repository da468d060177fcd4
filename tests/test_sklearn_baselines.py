"""sklearn baselines in the continual protocol: full matrices, both regimes, valid scores, reproducibility."""

import numpy as np
import pytest
import torch

from nlbench.cli import ExitCode, main
from nlbench.core.errors import UsageError
from nlbench.core.registry import SCENARIOS, get_method
from nlbench.run.config import RunConfig
from nlbench.run.execute import execute_run, seed_everything

SKLEARN = ["knn", "svm", "rf", "logreg", "naive-bayes", "decision-tree", "ensemble", "sgd", "mlp-sklearn"]
FAST = {"mlp-sklearn": {"hidden_sizes": [64]}, "rf": {"n_estimators": 20},
        "ensemble": {"n_estimators": 20}}


def run(method, scenario="split-digits", seed=0, options=None, **hp):
    resolved = get_method(method).resolve({**FAST.get(method, {}), **hp})
    result = execute_run(RunConfig("t", scenario, scenario, options or {}, method, method, resolved, seed))
    assert result.ok, result.error
    return result


@pytest.mark.parametrize("scenario, options", [("split-digits", {}), ("permuted-digits", {"n_experiences": 3})])
@pytest.mark.parametrize("method", SKLEARN)
def test_every_baseline_fills_the_accuracy_matrix(method, scenario, options):
    result = run(method, scenario, options=options)
    R = np.array(result.R)
    assert R.shape == (len(R), len(R)) and np.isfinite(R).all() and (R >= 0).all() and (R <= 1).all()
    assert np.diag(R).mean() > 0.7, np.diag(R)  # each experience is learned when it is seen
    assert result.n_params > 0 and get_method(method).FAMILY == "sklearn"


@pytest.mark.parametrize("method", SKLEARN)
def test_cumulative_keeps_the_first_experience_at_least_as_well_as_incremental(method):
    first_after_last = {regime: np.mean([run(method, seed=s, regime=regime).R[-1][0] for s in (0, 1)])
                        for regime in ("incremental", "cumulative")}
    assert first_after_last["cumulative"] >= first_after_last["incremental"] - 1e-9, first_after_last


@pytest.mark.parametrize("method", ["knn", "sgd", "naive-bayes", "svm"])
def test_scores_cover_every_class_even_unseen_ones(method):
    data = SCENARIOS.get("split-digits")().build(0)
    seed_everything(0)
    hp = get_method(method).resolve(FAST.get(method, {}))
    learner = get_method(method)().make_learner(hp, data, "cpu")
    x = data.experiences[2].x_test  # classes 4 and 5, not seen yet
    learner.train_experience(0)
    scores = learner.predict_scores(x, 0)
    assert scores.shape == (len(x), 10) and torch.allclose(scores.sum(1), torch.ones(len(x)), atol=1e-5)
    if method != "sgd":  # sgd's partial_fit declares every class at once and gives them tiny probabilities
        assert float(scores[:, 2:].abs().sum()) == 0.0  # classes never seen have probability 0
    assert set(learner.predict(x, 0).tolist()) <= {0, 1}
    learner.train_experience(1)
    assert learner.predict_scores(x, 0).shape == (len(x), 10)


def test_task_incremental_predictions_stay_within_the_task():
    data = SCENARIOS.get("split-digits")(task_incremental=True).build(0)
    seed_everything(0)
    learner = get_method("sgd")().make_learner(get_method("sgd").resolve(), data, "cpu")
    for i in range(len(data.experiences)):
        learner.train_experience(i)
    for t, e in enumerate(data.experiences):
        assert set(learner.predict(e.x_test, t).tolist()) <= set(e.classes)  # a multi-head choice
    result = run("sgd", options={"task_incremental": True})
    assert np.array(result.R)[-1].mean() > 0.8  # sgd's partial_fit keeps old classes: task heads stay good


@pytest.mark.parametrize("method", ["rf", "sgd", "mlp-sklearn"])
def test_same_seed_same_matrix(method):
    assert run(method, seed=3).R == run(method, seed=3).R


def test_grid_tunes_on_the_first_experience_and_logs_its_choice():
    result = run("knn", grid=True)
    assert set(result.learned_params) == {"grid.n_neighbors"}
    assert result.learned_params["grid.n_neighbors"] in get_method("knn").GRID["n_neighbors"]
    with pytest.raises(UsageError, match="method 'ensemble' has no parameter grid"):
        get_method("ensemble").resolve({"grid": True})


def test_sklearn_runs_share_the_mlflow_layout(tracking_uri, tmp_path, capsys):
    import mlflow

    suite = tmp_path / "sk.toml"
    suite.write_text('name = "sk"\nseeds = [0]\nscenarios = ["split-digits"]\nmethods = ["knn", "sgd-cum"]\n'
                     '[method.sgd-cum]\nname = "sgd"\nregime = "cumulative"\n')
    assert main(["run", str(suite), "--tracking-uri", tracking_uri, "--no-progress"]) == ExitCode.OK
    mlflow.set_tracking_uri(tracking_uri)
    runs = mlflow.search_runs(experiment_names=["nlbench-sk"], filter_string="tags.kind = 'run'").set_index(
        "tags.method")
    assert (runs["tags.family"] == "sklearn").all()
    assert runs.loc["sgd-cum", "params.regime"] == "cumulative" and runs.loc["knn", "params.n_neighbors"] == "9"
    assert runs["metrics.final/acc"].notna().all() and runs["metrics.acc/exp4"].notna().all()
    assert "knn" in capsys.readouterr().out


def test_model_table_report_writes_table_and_plots(tracking_uri, tmp_path, monkeypatch, capsys):
    import matplotlib.image as mpimg
    from conftest import SHARED, require_shared

    from nlbench.data.sources.files import DATA_ENV

    require_shared()
    monkeypatch.setenv(DATA_ENV, str(SHARED / "data" / "heart"))
    suite = tmp_path / "table.toml"
    suite.write_text('name = "table"\nseeds = [0, 1]\nscenarios = ["heart-cleveland"]\nmethods = ["knn", "logreg"]\n'
                     'report = "model-table"\n')
    out = tmp_path / "out"
    assert main(["run", str(suite), "--tracking-uri", tracking_uri, "--no-progress", "--report-dir", str(out)]) == 0
    md = (out / "heart_cleveland.md").read_text()
    assert "| method | seeds | accuracy | roc_auc | balanced_accuracy | train_time_s | parameters |" in md
    assert "| logreg | 2 |" in md and "0 test rows also in train" in md and str(tmp_path) not in md
    csv = (out / "heart_cleveland.csv").read_text().splitlines()
    assert len(csv) == 3 and csv[0].startswith("method,seeds,accuracy,roc_auc")
    for png in ("heart_cleveland_roc.png", "heart_cleveland_confusion.png"):
        img = mpimg.imread(out / png)
        assert img.shape[0] > 200 and img.std() > 0


def test_report_key_is_validated(tmp_path):
    from nlbench.run.suite import load_suite

    path = tmp_path / "bad.toml"
    path.write_text('scenarios = ["split-digits"]\nmethods = ["knn"]\nreport = "poster"\n')
    with pytest.raises(UsageError, match="'report' must be one of model-table, reproduce. Got 'poster' instead."):
        load_suite(str(path))
