"""Time scales of the Nested Learning levels: periods in steps or experiences, the base level, per-level learning
rates, flat controls, retention across experiences, and the review fixes (nested resets, forwarded losses)."""

import math

import pytest
import torch

from nlbench.core.registry import SCENARIOS, get_method
from nlbench.nn.cms import ContinuumMemorySystem
from nlbench.optim import LevelScheduledOptimizer, model_levels
from nlbench.optim.periods import Period, PeriodRule, level_lr, parse_period, steps_per_experience
from nlbench.results.store import runs_frame, search


@pytest.mark.parametrize(("value", "period"), [
    (16, Period(16, "steps")), ("experience", Period(1.0, "experience")), ("2 experiences", Period(2.0, "experience")),
    ("0.5 exp", Period(0.5, "experience")), (" .25experience ", Period(0.25, "experience")),
])
def test_parse_period(value, period):
    assert parse_period(value) == period


@pytest.mark.parametrize("value", [0, -3, "fortnight", "-1 experience", "0 experiences", 2.5, True, [1]])
def test_parse_period_refuses(value):
    with pytest.raises(ValueError, match="period"):
        parse_period(value)
    assert not PeriodRule().accepts(value)


def test_periods_resolve_against_the_steps_of_an_experience():
    # 100 rows, batch 32: 4 minibatches per epoch (Avalanche keeps the last partial one); 3 epochs: 12 steps.
    assert steps_per_experience([100, 100], 32, 3) == 12
    assert steps_per_experience([100, 36], 32, 1) == 3  # mean of 4 and 2
    assert steps_per_experience([25], 32, 5, online_size=10) == 3  # sub-experiences of 10, 10, 5 rows
    assert parse_period("experience").steps(12) == 12
    assert parse_period("0.25 experience").steps(12) == 3
    assert parse_period("0.01 experience").steps(12) == 1  # never below one step
    assert parse_period(7).steps(12) == 7


def test_level_learning_rate_rules():
    assert level_lr(0.1, 16, "equal") == 0.1
    assert math.isclose(level_lr(0.1, 16, "inverse-period"), 0.1 / 16)
    with pytest.raises(ValueError, match="level_lr_rule"):
        level_lr(0.1, 4, "sqrt")


def _split(n_experiences=2, seed=0):
    return SCENARIOS.get("permuted-digits")(n_experiences=n_experiences).build(seed)


def _learner(name, data, **hp):
    method = get_method(name)()
    return method.make_learner(method.resolve({"epochs": 1, **hp}), data, "cpu")


def _params(model, prefix):
    return {n: p.detach().clone() for n, p in model.named_parameters() if n.startswith(prefix)}


def test_a_run_logs_its_resolved_schedule():
    data = _split()
    learner = _learner("cms", data, frequencies=[1, "0.5 experience"], base_period="experience",
                       level_lr_rule="inverse-period", lr=0.1)
    per = steps_per_experience([len(e.x_train) for e in data.experiences], 32, 1)
    schedule = learner.learned_params["schedule"]
    assert schedule == {"steps_per_experience": per, "resolved_frequencies": [1, round(per / 2)],
                        "resolved_base_period": per,
                        "resolved_level_lrs": [float(f"{0.1 * 0.1 / per:.6g}"), 0.1,  # the base at 0.1 lr by default
                                               float(f"{0.1 / round(per / 2):.6g}")]}
    periods = {lv.spec.name: lv.spec.period for lv in learner.strategy.optimizer.levels}
    assert periods == {"base": per, "cms.level0": 1, "cms.level1": round(per / 2)}


def test_a_level_slower_than_an_experience_is_frozen_through_it_and_moves_by_the_summed_step_at_its_boundary():
    """Retention: period 2 experiences with partial_chunk = carry; plain SGD, so the move is -lr * sum of grads."""
    data = _split()
    learner = _learner("cms", data, frequencies=[1, "2 experiences"], partial_chunk="carry", lr=0.05,
                       level_lr_rule="equal")
    model = learner.strategy.model
    slow = {n: p for n, p in model.named_parameters() if ".blocks.1." in n}
    grads = {n: [] for n in slow}
    for n, p in slow.items():
        p.register_hook(lambda g, n=n: grads[n].append(g.detach().clone()))
    start = {n: p.detach().clone() for n, p in slow.items()}
    learner.train_experience(0)
    assert all(torch.equal(p, start[n]) for n, p in slow.items()), "the slow level moved inside its period"
    learner.train_experience(1)
    assert learner.strategy.optimizer.steps == 2 * learner.learned_params["schedule"]["steps_per_experience"]
    for n, p in slow.items():
        expected = start[n] - 0.05 * torch.stack(grads[n]).sum(0)
        torch.testing.assert_close(p.detach(), expected, rtol=0, atol=1e-6)
        assert not torch.equal(p, start[n])


