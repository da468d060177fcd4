"""The optimizers as CL methods: one strategy each, the `optimizer` key on any strategy, the memory policy."""

import re
import textwrap

import mlflow
import pytest

from nlbench.cli import ExitCode, main
from nlbench.core.errors import UsageError
from nlbench.core.params import defaults
from nlbench.core.registry import SCENARIOS, get_method
from nlbench.optim import OPTIMIZERS, load_state
from nlbench.run.config import RunConfig
from nlbench.run.execute import execute_run
from nlbench.run.suite import load_suite

STRATEGIES = [name for name, spec in OPTIMIZERS.items() if spec.strategy is not None]


def test_one_strategy_per_optimizer_each_naive_with_that_optimizer():
    assert set(STRATEGIES) >= {"delta-momentum", "deep-momentum", "dgd", "muon", "m3", "context-steered", "meta-opt"}
    assert set(OPTIMIZERS) - set(STRATEGIES) == {"sgd", "adam"}  # torch's own have no strategy of their own
    for name in STRATEGIES:
        method = get_method(name)
        hp = method.resolve()
        assert method.FAMILY == "nested" and hp["optimizer"] == name
        assert hp["optimizer_options"] == defaults(OPTIMIZERS[name].params)  # resolved, so MLflow logs every knob
        assert method().plugins(hp, None) == []  # naive fine-tuning: the optimizer is the only change


def test_optimizer_key_works_with_nested_strategies_and_is_logged(tracking_uri, tmp_path, capsys):
    suite = tmp_path / "opt.toml"
    suite.write_text(textwrap.dedent("""
        name = "opt-test"
        seeds = [0]
        scenarios = ["split-digits"]
        methods = ["cms", "hope", "muon", "meta-opt"]
        [train]
        epochs = 1
        [scenario.split-digits]
        n_experiences = 2
        [method.cms]
        optimizer = "m3"
        lr = 0.003
        level_lr_rule = "equal"  # at M3's small lr, every level and the base need the full rate in one epoch
        base_lr_scale = 1.0
        optimizer_options = {period = 4}
        save_optimizer_state = true
        [method.hope]
        optimizer = "dgd"
        dim = 8
        memory_hidden = 8
        [method.muon]
        optimizer_memory = "reset"
        save_optimizer_state = true
    """))
    code = main(["run", str(suite), "--tracking-uri", tracking_uri, "--no-progress"])
    assert code == ExitCode.OK, capsys.readouterr().out
    mlflow.set_tracking_uri(tracking_uri)
    runs = mlflow.search_runs(experiment_names=["nlbench-opt-test"], filter_string="tags.kind = 'run'")
    runs = runs.set_index("tags.method")
    assert (runs["status"] == "FINISHED").all()
    assert runs.loc["cms", "params.optimizer"] == "m3" and runs.loc["cms", "params.optimizer_options.period"] == "4"
    assert runs.loc["cms", "params.optimizer_options.decays"] == "[0.95, 0.99, 0.999]"
    assert runs.loc["hope", "params.optimizer"] == "dgd"
    assert runs.loc["muon", "params.optimizer_memory"] == "reset"
    assert (runs["metrics.acc/exp1"] > 0.2).all()  # above chance (0.1) on the last experience after 1 epoch
    # The saved optimizer states load back into an optimizer built the same way.
    client = mlflow.MlflowClient(tracking_uri)
    data = SCENARIOS.get("split-digits")(n_experiences=2).build(0)
    for method, hp in (("cms", {"optimizer": "m3", "optimizer_options": {"period": 4}}), ("muon", {})):
        run_id = runs.loc[method, "run_id"]
        files = [a.path for a in client.list_artifacts(run_id, "optimizer_state")]
        assert files == ["optimizer_state/exp0.pt", "optimizer_state/exp1.pt"], method
        strategy = get_method(method)()
        hp = strategy.for_stream(strategy.resolve(hp), data)
        optimizer = strategy.make_optimizer(strategy.build_model(hp, data.info), hp)
        load_state(optimizer, client.download_artifacts(run_id, "optimizer_state/exp1.pt", str(tmp_path)))
        state = optimizer.state_dict()
        assert (state["levels"]["base"]["optimizer"] if method == "cms" else state)["state"], method


@pytest.mark.parametrize(("policy", "resets"), [("keep", 0), ("reset", 4)])
def test_memory_policy_resets_at_each_new_experience(monkeypatch, policy, resets):
    import nlbench.methods.avalanche

    calls = []
    monkeypatch.setattr(nlbench.methods.avalanche, "reset_memory", lambda opt: calls.append(type(opt).__name__))
    hp = get_method("muon").resolve({"epochs": 1, "optimizer_memory": policy})
    result = execute_run(RunConfig("t", "split-digits", "split-digits", {"n_experiences": 5}, "muon", "muon", hp, 0))
    assert result.ok, result.error
    assert calls == ["Muon"] * resets  # before experiences 1 to 4, never before the first


@pytest.mark.parametrize(("table", "message"), [
    ('optimizer = "lbfgs"', "'optimizer' parameter of method 'naive' must be one of 'sgd', 'adam'"),
    ('optimizer = "m3"\noptimizer_options = {periods = 3}', "unknown parameter 'periods' for optimizer 'm3'"),
    ('optimizer = "m3"\noptimizer_options = {decays = [0.9, 0.9]}', "'decays' parameter of optimizer 'm3'"),
    ('optimizer = "meta-opt"\nlr = 0.9', "'lr' of method 'naive' must lie within optimizer_options.lr_bounds"),
    ('optimizer_memory = "forget"', "'optimizer_memory' parameter of method 'naive' must be one of 'keep'"),
])
def test_bad_optimizer_settings_are_one_line_usage_errors(tmp_path, table, message):
    path = tmp_path / "bad.toml"
    path.write_text(f'scenarios = ["split-digits"]\nmethods = ["naive"]\n[method.naive]\n{table}\n')
    with pytest.raises(UsageError, match=re.escape(message)) as info:
        load_suite(str(path))
    assert str(path) in str(info.value) and "\n" not in str(info.value)
