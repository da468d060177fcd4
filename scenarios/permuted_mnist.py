"""Permuted-MNIST: all ten digits under a different fixed pixel permutation per experience."""

from __future__ import annotations

from nlbench.core.params import Interval
from nlbench.core.registry import register_scenario
from nlbench.data.scenario import Experience, Scenario
from nlbench.data.sources.mnist import SUBSAMPLE_CONSTRAINTS, SUBSAMPLE_DEFAULTS, MNISTSource, domain_experiences
from nlbench.data.streams import permutation, permute_pixels


@register_scenario
class PermutedMNIST(MNISTSource, Scenario):
    """MNIST under N pixel permutations (default 10, experience 0 unpermuted); domain-incremental."""

    NAME = "permuted-mnist"
    SETTING = "domain-incremental"
    DEFAULTS = {"n_experiences": 10, **SUBSAMPLE_DEFAULTS}
    _parameter_constraints = {"n_experiences": Interval(int, 1, 100), **SUBSAMPLE_CONSTRAINTS}

    def make_experiences(self, seed: int) -> list[Experience]:
        return domain_experiences(self.options, seed, self.options["n_experiences"],
                                  lambda x, i: permute_pixels(x, permutation(28 * 28, seed, i)))
