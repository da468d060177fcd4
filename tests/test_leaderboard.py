"""Leaderboard: statistics against hand/scipy values, on runs written through the real tracking code."""

import math

import pytest
from scipy import stats

from nlbench.cli import ExitCode, main
from nlbench.results.leaderboard import leaderboard
from nlbench.results.store import runs_frame, search
from nlbench.results.tables import estimate, paired_difference
from nlbench.results.tracking import Tracker

ACC = {  # method -> final ACC per seed
    "naive": [0.20, 0.30, 0.25],
    "good": [0.60, 0.80, 0.70],
    "lucky": [0.11, 0.09, 0.10],  # at the chance level 0.1, and forgets nothing
    "single": [0.50],
}


def log_suite(uri, suite="toy", acc=ACC, chance=0.1):
    """Runs written through the real tracking code, from fabricated run results."""
    from conftest import fabricated_result

    from nlbench.run.suite import Suite

    tracker = Tracker(uri, f"nlbench-{suite}")
    parent = tracker.start_parent(Suite(suite, "toy.toml", ("toy",), tuple(acc)), [], {})
    for method, values in acc.items():
        for seed, a in enumerate(values):
            R = [[0.9, 0.1], [a, a]] if method != "lucky" else [[a, a], [a, a]]
            fgt = 0.0 if method == "lucky" else 0.9 - a
            tracker.record(parent, fabricated_result(suite, "toy", method, seed, R, [0.1, 0.1],
                                                     {"acc": a, "forgetting": fgt}, chance), {})
    # runs that must not count: failed, still running
    tracker.record(parent, fabricated_result(suite, "toy", "naive", 9, None, None, {}, status="FAILED"), {})
    tracker.client.create_run(tracker.experiment_id, tags={"kind": "run", "suite": suite, "scenario": "toy",
                                                           "method": "naive", "family": "avalanche", "seed": "8"})
    tracker.finish(parent, "FINISHED")


def test_estimate_mean_std_and_t_interval():
    e = estimate([0.6, 0.8, 0.7])
    assert (e.n, e.mean, e.std) == (3, pytest.approx(0.7), pytest.approx(0.1))
    assert e.ci95 == pytest.approx(stats.t.ppf(0.975, 2) * 0.1 / math.sqrt(3))  # 4.303 * 0.0577 = 0.248
    assert e.ci95 == pytest.approx(0.2484, abs=1e-4)
    one = estimate([0.5, float("nan")])
    assert one.n == 1 and math.isnan(one.ci95) and str(one) == "0.500"


def test_paired_difference_matches_scipy_on_common_seeds():
    import pandas as pd

    a = pd.Series([0.6, 0.8, 0.7, 0.9], index=[0, 1, 2, 3])
    b = pd.Series([0.2, 0.3, 0.25], index=[0, 1, 2])
    diff, p, n = paired_difference(a, b)
    assert n == 3 and diff == pytest.approx(0.45)
    assert p == pytest.approx(stats.ttest_rel([0.6, 0.8, 0.7], [0.2, 0.3, 0.25]).pvalue)


def test_leaderboard_ranks_counts_seeds_and_marks_chance(tracking_uri):
    log_suite(tracking_uri)
    log_suite(tracking_uri, suite="other", acc={"good": [0.0]})
    frame = runs_frame(search(tracking_uri, "nlbench-toy"))
    assert set(frame["seed"]) == {0, 1, 2}  # the failed and the running run do not count
    table = leaderboard(frame)["toy"].set_index("method")
    assert list(table.sort_values("rank").index) == ["good", "single", "naive", "lucky"]
    assert table.loc["good", "n"] == 3 and table.loc["single", "n"] == 1
    assert math.isnan(table.loc["single", "acc"].ci95)
    assert table.loc["good", "vs_naive"] == pytest.approx(0.45)
    assert table.loc["good", "p"] == pytest.approx(stats.ttest_rel(ACC["good"], ACC["naive"]).pvalue)
    assert table.loc["lucky", "at_chance"] and not table.loc["good", "at_chance"]
    assert table.loc["lucky", "forgetting"].mean == 0.0  # "no forgetting", but at chance: marked


