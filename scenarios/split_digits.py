"""Split-Digits: scikit-learn's 8x8 digits split into experiences of disjoint classes."""

from __future__ import annotations

import numpy as np

from nlbench.core.registry import register_scenario
from nlbench.data.sources.digits import load_digits_scaled
from nlbench.data.splits import TEST_SIZE, stratified_split
from nlbench.data.streams import Split, SplitScenario


@register_scenario
class SplitDigits(SplitScenario):
    """Digits 0-9 in 5 experiences of 2 classes; class-incremental, or task-incremental with task labels."""

    NAME = "split-digits"
    PARAMS = {"test_size": TEST_SIZE}

    def split(self, classes: np.ndarray, index: int, seed: int) -> Split:
        x, y = load_digits_scaled()
        rows = np.isin(y, classes)
        return stratified_split(x[rows], y[rows], self.options["test_size"], seed, index)
