"""Online streams: any scenario, small sub-experiences seen once, boundary work done once per experience."""

import math

import pytest

from nlbench.core.registry import SCENARIOS, get_method
from nlbench.run.config import RunConfig
from nlbench.run.execute import execute_run
from nlbench.run.suite import load_suite


def test_online_splits_each_experience_into_single_pass_sub_experiences():
    data = SCENARIOS.get("split-digits")(n_experiences=2).build(0)
    hp = get_method("naive").resolve({"online": True, "online_experience_size": 50, "batch_size": 10, "epochs": 5})
    assert hp["epochs"] == 1  # an online stream is seen once; the logged value says so
    learner = get_method("naive")().make_learner(hp, data, "cpu")
    learner.train_experience(0)
    assert learner.strategy.clock.train_exp_counter == math.ceil(len(data.experiences[0].y_train) / 50)
    assert learner.strategy.clock.train_exp_epochs == 1


@pytest.mark.parametrize("method", ["cms", "replay"])
def test_online_runs_finish_and_flush_once_per_experience(method, monkeypatch):
    from nlbench.optim import LevelScheduledOptimizer

    flushes = []
    real = LevelScheduledOptimizer.flush
    monkeypatch.setattr(LevelScheduledOptimizer, "flush", lambda self: flushes.append(1) or real(self))
    hp = get_method(method).resolve({"online": True, "online_experience_size": 64, "batch_size": 16})
    result = execute_run(RunConfig("t", "split-digits", "split-digits", {"n_experiences": 2}, method, method, hp, 0))
    assert result.ok, result.error
    assert len(result.R) == 2 and result.R[0][0] > 0.5  # the first experience was learned in one pass
    assert len(flushes) == (2 if method == "cms" else 0)  # the CMS partial chunks: at the end of each experience


def test_online_is_a_suite_option(tmp_path):
    path = tmp_path / "online.toml"
    path.write_text('scenarios = ["permuted-digits"]\nmethods = ["naive", "ewc"]\n[train]\nonline = true\n'
                    "online_experience_size = 20\nbatch_size = 10\n")
    configs = load_suite(str(path)).run_configs()
    assert all(c.hparams["online"] and c.hparams["epochs"] == 1 for c in configs)
