"""Cleveland heart disease: the classic single-task, 13-feature offline comparison."""

from __future__ import annotations

from nlbench.core.params import Boolean, Interval, Options, Param
from nlbench.core.registry import register_scenario
from nlbench.data.scenario import Experience, Scenario, Stream
from nlbench.data.sources.heart import heart_stream, load_heart, majority_chance


@register_scenario
class HeartCleveland(Scenario):
    """UCI heart disease, Cleveland only (303 rows), binary target num > 0, one experience."""

    NAME = "heart-cleveland"
    SETTING = "domain-incremental"
    PARAMS = {
        "features": Param("all", Options(("common", "all")), "the 10 attributes every site records, or all 13"),
        "test_size": Param(0.3, Interval(float, 0.05, 0.5), "share of each site held out for testing"),
        # 1 duplicate row in Hungarian, 1 in VA
        "deduplicate": Param(True, Boolean(), "drop exact duplicate rows of a site before splitting"),
    }

    def make_stream(self, seed: int) -> Stream:
        frames, source = load_heart(self.data_dir or None)
        return heart_stream(frames, ["cleveland"], self.options["features"], self.options["test_size"], seed,
                            source, self.options["deduplicate"])

    def check_data(self) -> None:
        load_heart(self.data_dir or None)

    def chance_acc(self, experiences: list[Experience], n_classes: int) -> float:
        return majority_chance(experiences)
