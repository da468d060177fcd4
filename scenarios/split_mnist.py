"""Split-MNIST: the ten MNIST digits in experiences of disjoint classes (5 x 2 by default)."""

from __future__ import annotations

import numpy as np

from nlbench.core.registry import register_scenario
from nlbench.data.sources.mnist import (
    SUBSAMPLE_PARAMS,
    MNISTSource,
    mnist_images,
    to_float,
    to_labels,
)
from nlbench.data.splits import derived_seed, validation_rows
from nlbench.data.streams import Split, SplitScenario, subsample


@register_scenario
class SplitMNIST(MNISTSource, SplitScenario):
    """MNIST digits in 5 experiences of 2 classes; class-incremental, or task-incremental with task labels."""

    NAME = "split-mnist"
    PARAMS = SUBSAMPLE_PARAMS

    def split(self, classes: np.ndarray, index: int, seed: int) -> Split:
        (x_tr, y_tr, x_te, y_te), _ = mnist_images(self.data_dir)
        tr, te = np.flatnonzero(np.isin(y_tr, classes)), np.flatnonzero(np.isin(y_te, classes))
        tuning = validation_rows(y_tr[tr], seed, index)  # tuning: validation images from the training set
        if tuning is not None:
            x_te, y_te, te, tr = x_tr, y_tr, tr[tuning[1]], tr[tuning[0]]
        tr = tr[subsample(y_tr[tr], self.options["subsample"], derived_seed(seed, index))]
        te = te[subsample(y_te[te], self.options["test_subsample"], derived_seed(seed, 100 + index))]
        return to_float(x_tr[tr]), to_labels(y_tr[tr]), to_float(x_te[te]), to_labels(y_te[te])
