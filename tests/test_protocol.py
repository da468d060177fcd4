"""The protocol fills R and b as specified, and the same seed gives the same matrix."""

import numpy as np
import torch

from nlbench.core.registry import SCENARIOS
from nlbench.methods.base import Learner
from nlbench.run.config import RunConfig
from nlbench.run.execute import execute_run
from nlbench.run.protocol import run_protocol


class LookupLearner(Learner):
    """Knows experience j exactly once it has trained on it; predicts class -1 otherwise."""

    def __init__(self, data):
        self.data, self.learned = data, set()

    def train_experience(self, index):
        self.learned.add(index)

    def predict(self, x, task_label):
        for j, e in enumerate(self.data.experiences):
            if x is e.x_test:
                return e.y_test.clone() if j in self.learned else torch.full_like(e.y_test, -1)
        raise AssertionError("unexpected input")

    @property
    def n_trainable_params(self):
        return 0


def test_protocol_evaluates_before_training_and_after_each_experience():
    data = SCENARIOS.get("split-digits")(n_experiences=5).build(0)
    seen_rows = []
    res = run_protocol(LookupLearner(data), data, on_experience=lambda i, row: seen_rows.append(i))
    assert seen_rows == [0, 1, 2, 3, 4]
    assert np.array_equal(res.b, np.zeros(5))
    assert np.array_equal(res.R, np.tril(np.ones((5, 5))))
    assert res.train_time_s >= 0 and res.eval_time_s > 0


def tiny_config(method="naive", seed=0, **hp):
    from nlbench.core.registry import get_method

    hparams = get_method(method).resolve({"epochs": 1, "hidden_sizes": [32], **hp})
    return RunConfig("test", "split-digits", "split-digits", {"n_experiences": 2}, method, method,
                     hparams, seed, "cpu")


def test_same_seed_gives_identical_accuracy_matrix():
    a, b = execute_run(tiny_config(seed=1)), execute_run(tiny_config(seed=1))
    assert a.ok and b.ok
    assert a.R == b.R and a.b == b.b
    c = execute_run(tiny_config(seed=2))
    assert c.R != a.R


def test_run_reports_time_memory_and_parameters():
    r = execute_run(tiny_config())
    assert r.ok, r.traceback
    assert r.n_params == (64 * 32 + 32) + (32 * 10 + 10)
    assert r.train_time_s > 0 and r.peak_mem_mb > 10
    assert set(r.summary) == {"acc", "forgetting", "bwt", "fwt", "la", "avg_inc_acc"}


def test_nan_loss_fails_the_run_with_its_error():
    r = execute_run(tiny_config(lr=1e30, optimizer="sgd", momentum=0.0))
    assert r.status == "FAILED"
    assert r.error.startswith("NonFiniteLossError: loss became")
    assert "Traceback" in r.traceback