def test_leaderboard_command_writes_tables_and_readable_plots(tracking_uri, tmp_path, capsys):
    import matplotlib.image as mpimg
    from mlflow.tracking import MlflowClient

    log_suite(tracking_uri)
    out = tmp_path / "board"
    assert main(["leaderboard", "--suite", "toy", "--tracking-uri", tracking_uri, "--out", str(out)]) == ExitCode.OK
    text = capsys.readouterr().out
    assert "good" in text and "lucky †" in text
    md = (out / "LEADERBOARD.md").read_text()
    assert "## toy" in md and "`nlbench leaderboard --suite toy`" in md and str(tmp_path) not in md
    csv = (out / "leaderboard.csv").read_text().splitlines()
    assert csv[0].startswith("scenario,rank,method,family,n,acc_mean") and len(csv) == 1 + 4
    pngs = sorted((out / "plots").glob("*.png"))
    assert {p.name for p in pngs} >= {"toy_acc.png", "toy_tradeoff.png", "toy_stream.png", "toy_good_matrix.png"}
    for p in pngs:
        img = mpimg.imread(p)
        assert img.shape[0] > 100 and img.shape[1] > 100 and img.std() > 0  # not blank
    client = MlflowClient(tracking_uri)
    parent = client.search_runs([client.get_experiment_by_name("nlbench-toy").experiment_id],
                                "tags.kind = 'suite'")[0]
    logged = {a.path for a in client.list_artifacts(parent.info.run_id, "leaderboard")}
    assert "leaderboard/LEADERBOARD.md" in logged and "leaderboard/plots" in logged


def test_leaderboard_of_an_unknown_suite_is_a_usage_error(tracking_uri, tmp_path, capsys):
    log_suite(tracking_uri)
    code = main(["leaderboard", "--suite", "nope", "--tracking-uri", tracking_uri, "--out", str(tmp_path)])
    assert code == ExitCode.USAGE_ERROR
    err = capsys.readouterr().err
    assert "no MLflow experiment 'nlbench-nope'" in err and "nlbench-toy" in err


def test_show_and_compare_print_runs_from_the_store(tracking_uri, capsys):
    import mlflow

    log_suite(tracking_uri)
    mlflow.set_tracking_uri(tracking_uri)
    runs = mlflow.search_runs(experiment_names=["nlbench-toy"], filter_string="tags.kind = 'run' and tags.seed = '0' "
                              "and attributes.status = 'FINISHED'").set_index("tags.method")
    good, naive = runs.loc["good", "run_id"], runs.loc["naive", "run_id"]
    assert main(["show", good, "--tracking-uri", tracking_uri]) == ExitCode.OK
    out = capsys.readouterr().out
    assert "method=good" in out and "final/acc = 0.6000" in out
    assert "after 1 0.600 0.600" in out  # row 1 of R
    assert main(["compare", good, naive, "--tracking-uri", tracking_uri]) == ExitCode.OK
    out = capsys.readouterr().out
    assert "final/acc" in out and "-0.4000" in out  # naive - good
    assert main(["runs", "--tracking-uri", tracking_uri, "--sort", "acc", "--limit", "1"]) == ExitCode.OK
    assert " good " in capsys.readouterr().out  # best ACC first
    assert main(["runs", "--tracking-uri", tracking_uri, "--status", "FAILED"]) == ExitCode.OK
    out = capsys.readouterr().out
    assert "FAILED" in out and "FINISHED" not in out
    assert main(["show", "0" * 32, "--tracking-uri", tracking_uri]) == ExitCode.USAGE_ERROR
    assert "no run '" in capsys.readouterr().err


def test_search_filters_by_method_and_start_date(tracking_uri):
    from nlbench.core.errors import UsageError

    log_suite(tracking_uri)
    assert set(search(tracking_uri, "nlbench-toy", method="good")["tags.method"]) == {"good"}
    assert len(search(tracking_uri, "nlbench-toy", since="2000-01-01")) == len(search(tracking_uri, "nlbench-toy"))
    assert search(tracking_uri, "nlbench-toy", since="2999-01-01").empty
    with pytest.raises(UsageError, match="--since must be a date"):
        search(tracking_uri, "nlbench-toy", since="yesterday-ish")


def test_search_filters_by_any_tag(tracking_uri, capsys):
    log_suite(tracking_uri)
    assert set(search(tracking_uri, "nlbench-toy", tags={"seed": "1"})["tags.method"]) == {"good", "naive", "lucky"}
    assert search(tracking_uri, "nlbench-toy", tags={"mlflow.user": "nobody-here"}).empty
    code = main(["leaderboard", "--suite", "toy", "--tracking-uri", tracking_uri, "--tag", "seed"])
    assert code == ExitCode.USAGE_ERROR and "--tag must look like KEY=VALUE" in capsys.readouterr().err