def test_over_two_tasks_the_slow_level_drifts_less_than_the_fast_one():
    data = _split()
    learner = _learner("cms", data, frequencies=[1, "experience"], level_lr_rule="inverse-period")
    model = learner.strategy.model
    learner.train_experience(0)
    after0 = {k: _params(model, f"net.cms.blocks.{k}") or _params(model, f"cms.blocks.{k}") for k in (0, 1)}
    learner.train_experience(1)
    drift = {}
    for k, before in after0.items():
        now = {n: p.detach() for n, p in model.named_parameters() if n in before}
        assert now, f"level {k} has no parameters under that name"
        drift[k] = math.sqrt(sum(float((now[n] - before[n]).pow(2).sum()) for n in before)) / math.sqrt(
            sum(float(before[n].pow(2).sum()) for n in before))
    assert drift[1] < 0.2 * drift[0], drift


def test_a_frozen_base_never_changes_and_is_not_trainable():
    data = _split()
    learner = _learner("cms", data, base_lr_scale=0.0)
    model = learner.strategy.model
    base = {n: p.detach().clone() for n, p in model.named_parameters() if ".cms." not in f".{n}"}
    assert base and all(not p.requires_grad for n, p in model.named_parameters() if n in base)
    learner.train_experience(0)
    assert all(torch.equal(p, base[n]) for n, p in model.named_parameters() if n in base)
    cms_only = sum(p.numel() for n, p in model.named_parameters() if n not in base)
    assert learner.n_trainable_params == cms_only


def test_a_base_period_in_steps_holds_the_base_level_between_its_boundaries():
    torch.manual_seed(0)
    from nlbench.nn.cms import CMSClassifier

    model = CMSClassifier(4, 3, 4, 5, periods=(1,)).double()
    opt = LevelScheduledOptimizer(model_levels(model, base_period=3), lambda ps, s: torch.optim.SGD(ps, lr=0.1))
    head = model.head[1].weight
    before = head.detach().clone()
    for t in range(1, 4):
        opt.zero_grad()
        model(torch.randn(5, 4, dtype=torch.float64)).pow(2).mean().backward()
        opt.step()
        assert torch.equal(head, before) == (t < 3), t


@pytest.mark.parametrize(("model", "control"), [("cms", "cms-flat"), ("hope", "hope-flat")])
def test_flat_controls_have_the_same_model_and_one_plain_optimizer(model, control):
    data = SCENARIOS.get("split-digits")(n_experiences=2).build(0)
    nested, flat = _learner(model, data), _learner(control, data)
    assert control == get_method(model).CONTROL and get_method(control).CONTROL is None
    assert nested.n_trainable_params == flat.n_trainable_params
    assert not hasattr(flat.strategy.optimizer, "levels")  # one torch optimizer, every parameter at lr
    assert {"frequencies", "level_lrs", "base_period"}.isdisjoint(get_method(control).params())
    flat.train_experience(0)


def test_nested_cms_resets_the_fast_levels_optimizer_state_with_its_weights():
    torch.manual_seed(0)
    cms = ContinuumMemorySystem(3, 5, (1, 2), "nested").double()
    opt = LevelScheduledOptimizer(model_levels(cms), lambda ps, s: torch.optim.SGD(ps, lr=0.1, momentum=0.9))
    fast = next(lv for lv in opt.levels if lv.spec.name == "level0")
    for t in range(2):
        opt.zero_grad()
        cms(torch.randn(4, 3, dtype=torch.float64)).pow(2).mean().backward()
        opt.step()
        has_momentum = any("momentum_buffer" in s for s in fast.optimizer.state.values())
        assert has_momentum == (t == 0), "the re-initialised fast level kept the moments of its previous context"


