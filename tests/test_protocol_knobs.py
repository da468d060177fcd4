"""The knobs published protocols need: iterations per experience, activation and dropout, MNIST padding and
standardisation, class order from the seed, domain-incremental splits, per-experience labels of permuted streams,
LwF's per-experience alpha and CE scaling, EWC's per-sample Fisher, SI's importance cap, scenario-level [train]."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from nlbench.core.errors import UsageError
from nlbench.core.registry import SCENARIOS, get_method
from nlbench.data.sources.mnist import MNIST_MEAN, MNIST_STD, standardize, to_float
from nlbench.methods.models import TaskMaskedClassifier
from nlbench.nn import MLP
from nlbench.optim.periods import steps_per_experience
from nlbench.run.execute import seed_everything
from nlbench.run.suite import parse_suite


def learner_for(method, scenario, hp=None, **options):
    data = SCENARIOS.get(scenario)(**options).build(0)
    seed_everything(0)
    resolved = get_method(method).resolve({"hidden_sizes": [16], **(hp or {})})
    return get_method(method)().make_learner(resolved, data, "cpu"), data


def count_steps(learner):
    optimizer, calls = learner.strategy.optimizer, []
    step = optimizer.step

    def counted(*args, **kwargs):
        calls.append(1)
        return step(*args, **kwargs)

    optimizer.step = counted
    return calls


def test_iterations_train_exactly_that_many_steps_per_experience_across_passes():
    learner, data = learner_for("naive", "split-digits", {"iterations": 23, "batch_size": 32, "epochs": 1},
                                n_experiences=2)
    assert len(data.experiences[0].y_train) / 32 < 23  # more than one pass over the data
    calls = count_steps(learner)
    learner.train_experience(0)
    assert len(calls) == 23
    learner.train_experience(1)  # the stop of experience 0's last pass does not cut experience 1 short
    assert len(calls) == 46


def test_iterations_set_the_steps_a_cms_period_in_experiences_resolves_to():
    assert steps_per_experience([300, 280], 32, 5, iterations=500) == 500
    assert steps_per_experience([320], 32, 2) == 20


def test_mlp_activation_and_dropout():
    net = MLP(8, [4, 4], 3, "tanh", 0.5)
    kinds = [type(m).__name__ for m in net.net]
    assert kinds == ["Flatten", "Linear", "Tanh", "Dropout", "Linear", "Tanh", "Dropout", "Linear"]
    assert list(MLP(8, [4], 3).state_dict()) == ["net.1.weight", "net.1.bias", "net.3.weight", "net.3.bias"]
    net.train()
    x = torch.ones(2, 8)
    first = net(x)
    assert any(not torch.equal(first, net(x)) for _ in range(20))  # dropout is live in training
    net.eval()
    assert torch.equal(net(x), net(x))


def test_mnist_padding_and_standardisation():
    images = np.full((2, 28, 28), 255, dtype=np.uint8)
    x = to_float(images, pad=2)
    assert x.shape == (2, 32, 32) and x[0, 0, 0] == 0 and x[0, 2, 2] == 1
    z = standardize(x, {"normalize": True})
    assert torch.allclose(z[0, 0, 0], torch.tensor(-MNIST_MEAN / MNIST_STD))
    assert standardize(x, {"normalize": False}) is x


def test_class_order_from_the_seed_is_a_permutation_fixed_by_the_seed():
    make = SCENARIOS.get("split-digits")
    orders = [[c for e in make(shuffle_classes=True).build(seed).experiences for c in e.classes] for seed in (0, 0, 1)]
    assert sorted(orders[0]) == list(range(10)) and orders[0] == orders[1] and orders[0] != orders[2]
    assert orders[0] != list(range(10))


def test_domain_incremental_split_labels_each_class_by_its_place_in_its_experience():
    plain = SCENARIOS.get("split-digits")(shuffle_classes=True).build(3)
    domain = SCENARIOS.get("split-digits")(shuffle_classes=True, domain_incremental=True).build(3)
    assert domain.info.setting == "domain-incremental" and domain.info.n_classes == 2
    for p, d in zip(plain.experiences, domain.experiences, strict=True):
        assert d.classes == (0, 1) and torch.equal(p.x_train, d.x_train)
        first = p.y_train == p.classes[0]
        assert torch.equal(d.y_train, (~first).long())  # the experience's first class is 0, its second 1


@pytest.mark.parametrize("setting, task_labels", [("task-incremental", [0, 1, 2]), ("class-incremental", [0, 0, 0])])
def test_permuted_stream_with_its_own_labels_per_experience(setting, task_labels):
    shared = SCENARIOS.get("permuted-digits")(n_experiences=3).build(0)
    own = SCENARIOS.get("permuted-digits")(n_experiences=3, setting=setting).build(0)
    assert own.info.setting == setting and own.info.n_classes == 30
    assert [e.task_label for e in own.experiences] == task_labels
    for i, (s, o) in enumerate(zip(shared.experiences, own.experiences, strict=True)):
        assert torch.equal(o.y_test, s.y_test + 10 * i) and o.classes == tuple(range(10 * i, 10 * i + 10))


def test_lwf_alpha_per_experience_repeats_its_last_entry_and_scales_the_cross_entropy():
    from baselines.lwf import lwf_plugin

    plugin = lwf_plugin([0.0, 4.0, 8.0], 2.0, "1/t")
    for seen, alpha in ((0, 0.0), (1, 4.0), (2, 8.0), (5, 8.0)):
        plugin.lwf.expcount = seen
        strategy = SimpleNamespace(loss=torch.tensor(6.0), mb_x=None, mb_output=None, model=None)
        plugin.before_backward(strategy)  # no teacher yet: the penalty is 0, only the CE scaling shows
        assert plugin.lwf.alpha == alpha and float(strategy.loss) == pytest.approx(6.0 / (seen + 1))
    unscaled = lwf_plugin(1.0, 2.0, "1")
    strategy = SimpleNamespace(loss=torch.tensor(6.0), mb_x=None, mb_output=None, model=None)
    unscaled.lwf.expcount = 3
    unscaled.before_backward(strategy)
    assert float(strategy.loss) == 6.0 and unscaled.lwf.alpha == 1.0


def test_lwf_trains_with_task_labels_and_all_heads_come_from_one_pass():
    learner, _ = learner_for("lwf", "split-digits", {"epochs": 1}, n_experiences=2, task_incremental=True)
    learner.train_experience(0)
    learner.train_experience(1)  # the teacher is asked for every head (task_labels None)
    model = learner.strategy.model
    x = torch.randn(5, 8, 8)
    heads = model.forward_all_tasks(x)
    assert set(heads) == {0, 1}
    for t, logits in heads.items():
        assert torch.equal(logits, model.forward_single_task(x, t))


def test_per_sample_fisher_matches_one_backward_per_sample():
    from baselines.ewc import sample_fisher, sample_fisher_reference

    torch.manual_seed(0)
    net = MLP(12, [7, 5], 6).double()
    x, t = torch.randn(9, 12, dtype=torch.float64), torch.tensor([0, 1] * 4 + [0])
    for model in (net, TaskMaskedClassifier(net, [(0, 1, 2), (3, 4, 5)], 6).double()):
        fast, slow = sample_fisher(model, x, t), sample_fisher_reference(model, x, t)
        assert set(fast) == set(slow) and all(torch.allclose(fast[k], slow[k], atol=1e-12) for k in fast)
    # The batch estimate is not the per-sample one: the mean of squares is not the square of the mean.
    per_sample = sample_fisher(net, x, t)["net.1.weight"] / len(x)
    batch = torch.autograd.grad(torch.nn.functional.cross_entropy(net(x), net(x).argmax(1)), net.net[1].weight)[0]
    assert not torch.allclose(batch.pow(2), per_sample)


def test_ewc_with_the_per_sample_fisher_trains_and_penalises():
    from avalanche.training.plugins import EWCPlugin

    learner, _ = learner_for("ewc", "split-digits", {"epochs": 1, "fisher": "sample"}, n_experiences=2)
    learner.train_experience(0)
    plugin = next(p for p in learner.strategy.plugins if isinstance(p, EWCPlugin))
    importance = torch.cat([v.data.flatten() for v in plugin.importances[0].values()])
    assert importance.min() >= 0 and importance.max() > 0


@pytest.mark.parametrize("clip, capped", [(0.001, True), (0.0, False)])
def test_si_importance_cap(clip, capped):
    from avalanche.training.plugins import SynapticIntelligencePlugin

    learner, _ = learner_for("si", "split-digits", {"epochs": 3, "si_clip": clip, "optimizer": "adam",
                                                    "lr": 0.01}, n_experiences=2)
    learner.train_experience(0)
    plugin = next(p for p in learner.strategy.plugins if isinstance(p, SynapticIntelligencePlugin))
    top = max(float(v.data.max()) for v in plugin.ewc_data[1].values())
    assert (top <= 0.001 + 1e-7) == capped  # float32


SUITE = """
name = "s"
scenarios = ["a", "b"]
methods = ["naive", "ewc"]
[train]
lr = 0.05
epochs = 2
[scenario.a]
name = "split-digits"
[scenario.a.train]
lr = 0.01
iterations = 7
[scenario.b]
name = "split-digits"
[method.ewc]
lr = 0.02
"""


def test_scenario_train_table_sits_between_train_and_the_method_table():
    hp = {(c.scenario, c.method): c.hparams for c in parse_suite(SUITE, "s.toml").run_configs()}
    assert hp["a", "naive"]["lr"] == 0.01 and hp["a", "naive"]["iterations"] == 7
    assert hp["a", "ewc"]["lr"] == 0.02 and hp["a", "ewc"]["iterations"] == 7  # [method.ewc] wins
    assert hp["b", "naive"]["lr"] == 0.05 and hp["b", "naive"]["iterations"] == 0 and hp["b", "naive"]["epochs"] == 2


def test_a_bad_scenario_train_table_is_refused():
    with pytest.raises(UsageError, match=r"'iterations' parameter of \[scenario.a.train\].*Got -1"):
        parse_suite(SUITE.replace("iterations = 7", "iterations = -1"), "s.toml")
    with pytest.raises(UsageError, match=r"unknown parameter 'ewc_lambda' for \[scenario.a.train\]"):
        parse_suite(SUITE.replace("iterations = 7", "ewc_lambda = 1.0"), "s.toml")


def test_iterations_online_and_conflicting_split_options_are_refused():
    with pytest.raises(UsageError, match="'iterations'.*online"):
        get_method("naive").resolve({"iterations": 10, "online": True})
    with pytest.raises(UsageError, match="'class_order' or 'shuffle_classes'"):
        SCENARIOS.get("split-digits")(class_order=list(range(10)), shuffle_classes=True)
    with pytest.raises(UsageError, match="task- or domain-incremental"):
        SCENARIOS.get("split-digits")(task_incremental=True, domain_incremental=True)

