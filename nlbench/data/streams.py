"""Building blocks of the image streams: class splits, pixel permutations, rotations, subsampling.

`SplitScenario` holds what every class-split stream shares: the options, their checks and the setting.
A data stream only says how to get the rows of a group of classes.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import replace

import numpy as np
import torch

from nlbench.core.errors import UsageError
from nlbench.core.params import Boolean, Interval, IntList, Options, Param
from nlbench.data.scenario import SETTINGS, Experience, Scenario
from nlbench.data.splits import derived_seed

Split = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]

SPLIT_PARAMS: dict[str, Param] = {
    "n_experiences": Param(5, Interval(int, 1, 10), "experiences the ten classes are split into (1, 2, 5 or 10)"),
    "task_incremental": Param(False, Boolean(), "give task labels (multi-head evaluation)"),
    "domain_incremental": Param(False, Boolean(), "label each image by its class's place in its experience "
                                                  "(labels mod 2 for pairs: van de Ven's Domain-IL split)"),
    "class_order": Param([], IntList(allow_empty=True, minimum=0), "a permutation of 0..9 fixing which classes "
                                                                   "form which task ([]: 0..9)"),
    "shuffle_classes": Param(False, Boolean(), "draw the class order from the seed (the usual protocols' order)"),
}


class SplitScenario(Scenario):
    """Ten classes in `n_experiences` groups; class-incremental, or task-incremental with task labels."""

    SETTING = "class-incremental"

    @classmethod
    def shared_params(cls) -> dict[str, Param]:
        return SPLIT_PARAMS

    def check_options(self, where: str) -> None:
        prefix = f"{where}: " if where else ""
        order = self.options["class_order"]
        if order and sorted(order) != list(range(10)):
            raise UsageError(f"{prefix}'class_order' of scenario '{self.NAME}' must be a permutation of 0..9. "
                             f"Got {order!r} instead.")
        if order and self.options["shuffle_classes"]:
            raise UsageError(f"{prefix}scenario '{self.NAME}' takes 'class_order' or 'shuffle_classes', not both. "
                             f"Got class_order = {order!r} and shuffle_classes = true instead.")
        if self.options["task_incremental"] and self.options["domain_incremental"]:
            raise UsageError(f"{prefix}scenario '{self.NAME}' is task- or domain-incremental, not both: set one of "
                             "'task_incremental' and 'domain_incremental' to false.")
        if 10 % self.options["n_experiences"]:
            raise UsageError(f"{prefix}'n_experiences' of scenario '{self.NAME}' must divide the 10 classes "
                             f"(1, 2, 5 or 10). Got {self.options['n_experiences']} instead.")

    @property
    def setting(self) -> str:
        if self.options["domain_incremental"]:
            return "domain-incremental"
        return "task-incremental" if self.options["task_incremental"] else "class-incremental"

    def class_order(self, seed: int) -> list[int]:
        if self.options["shuffle_classes"]:
            return [int(c) for c in np.random.default_rng(derived_seed(seed, 2)).permutation(10)]
        return self.options["class_order"] or list(range(10))

    @abstractmethod
    def split(self, classes: np.ndarray, index: int, seed: int) -> Split:
        """(x_train, y_train, x_test, y_test) of the rows whose label is in `classes`."""

    def make_experiences(self, seed: int) -> list[Experience]:
        groups = np.array_split(np.array(self.class_order(seed)), self.options["n_experiences"])
        experiences = [Experience(*self.split(classes, i, seed),
                                  task_label=i if self.options["task_incremental"] else 0,
                                  classes=tuple(int(c) for c in classes)) for i, classes in enumerate(groups)]
        return [within_experience_labels(e) for e in experiences] if self.options["domain_incremental"] else experiences


def within_experience_labels(experience: Experience) -> Experience:
    """Each label replaced by its class's place in the experience's class tuple: one shared output per place."""
    place = torch.full((int(max(experience.classes)) + 1,), -1, dtype=torch.long)
    place[list(experience.classes)] = torch.arange(len(experience.classes))
    return replace(experience, y_train=place[experience.y_train], y_test=place[experience.y_test],
                   classes=tuple(range(len(experience.classes))))


# The label spaces a stream whose every experience holds the same classes (a permuted stream) can take.
LABEL_SETTING = Param("domain-incremental", Options(SETTINGS),
                      "domain: one label set shared by every experience; task: each experience its own labels "
                      "(10 i + digit) and task labels; class: its own labels, no task labels")


class LabelSettingOption:
    """Mixin of a permuted stream: its `setting` option (LABEL_SETTING) is its setting."""

    options: dict

    @property
    def setting(self) -> str:
        return self.options["setting"]


def labels_for_setting(experiences: list[Experience], setting: str) -> list[Experience]:
    """Domain-incremental experiences relabelled for `setting`: experience i's class c becomes n i + c."""
    if setting == "domain-incremental":
        return experiences
    out = []
    for i, e in enumerate(experiences):
        n = len(e.classes)
        out.append(replace(e, y_train=e.y_train + n * i, y_test=e.y_test + n * i,
                           classes=tuple(n * i + c for c in e.classes),
                           task_label=i if setting == "task-incremental" else 0))
    return out


def subsample(y: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Indices of at most `n` rows, stratified by label, in their original order (all rows when n = 0)."""
    if n <= 0 or n >= len(y):
        return np.arange(len(y))
    from sklearn.model_selection import train_test_split

    keep, _ = train_test_split(np.arange(len(y)), train_size=n, stratify=y, random_state=seed)
    return np.sort(keep)


def permute_pixels(images: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """The same pixel permutation applied to every image, keeping the image shape."""
    return images.flatten(1)[:, perm].reshape(images.shape).contiguous()


def permutation(n_pixels: int, seed: int, index: int) -> torch.Tensor:
    """Experience `index`'s pixel permutation: the identity for experience 0, else drawn from the seed."""
    if index == 0:
        return torch.arange(n_pixels)
    return torch.from_numpy(np.random.default_rng(derived_seed(seed, 1, index)).permutation(n_pixels))


def rotate(images: torch.Tensor, degrees: float) -> torch.Tensor:
    """Images (N, H, W) rotated counter-clockwise about their centre, bilinear, zero outside."""
    if degrees % 360 == 0:
        return images.clone()
    from scipy.ndimage import rotate as nd_rotate

    out = nd_rotate(images.numpy(), degrees, axes=(2, 1), reshape=False, order=1, mode="constant", cval=0.0)
    return torch.from_numpy(np.ascontiguousarray(out, dtype=np.float32))
