"""Checks every registered method, scenario and optimizer passes, driven by the registries (scikit-learn's
`parametrize_with_checks`): a new one gets them without being added to any list here.

- Declarations: every parameter has a default its own rule accepts and a line of doc.
- Bad values: each rule's `invalid()` value is refused with the one-line template naming owner, key and value.
- Methods train: a 2-experience run fills the accuracy matrix, and the same seed gives the same matrix.
- nlbench's plugins are reached inside Avalanche's loop.
"""

import pytest

from nlbench.core.errors import UsageError
from nlbench.core.registry import SCENARIOS, get_method, method_names
from nlbench.optim.catalog import OPTIMIZERS, resolve_options
from nlbench.run.config import RunConfig
from nlbench.run.execute import execute_run

METHOD_PARAMS = [(m, key) for m in method_names() for key in get_method(m).params()]
SCENARIO_PARAMS = [(s, key) for s in SCENARIOS.names() for key in SCENARIOS.get(s).params()]
OPTIMIZER_PARAMS = [(o, key) for o in OPTIMIZERS for key in OPTIMIZERS[o].params]
FAST = {"epochs": 3, "hidden_sizes": [32], "n_estimators": 20}  # where a method has them


def check_declaration(params, owner):
    for key, p in params.items():
        assert p.doc and "\n" not in p.doc, f"{owner}: '{key}' needs a one-line doc"
        assert p.rule.accepts(p.default), f"{owner}: the default of '{key}' ({p.default!r}) breaks {p.rule}"
        assert not p.rule.accepts(p.rule.invalid()), f"{owner}: {p.rule}.invalid() is accepted"


@pytest.mark.parametrize("name", method_names())
def test_method_declares_each_hyperparameter_once_with_doc(name):
    method = get_method(name)
    check_declaration(method.params(), f"method '{name}'")
    assert method.description(), f"method '{name}' needs a docstring"
    assert method.resolve(method.defaults()) == method.resolve()


@pytest.mark.parametrize("name", SCENARIOS.names())
def test_scenario_declares_each_option_once_with_doc(name):
    scenario = SCENARIOS.get(name)
    check_declaration(scenario.params(), f"scenario '{name}'")
    assert scenario().options == scenario.defaults()


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_optimizer_declares_each_knob_once_with_doc(name):
    check_declaration(OPTIMIZERS[name].params, f"optimizer '{name}'")


def refused(call, owner, key, value):
    with pytest.raises(UsageError) as info:
        call({key: value})
    message = str(info.value)
    assert f"The '{key}' parameter of {owner} must be" in message and f"Got {value!r} instead." in message
    assert "\n" not in message


@pytest.mark.parametrize(("name", "key"), METHOD_PARAMS, ids=[f"{m}.{k}" for m, k in METHOD_PARAMS])
def test_method_refuses_a_bad_value_in_one_line(name, key):
    method = get_method(name)
    refused(method.resolve, f"method '{name}'", key, method.params()[key].rule.invalid())


@pytest.mark.parametrize(("name", "key"), SCENARIO_PARAMS, ids=[f"{s}.{k}" for s, k in SCENARIO_PARAMS])
def test_scenario_refuses_a_bad_value_in_one_line(name, key):
    scenario = SCENARIOS.get(name)
    refused(lambda options: scenario(**options), f"scenario '{name}'", key, scenario.params()[key].rule.invalid())


@pytest.mark.parametrize(("name", "key"), OPTIMIZER_PARAMS, ids=[f"{o}.{k}" for o, k in OPTIMIZER_PARAMS])
def test_optimizer_refuses_a_bad_value_in_one_line(name, key):
    refused(lambda options: resolve_options(name, options), f"optimizer '{name}' (optimizer_options)", key,
            OPTIMIZERS[name].params[key].rule.invalid())


def tiny_run(name, seed=0, **overrides):
    method = get_method(name)
    hp = method.resolve({k: v for k, v in FAST.items() if k in method.params()}, overrides)
    config = RunConfig("checks", "split-digits", "split-digits", {"n_experiences": 2}, name, name, hp, seed)
    result = execute_run(config)
    assert result.ok, result.traceback
    return result


@pytest.mark.parametrize("name", method_names())
def test_method_trains_and_the_same_seed_gives_the_same_matrix(name):
    first, again = tiny_run(name), tiny_run(name)
    assert len(first.R) == 2 and all(0.0 <= v <= 1.0 for row in first.R for v in row)
    # three epochs: well above the 0.2 of guessing among the first experience's five classes
    assert first.R[0][0] > 0.3, f"{name} learned nothing on the first experience: {first.R}"
    assert first.n_params > 0 and first.family == get_method(name).FAMILY
    assert again.R == first.R and again.b == first.b


def test_nlbench_plugins_are_reached_in_avalanches_loop(monkeypatch):
    """The loss observer feeds the meta-optimizer every minibatch; the flush ends each experience."""
    from nlbench.optim import LevelScheduledOptimizer
    from nlbench.optim.meta import MetaOptimizer

    seen, flushes = [], []
    real_observe, real_flush = MetaOptimizer.observe_loss, LevelScheduledOptimizer.flush
    monkeypatch.setattr(MetaOptimizer, "observe_loss", lambda self, loss: seen.append(loss) or real_observe(self, loss))
    monkeypatch.setattr(LevelScheduledOptimizer, "flush", lambda self: flushes.append(1) or real_flush(self))
    result = tiny_run("meta-opt", batch_size=64)
    batches = FAST["epochs"] * sum(-(-n // 64) for n in (720, 716))  # the two experiences' minibatches
    assert len(seen) == batches and all(v > 0 for v in seen), (len(seen), batches)
    assert result.ok and flushes == []
    tiny_run("cms")
    assert len(flushes) == 2