def test_the_level_schedule_forwards_each_loss_to_every_level_that_learns_from_it():
    data = SCENARIOS.get("split-digits")(n_experiences=2).build(0)
    learner = _learner("cms", data, optimizer="meta-opt", lr=0.1, momentum=0.5)
    learner.train_experience(0)
    for lv in learner.strategy.optimizer.levels:
        assert lv.optimizer.meta["loss"] is not None and lv.optimizer.meta["loss_ema"] is not None, lv.spec.name


def test_stream_memory_carries_along_minibatches_and_resets_per_experience():
    data = SCENARIOS.get("split-digits")(n_experiences=2).build(0)
    learner = _learner("titans", data, memory_scope="stream", memory_reset="experience", dim=8, memory_hidden=8)
    titans = next(m for m in learner.strategy.model.modules() if hasattr(m, "reset_stream_memory"))
    learner.train_experience(0)
    carried = {n: b.clone() for n, b in titans.carried.named_buffers()}
    assert carried and any(b.abs().sum() > 0 for b in carried.values())
    learner.predict(data.experiences[0].x_test[:50], 0)  # evaluation reads the memory, never writes it
    assert all(torch.equal(b, carried[n]) for n, b in titans.carried.named_buffers())
    reset = []
    titans.reset_stream_memory = lambda: reset.append(True)  # the plugin calls it at the next experience's start
    learner.train_experience(1)
    assert reset == [True]


CONTROLLED_SUITE = """
name = "controls"
seeds = [0, 1]
scenarios = ["split-digits"]
methods = ["naive", "cms", "cms-flat", "cms-fast", "cms-wide"]
[train]
epochs = 1
[scenario.split-digits]
n_experiences = 2
[method.cms-fast]
name = "cms"
frequencies = [1, 2, 4]
[method.cms-wide]  # a different model: no flat control of its own here
name = "cms"
cms_hidden = 16
"""


def test_reports_pair_each_schedule_with_the_flat_control_of_the_same_model(tmp_path, tracking_uri):
    import pandas as pd

    from nlbench.cli import ExitCode, main

    suite = tmp_path / "controls.toml"
    suite.write_text(CONTROLLED_SUITE, encoding="utf-8")
    assert main(["run", str(suite), "--tracking-uri", tracking_uri, "--no-progress"]) == ExitCode.OK
    out = tmp_path / "board"
    assert main(["leaderboard", "--suite", "controls", "--tracking-uri", tracking_uri, "--out", str(out)]) == 0
    board = pd.read_csv(out / "leaderboard.csv").set_index("method")
    assert board.loc["cms", "control"] == "cms-flat" and board.loc["cms-fast", "control"] == "cms-flat"
    assert pd.isna(board.loc["cms-wide", "control"]) and pd.isna(board.loc["naive", "control"])
    runs = search(tracking_uri, "nlbench-controls")
    frame = runs_frame(runs)
    acc = {m: g.set_index("seed")["acc"] for m, g in frame.groupby("method")}
    assert board.loc["cms", "vs_control"] == pytest.approx((acc["cms"] - acc["cms-flat"]).mean(), abs=1e-6)
    assert "`vs_control`" in (out / "LEADERBOARD.md").read_text(encoding="utf-8")

    study = tmp_path / "study"
    assert main(["nested-report", "--suite", "controls", "--tracking-uri", tracking_uri, "--out", str(study)]) == 0
    table = pd.read_csv(study / "nested.csv").set_index("method")
    assert set(table.index) == {"cms", "cms-flat", "cms-fast", "cms-wide"}
    assert table.loc["cms", "control"] == "cms-flat" and pd.isna(table.loc["cms-wide", "control"])
    assert str(table.loc["cms", "acc vs control"]).startswith(f"{(acc['cms'] - acc['cms-flat']).mean():+.3f}")
    assert float(table.loc["cms", "slowest (exp)"]) == 1.0  # the default slowest level spans an experience
    assert (study / "plots" / "forgetting_vs_slowest_period.png").stat().st_size > 0
    assert (study / "plots" / "forgetting_vs_base_lr.png").stat().st_size > 0
