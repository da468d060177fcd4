"""Heart disease across hospitals: the UCI data, one experience per site (domain-incremental)."""

from __future__ import annotations

from nlbench.core.params import Boolean, ChoiceList, Interval, Options, Param
from nlbench.core.registry import register_scenario
from nlbench.data.scenario import Experience, Scenario, Stream
from nlbench.data.sources.heart import SITES, heart_stream, load_heart, majority_chance


@register_scenario
class HeartSites(Scenario):
    """UCI heart disease, one experience per hospital, binary target num > 0; domain-incremental."""

    NAME = "heart-sites"
    SETTING = "domain-incremental"
    PARAMS = {
        "sites": Param(["cleveland", "hungarian", "va", "switzerland"], ChoiceList(SITES), "the hospitals, in "
                                                                                         "experience order"),
        "features": Param("common", Options(("common", "all")), "the 10 attributes every site records, or all 13"),
        "test_size": Param(0.3, Interval(float, 0.05, 0.5), "share of each site held out for testing"),
        # 1 duplicate row in Hungarian, 1 in VA
        "deduplicate": Param(True, Boolean(), "drop exact duplicate rows of a site before splitting"),
    }

    def make_stream(self, seed: int) -> Stream:
        frames, source = load_heart(self.data_dir or None)
        return heart_stream(frames, self.options["sites"], self.options["features"], self.options["test_size"],
                            seed, source, self.options["deduplicate"])

    def check_data(self) -> None:
        load_heart(self.data_dir or None)

    def chance_acc(self, experiences: list[Experience], n_classes: int) -> float:
        # Switzerland is 93.5 % positive: uniform guessing (0.5) would be far too lenient a floor.
        return majority_chance(experiences)
