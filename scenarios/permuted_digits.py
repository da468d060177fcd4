"""Permuted-Digits: the whole digits set under a different fixed pixel permutation per experience."""

from __future__ import annotations

import numpy as np
import torch

from nlbench.data import derived_seed, load_digits_scaled, stratified_split
from nlbench.params import Interval
from nlbench.registry import register_scenario
from nlbench.scenario import Experience, Scenario


def permute_pixels(images: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """The same pixel permutation applied to every image, keeping the image shape."""
    return images.flatten(1)[:, perm].reshape(images.shape).contiguous()


@register_scenario
class PermutedDigits(Scenario):
    """All 10 digit classes under N pixel permutations (experience 0 unpermuted); domain-incremental."""

    NAME = "permuted-digits"
    SETTING = "domain-incremental"
    DEFAULTS = {"n_experiences": 5, "test_size": 0.2}
    _parameter_constraints = {
        "n_experiences": Interval(int, 1, 100),
        "test_size": Interval(float, 0.0, 1.0, closed="neither"),
    }

    def make_experiences(self, seed: int) -> list[Experience]:
        x, y = load_digits_scaled()
        # One stratified split shared by all permutations: a test image is never a training image
        # of another experience, only its permuted copy is.
        x_tr, y_tr, x_te, y_te = stratified_split(x, y, self.options["test_size"], derived_seed(seed, 0))
        n_pixels = x[0].size
        experiences = []
        for i in range(self.options["n_experiences"]):
            if i == 0:
                perm = torch.arange(n_pixels)
            else:
                perm = torch.from_numpy(np.random.default_rng(derived_seed(seed, 1, i)).permutation(n_pixels))
            experiences.append(Experience(permute_pixels(x_tr, perm), y_tr, permute_pixels(x_te, perm), y_te,
                                          task_label=0, classes=tuple(range(10))))
        return experiences
