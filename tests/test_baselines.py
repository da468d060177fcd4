"""Every Avalanche baseline really trains and fills the whole accuracy matrix on both digits scenarios."""

import numpy as np
import pytest

from nlbench.core.registry import BASELINES, SCENARIOS, get_method
from nlbench.run.config import RunConfig
from nlbench.run.execute import execute_run, seed_everything

AVALANCHE = ["naive", "cumulative", "ewc", "si", "lwf", "replay", "agem", "gem"]


def config(method, scenario, **options):
    hp = get_method(method).resolve({"epochs": 1, "hidden_sizes": [32]})
    return RunConfig("test", scenario, scenario, options, method, method, hp, 0, "cpu")


@pytest.mark.parametrize("method", AVALANCHE)
@pytest.mark.parametrize("scenario, options", [("split-digits", {"n_experiences": 2}),
                                               ("permuted-digits", {"n_experiences": 2})])
def test_baseline_fills_accuracy_matrix(method, scenario, options):
    r = execute_run(config(method, scenario, **options))
    assert r.ok, r.traceback
    R = np.array(r.R)
    assert R.shape == (2, 2) and np.isfinite(R).all()
    assert R[0, 0] > 0.5, "learned nothing on the first experience"


def test_baselines_are_all_registered_with_family_and_description():
    for name in AVALANCHE:
        cls = BASELINES.get(name)
        assert cls.FAMILY == "avalanche"
        assert cls.description()


def test_task_incremental_multi_head_beats_class_incremental_on_old_tasks():
    til = execute_run(config("naive", "split-digits", n_experiences=2, task_incremental=True))
    cil = execute_run(config("naive", "split-digits", n_experiences=2))
    assert til.ok and cil.ok
    # With the task label, the old task's head is still usable after training on the new one.
    assert til.R[1][0] > cil.R[1][0]


def test_si_importances_are_nonzero_on_cpu():
    """Guards our fix of Avalanche 0.6's SI, whose weight snapshots alias the live parameters on CPU."""
    from avalanche.training.plugins import SynapticIntelligencePlugin

    data = SCENARIOS.get("split-digits")(n_experiences=2).build(0)
    seed_everything(0)
    hp = get_method("si").resolve({"epochs": 1, "hidden_sizes": [16]})
    learner = get_method("si")().make_learner(hp, data, "cpu")
    learner.train_experience(0)
    plugin = next(p for p in learner.strategy.plugins if isinstance(p, SynapticIntelligencePlugin))
    importance = np.concatenate([v.data.numpy() for v in plugin.ewc_data[1].values()])
    assert np.abs(importance).max() > 0
