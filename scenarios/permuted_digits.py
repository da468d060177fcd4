"""Permuted-Digits: the whole digits set under a different fixed pixel permutation per experience."""

from __future__ import annotations

from nlbench.core.params import Interval, Param
from nlbench.core.registry import register_scenario
from nlbench.data.scenario import Experience, Scenario
from nlbench.data.sources.digits import load_digits_scaled
from nlbench.data.splits import TEST_SIZE, stratified_split
from nlbench.data.streams import (
    LABEL_SETTING,
    LabelSettingOption,
    labels_for_setting,
    permutation,
    permute_pixels,
)


@register_scenario
class PermutedDigits(LabelSettingOption, Scenario):
    """All 10 digit classes under N pixel permutations (experience 0 the identity); domain-, task- or class-IL."""

    NAME = "permuted-digits"
    SETTING = "domain-incremental"
    PARAMS = {
        "n_experiences": Param(5, Interval(int, 1, 100), "permutations (experience 0 is the identity)"),
        "test_size": TEST_SIZE,
        "setting": LABEL_SETTING,
    }

    def make_experiences(self, seed: int) -> list[Experience]:
        x, y = load_digits_scaled()
        # One stratified split shared by all permutations: a test image is never a training image
        # of another experience, only its permuted copy is.
        x_tr, y_tr, x_te, y_te = stratified_split(x, y, self.options["test_size"], seed, 0)
        n_pixels = x[0].size
        experiences = []
        for i in range(self.options["n_experiences"]):
            perm = permutation(n_pixels, seed, i)
            experiences.append(Experience(permute_pixels(x_tr, perm), y_tr, permute_pixels(x_te, perm), y_te,
                                          task_label=0, classes=tuple(range(10))))
        return labels_for_setting(experiences, self.setting)
