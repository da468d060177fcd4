"""Split-MNIST: the ten MNIST digits in experiences of disjoint classes (5 x 2 by default)."""

from __future__ import annotations

import numpy as np

from nlbench.core.registry import register_scenario
from nlbench.data.sources.mnist import (
    MNIST_PARAMS,
    MNISTSource,
    mnist_images,
    standardize,
    to_float,
    to_labels,
)
from nlbench.data.splits import derived_seed, validation_rows
from nlbench.data.streams import Split, SplitScenario, subsample


@register_scenario
class SplitMNIST(MNISTSource, SplitScenario):
    """MNIST digits in 5 experiences of 2 classes; class-, task- (task labels) or domain-incremental (labels mod 2)."""

    NAME = "split-mnist"
    PARAMS = MNIST_PARAMS

    def split(self, classes: np.ndarray, index: int, seed: int) -> Split:
        (x_tr, y_tr, x_te, y_te), _ = mnist_images(self.data_dir)
        tr, te = np.flatnonzero(np.isin(y_tr, classes)), np.flatnonzero(np.isin(y_te, classes))
        tuning = validation_rows(y_tr[tr], seed, index)  # tuning: validation images from the training set
        if tuning is not None:
            x_te, y_te, te, tr = x_tr, y_tr, tr[tuning[1]], tr[tuning[0]]
        tr = tr[subsample(y_tr[tr], self.options["subsample"], derived_seed(seed, index))]
        te = te[subsample(y_te[te], self.options["test_subsample"], derived_seed(seed, 100 + index))]
        pad = self.options["pad"]
        return (standardize(to_float(x_tr[tr], pad), self.options), to_labels(y_tr[tr]),
                standardize(to_float(x_te[te], pad), self.options), to_labels(y_te[te]))
