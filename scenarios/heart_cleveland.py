"""Cleveland heart disease: the classic single-task, 13-feature offline comparison."""

from __future__ import annotations

from nlbench.core.params import Boolean, Interval, Options
from nlbench.core.registry import register_scenario
from nlbench.data.scenario import Experience, Scenario, Stream
from nlbench.data.sources.heart import heart_stream, load_heart, majority_chance


@register_scenario
class HeartCleveland(Scenario):
    """UCI heart disease, Cleveland only (303 rows), binary target num > 0, one experience."""

    NAME = "heart-cleveland"
    SETTING = "domain-incremental"
    DEFAULTS = {"features": "all", "test_size": 0.3, "deduplicate": True}
    _parameter_constraints = {"features": Options(("common", "all")), "test_size": Interval(float, 0.05, 0.5),
                              "deduplicate": Boolean()}

    def make_stream(self, seed: int) -> Stream:
        frames, source = load_heart()
        return heart_stream(frames, ["cleveland"], self.options["features"], self.options["test_size"], seed,
                            source, self.options["deduplicate"])

    def check_data(self) -> None:
        load_heart()

    def chance_acc(self, experiences: list[Experience], n_classes: int) -> float:
        return majority_chance(experiences)
