"""Permuted-MNIST: all ten digits under a different fixed pixel permutation per experience."""

from __future__ import annotations

from nlbench.core.params import Interval, Param
from nlbench.core.registry import register_scenario
from nlbench.data.scenario import Experience, Scenario
from nlbench.data.sources.mnist import MNIST_PARAMS, MNISTSource, domain_experiences
from nlbench.data.streams import (
    LABEL_SETTING,
    LabelSettingOption,
    labels_for_setting,
    permutation,
    permute_pixels,
)


@register_scenario
class PermutedMNIST(LabelSettingOption, MNISTSource, Scenario):
    """MNIST under N pixel permutations (default 10, experience 0 unpermuted); domain-, task- or class-incremental."""

    NAME = "permuted-mnist"
    SETTING = "domain-incremental"
    PARAMS = {"n_experiences": Param(10, Interval(int, 1, 100), "permutations (experience 0 is the identity)"),
              "setting": LABEL_SETTING, **MNIST_PARAMS}

    def make_experiences(self, seed: int) -> list[Experience]:
        side = 28 + 2 * self.options["pad"]
        experiences = domain_experiences(self.options, seed, self.options["n_experiences"],
                                         lambda x, i: permute_pixels(x, permutation(side * side, seed, i)),
                                         self.data_dir)
        return labels_for_setting(experiences, self.setting)
