"""Building blocks of the image streams: class splits, pixel permutations, rotations, subsampling.

`SplitScenario` holds what every class-split stream shares: the options, their checks and the setting.
A data stream only says how to get the rows of a group of classes.
"""

from __future__ import annotations

from abc import abstractmethod

import numpy as np
import torch

from nlbench.core.errors import UsageError
from nlbench.core.params import Boolean, Interval, IntList, Param
from nlbench.data.scenario import Experience, Scenario
from nlbench.data.splits import derived_seed

Split = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]

SPLIT_PARAMS: dict[str, Param] = {
    "n_experiences": Param(5, Interval(int, 1, 10), "experiences the ten classes are split into (1, 2, 5 or 10)"),
    "task_incremental": Param(False, Boolean(), "give task labels (multi-head evaluation)"),
    "class_order": Param([], IntList(allow_empty=True, minimum=0), "a permutation of 0..9 fixing which classes "
                                                                   "form which task ([]: 0..9)"),
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
        if 10 % self.options["n_experiences"]:
            raise UsageError(f"{prefix}'n_experiences' of scenario '{self.NAME}' must divide the 10 classes "
                             f"(1, 2, 5 or 10). Got {self.options['n_experiences']} instead.")

    @property
    def setting(self) -> str:
        return "task-incremental" if self.options["task_incremental"] else "class-incremental"

    @abstractmethod
    def split(self, classes: np.ndarray, index: int, seed: int) -> Split:
        """(x_train, y_train, x_test, y_test) of the rows whose label is in `classes`."""

    def make_experiences(self, seed: int) -> list[Experience]:
        order = self.options["class_order"] or list(range(10))
        groups = np.array_split(np.array(order), self.options["n_experiences"])
        return [Experience(*self.split(classes, i, seed), task_label=i if self.options["task_incremental"] else 0,
                           classes=tuple(int(c) for c in classes)) for i, classes in enumerate(groups)]


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
