"""The harness template's per-iteration events call exactly the hooks Avalanche's `trigger_plugins` would."""

from avalanche.core import SupervisedPlugin

from nlbench.core.registry import SCENARIOS, get_method
from nlbench.methods.hooks import ITERATION_EVENTS, listeners


class Recorder(SupervisedPlugin):
    def __init__(self, name, log):
        super().__init__()
        self.name, self.log = name, log

    def __getattribute__(self, item):
        if item in ITERATION_EVENTS:
            return lambda strategy, **kw: self.log.append((self.name, item, strategy.clock.train_epoch_iterations))
        return object.__getattribute__(self, item)


class AddsOneAfterTheFirstEpoch(SupervisedPlugin):
    def __init__(self, log):
        super().__init__()
        self.log = log

    def after_training_epoch(self, strategy, **kwargs):
        if strategy.clock.train_exp_epochs == 0:
            strategy.plugins.append(Recorder("late", self.log))


class OnlyUpdates(SupervisedPlugin):
    def before_update(self, strategy, **kwargs):
        pass


def test_listeners_skip_inherited_no_ops_and_keep_the_plugins_order():
    a, b = OnlyUpdates(), OnlyUpdates()
    b.after_forward = lambda strategy, **kw: None  # set on the instance: called, as Avalanche would
    assert listeners([a, object(), b], "before_update") == [a.before_update, b.before_update]
    assert listeners([a, b], "after_forward") == [b.after_forward]
    assert listeners([a, b], "before_backward") == []


def events_of(template_of):
    data = SCENARIOS.get("split-digits")(n_experiences=2).build(0)
    hp = get_method("naive").resolve({"epochs": 2, "batch_size": 200})
    learner = get_method("naive")().make_learner(hp, data, "cpu")
    log: list = []
    strategy = learner.strategy
    strategy.plugins[:0] = [Recorder("first", log), AddsOneAfterTheFirstEpoch(log)]
    template_of(strategy)
    learner.train_experience(0)
    return log


def test_the_same_calls_in_the_same_order_as_avalanches_trigger():
    from avalanche.training.templates import SupervisedTemplate

    def avalanches(strategy):  # the same object, with Avalanche's own event methods
        for event in ("before_training_epoch", *ITERATION_EVENTS):
            setattr(strategy, f"_{event}", getattr(SupervisedTemplate, f"_{event}").__get__(strategy))

    ours, theirs = events_of(lambda s: None), events_of(avalanches)
    assert ours == theirs and ("late", "before_forward", 0) in ours and len(ours) > 8 * 4
