"""Split-Digits: scikit-learn's 8x8 digits split into experiences of disjoint classes."""

from __future__ import annotations

import numpy as np

from nlbench.data import derived_seed, load_digits_scaled, stratified_split
from nlbench.errors import UsageError
from nlbench.params import Boolean, Interval, IntList
from nlbench.registry import register_scenario
from nlbench.scenario import Experience, Scenario


@register_scenario
class SplitDigits(Scenario):
    """Digits 0-9 in 5 experiences of 2 classes; class-incremental, or task-incremental with task labels."""

    NAME = "split-digits"
    SETTING = "class-incremental"
    DEFAULTS = {"n_experiences": 5, "task_incremental": False, "test_size": 0.2, "class_order": []}
    _parameter_constraints = {
        "n_experiences": Interval(int, 1, 10),
        "task_incremental": Boolean(),
        "test_size": Interval(float, 0.0, 1.0, closed="neither"),
        # [] = natural order 0..9; otherwise a permutation of 0..9 that fixes which classes form which task.
        "class_order": IntList(allow_empty=True, minimum=0),
    }

    def check_options(self, where: str) -> None:
        prefix = f"{where}: " if where else ""
        order = self.options["class_order"]
        if order and sorted(order) != list(range(10)):
            raise UsageError(f"{prefix}'class_order' of scenario '{self.NAME}' must be a permutation of 0..9. "
                             f"Got {order!r} instead.")
        if 10 % self.options["n_experiences"]:
            raise UsageError(f"{prefix}'n_experiences' of scenario '{self.NAME}' must divide the 10 classes "
                             f"(1, 2, 5 or 10). Got {self.options['n_experiences']} instead.")

    @property
    def setting(self) -> str:
        return "task-incremental" if self.options["task_incremental"] else "class-incremental"

    def make_experiences(self, seed: int) -> list[Experience]:
        x, y = load_digits_scaled()
        order = self.options["class_order"] or list(range(10))
        groups = np.array_split(np.array(order), self.options["n_experiences"])
        experiences = []
        for i, classes in enumerate(groups):
            rows = np.isin(y, classes)
            x_tr, y_tr, x_te, y_te = stratified_split(x[rows], y[rows], self.options["test_size"],
                                                      derived_seed(seed, i))
            experiences.append(Experience(x_tr, y_tr, x_te, y_te,
                                          task_label=i if self.options["task_incremental"] else 0,
                                          classes=tuple(int(c) for c in classes)))
        return experiences
