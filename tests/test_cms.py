"""CMS: the Eq. 71 schedule (summed chunk gradients, no drops, no averaging), partial chunks, variants."""

import pytest
import torch

from nlbench.nn.cms import CMSClassifier, ContinuumMemorySystem, check_periods
from nlbench.optim import LevelScheduledOptimizer, model_levels

LR = 0.1


def make(periods=(1, 4), variant="sequential", seed=0):
    torch.manual_seed(seed)
    cms = ContinuumMemorySystem(3, 5, periods, variant).double()
    sgd = lambda params, spec: torch.optim.SGD(params, lr=LR)  # noqa: E731 - plain SGD: update = -lr * sum
    return cms, LevelScheduledOptimizer(model_levels(cms), sgd)


def snapshot(params):
    return [p.detach().clone() for p in params]


def step(cms, opt, t, record=None):
    """One Avalanche-style iteration: zero_grad, forward, backward, step; returns the step's own gradients."""
    g = torch.Generator().manual_seed(100 + t)
    x = torch.randn(6, 3, generator=g, dtype=torch.float64)
    opt.zero_grad()
    loss = cms(x).pow(2).mean()
    own = torch.autograd.grad(loss, record, retain_graph=True) if record else None
    loss.backward()
    opt.step()
    return own


def test_slow_level_is_frozen_between_boundaries_and_moves_by_minus_lr_times_the_summed_gradients():
    cms, opt = make((1, 4))
    slow = list(cms.blocks[1].parameters())
    before, total = snapshot(slow), None
    for t in range(1, 9):
        own = step(cms, opt, t, record=slow)
        total = list(own) if total is None else [a + b for a, b in zip(total, own, strict=True)]
        now = snapshot(slow)
        if t % 4:
            assert all(torch.equal(a, b) for a, b in zip(now, before, strict=True)), f"slow level moved at step {t}"
        else:
            for a, b, g in zip(now, before, total, strict=True):
                torch.testing.assert_close(a, b - LR * g, rtol=0, atol=1e-12)
            before, total = now, None


def test_fast_level_steps_every_iteration_and_zero_grad_keeps_pending_gradients():
    cms, opt = make((1, 4))
    fast = list(cms.blocks[0].parameters())
    slow = list(cms.blocks[1].parameters())
    before = snapshot(fast)
    step(cms, opt, 1)
    assert not any(torch.equal(a, b) for a, b in zip(snapshot(fast), before, strict=True))
    opt.zero_grad()
    assert all(p.grad is not None for p in slow) and all(p.grad is None for p in fast)
    assert opt.pending() == {"level0": 0, "level1": 1}


def test_partial_chunk_flush_applies_what_is_pending():
    cms, opt = make((1, 4))
    slow = list(cms.blocks[1].parameters())
    before, total = snapshot(slow), None
    for t in range(1, 3):  # an experience that ends after 2 of the 4 steps
        own = step(cms, opt, t, record=slow)
        total = list(own) if total is None else [a + b for a, b in zip(total, own, strict=True)]
    opt.flush()
    for a, b, g in zip(snapshot(slow), before, total, strict=True):
        torch.testing.assert_close(a, b - LR * g, rtol=0, atol=1e-12)
    assert opt.pending()["level1"] == 0


def test_partial_chunk_carry_keeps_the_gradients_for_the_next_boundary():
    cms, opt = make((1, 4))
    slow = list(cms.blocks[1].parameters())
    before = snapshot(slow)
    for t in range(1, 3):
        step(cms, opt, t)
    # no flush: the experience boundary changes nothing, the counter keeps running
    assert opt.pending()["level1"] == 2
    step(cms, opt, 3)
    assert all(torch.equal(a, b) for a, b in zip(snapshot(slow), before, strict=True))
    step(cms, opt, 4)
    assert not all(torch.equal(a, b) for a, b in zip(snapshot(slow), before, strict=True))


