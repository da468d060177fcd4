"""The reproduction report: the published table, the rule that marks a cell reproduced, and `nlbench run` of a
suite with report = "reproduce" writing it."""

import math

import pandas as pd
import pytest

from nlbench.cli import ExitCode, main
from nlbench.results.reproduce import METHODS, PUBLISHED, SETTINGS, cells, report, reproduces, scenario_label
from nlbench.results.tables import Estimate
from nlbench.run.suite import load_suite


@pytest.mark.parametrize("ours, expected", [
    (Estimate(3, 0.87, 0.01, 0.01), True),  # within 0.03
    (Estimate(3, 0.95, 0.1, 0.2), True),  # the paper's 0.85 inside the interval
    (Estimate(3, 0.95, 0.01, 0.01), False),
    (Estimate(1, 0.90, math.nan, math.nan), False),  # one seed: no interval, 0.05 away
    (Estimate(1, 0.82, math.nan, math.nan), True),
    (Estimate(0, math.nan, math.nan, math.nan), False),
])
def test_a_cell_reproduces_within_the_tolerance_or_inside_the_interval(ours, expected):
    assert reproduces(0.85, ours) is expected


def test_the_suite_holds_every_published_cell():
    suite = load_suite("reproduce")
    assert set(suite.methods) == set(METHODS)
    assert set(suite.scenarios) == {scenario_label(s, k) for s in PUBLISHED for k in SETTINGS}
    assert sum(len(m) * len(SETTINGS) for m in PUBLISHED.values()) == 36


def frame(rows):
    return pd.DataFrame(rows, columns=["scenario", "method", "seed", "acc", "train_s", "eval_s"])


def test_cells_compare_each_published_number_with_the_runs_of_its_labels():
    runs = frame([("split-ti", "ewc", s, a, 10.0, 1.0) for s, a in enumerate((0.85, 0.86, 0.84))]
                 + [("split-ci", "none", 0, 0.5, 10.0, 1.0)])
    table = cells(runs)
    assert len(table) == 36
    ewc = table[(table["stream"] == "split") & (table["method"] == "ewc") & (table["setting"] == "Task-IL")].iloc[0]
    assert ewc["paper"] == pytest.approx(0.8548) and ewc["ours"].n == 3 and ewc["reproduced"]
    assert ewc["diff"] == pytest.approx(0.85 - 0.8548) and ewc["run_s"] == pytest.approx(11.0)
    none = table[(table["method"] == "none") & (table["setting"] == "Class-IL") & (table["stream"] == "split")].iloc[0]
    assert not none["reproduced"]
    assert table["reproduced"].isna().sum() == 34
    text, _ = report(runs, ["header"])
    assert "reproduces 1 of the 2 published cells it ran (36 published" in text
    assert "| EWC | Task-IL | 0.8548 | 0.850 ± 0.025 (n=3) | -0.005 | yes |" in text
    assert "| None | Class-IL | 0.1990 | 0.500 (n=1) | +0.301 | no |" in text
    assert "Permuted MNIST (10 tasks)" in text and "Not run here." in text


def test_run_of_a_reproduce_suite_writes_the_report(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.toml").write_text('name = "tiny-reproduce"\nscenarios = ["split-ti"]\nmethods = ["none"]\n'
                                     'report = "reproduce"\n[train]\niterations = 5\nhidden_sizes = [8]\n'
                                     '[scenario.split-ti]\nname = "split-digits"\ntask_incremental = true\n'
                                     "n_experiences = 5\n[method.none]\nname = \"naive\"\n")
    code = main(["run", "s.toml", "--tracking-uri", f"sqlite:///{tmp_path}/m.db", "--no-progress",
                 "--report-dir", "out", "--backend", "serial"])
    assert code == ExitCode.OK
    text = (tmp_path / "out" / "reproduce.md").read_text()
    assert "of the 1 published cells it ran" in text and "Suite `tiny-reproduce`, 1 finished runs" in text
    assert "Reproduction report: out/reproduce.md" in capsys.readouterr().out
    csv = pd.read_csv(tmp_path / "out" / "reproduce.csv")
    assert len(csv) == 36 and {"ours_mean", "ours_ci95", "paper"} <= set(csv.columns)
