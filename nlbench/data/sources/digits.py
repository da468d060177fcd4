"""scikit-learn's bundled 8x8 digits: the data every default suite runs on, with no download."""

from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=1)
def load_digits_scaled() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled digits as (1797, 8, 8) images (no download), pixels scaled from 0..16 to [0, 1].

    Kept 2-D so sequence models can read one row per token; MLPs flatten.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y