def test_nested_fast_level_restarts_from_its_initial_state_learned_at_the_parent_frequency():
    cms, opt = make((1, 2), variant="nested")
    fast = list(cms.blocks[0].parameters())
    init = list(cms.initial["0"].parameters())
    init_before, total = snapshot(init), None
    for t in range(1, 3):
        own = step(cms, opt, t, record=fast)
        total = list(own) if total is None else [a + b for a, b in zip(total, own, strict=True)]
        if t == 1:
            assert all(torch.equal(a, b) for a, b in zip(snapshot(init), init_before, strict=True))
    # at the parent's boundary: theta_0 <- theta_0 - lr * sum of the fast level's gradients, fast <- theta_0
    for a, b, g in zip(snapshot(init), init_before, total, strict=True):
        torch.testing.assert_close(a, b - LR * g, rtol=0, atol=1e-12)
    assert all(torch.equal(a, b) for a, b in zip(snapshot(fast), snapshot(init), strict=True))


def test_independent_variant_aggregates_levels_with_softmax_weights():
    cms, _ = make((1, 4, 16), variant="independent")
    with torch.no_grad():
        cms.agg_logits.copy_(torch.tensor([0.0, 1.0, 2.0]))
    x = torch.randn(2, 3, dtype=torch.float64)
    w = torch.softmax(torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64), 0)
    expected = x + sum(w[i] * cms.blocks[i](x) for i in range(3))
    torch.testing.assert_close(cms(x), expected)


def test_sequential_variant_is_a_residual_chain():
    cms, _ = make((1, 4))
    x = torch.randn(2, 3, dtype=torch.float64)
    h = x + cms.blocks[0](x)
    torch.testing.assert_close(cms(x), h + cms.blocks[1](h))


def test_model_levels_cover_every_trainable_parameter_once():
    torch.manual_seed(0)
    model = CMSClassifier(64, 10, 8, 16, periods=(1, 4, 16), variant="nested")
    levels = model_levels(model)
    ids = [id(p) for spec in levels for p in spec.params]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))
    assert {s.name: s.period for s in levels} == {
        "base": 1, "cms.level0": 1, "cms.level1": 4, "cms.level2": 16, "cms.level0.init": 4, "cms.level1.init": 16}


@pytest.mark.parametrize(("periods", "variant", "message"), [
    ((1, 4, 6), "nested", "not a multiple"),
    ((4, 4), "nested", "distinct"),
    ((), "sequential", "non-empty"),
    ((1, 4), "stacked", "cms_variant"),
])
def test_invalid_schedules_are_rejected(periods, variant, message):
    with pytest.raises(ValueError, match=message):
        check_periods(periods, variant)


@pytest.mark.parametrize(("partial_chunk", "pending_after_exp0"), [("flush", 0), ("carry", None)])
def test_strategy_keeps_one_schedule_across_experiences_and_handles_the_partial_chunk(partial_chunk,
                                                                                    pending_after_exp0):
    from nlbench.core.registry import SCENARIOS, get_method

    data = SCENARIOS.get("split-digits")(n_experiences=2).build(0)
    method = get_method("cms")()
    hp = method.resolve({"epochs": 1, "partial_chunk": partial_chunk, "frequencies": [1, 16]})
    learner = method.make_learner(hp, data, "cpu")
    optimizer = learner.strategy.optimizer
    groups = [[id(p) for p in lv.spec.params] for lv in optimizer.levels]
    n_batches = -(-len(data.experiences[0].y_train) // hp["batch_size"])
    learner.train_experience(0)
    assert optimizer.steps == n_batches  # one schedule step per minibatch
    expected = n_batches % 16 if pending_after_exp0 is None else pending_after_exp0
    assert expected != 0 or partial_chunk == "flush"
    assert optimizer.pending()["cms.level1"] == expected
    learner.train_experience(1)
    assert learner.strategy.optimizer is optimizer  # Avalanche did not rebuild or extend it
    assert [[id(p) for p in lv.spec.params] for lv in optimizer.levels] == groups
