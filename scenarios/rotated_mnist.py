"""Rotated-MNIST: all ten digits, each experience rotated by its own angle."""

from __future__ import annotations

from nlbench.core.params import Interval, NumberList, Param
from nlbench.core.registry import register_scenario
from nlbench.data.scenario import Experience, Scenario
from nlbench.data.sources.mnist import MNIST_PARAMS, MNISTSource, domain_experiences
from nlbench.data.streams import rotate


@register_scenario
class RotatedMNIST(MNISTSource, Scenario):
    """MNIST rotated by one angle per experience (default 0, 45, 90, 135, 180 degrees); domain-incremental."""

    NAME = "rotated-mnist"
    SETTING = "domain-incremental"
    PARAMS = {"angles": Param([0.0, 45.0, 90.0, 135.0, 180.0], NumberList(None, Interval(float, -360.0, 360.0)),
                              "rotation of each experience, in degrees"),
              **MNIST_PARAMS}

    def make_experiences(self, seed: int) -> list[Experience]:
        angles = self.options["angles"]
        return domain_experiences(self.options, seed, len(angles), lambda x, i: rotate(x, angles[i]),
                                  self.data_dir)
