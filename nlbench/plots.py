"""Figures a reader would rather look at than read."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def accuracy_matrix_heatmap(R: np.ndarray, title: str = "", b: Sequence[float] | None = None) -> Figure:
    """R as a heatmap: rows = after training on experience i, columns = evaluated on experience j."""
    R = np.asarray(R, dtype=float)
    T = R.shape[0]
    rows = R if b is None else np.vstack([np.asarray(b, dtype=float), R])
    labels = [f"{i}" for i in range(T)] if b is None else ["init"] + [f"{i}" for i in range(T)]
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * T, 1.0 + 0.55 * len(rows)), dpi=120)
    im = ax.imshow(rows, vmin=0.0, vmax=1.0, cmap="viridis")
    ax.set_xticks(range(T), [str(j) for j in range(T)])
    ax.set_yticks(range(len(rows)), labels)
    ax.set_xlabel("evaluated on experience")
    ax.set_ylabel("after training on")
    for (i, j), v in np.ndenumerate(rows):
        if np.isfinite(v):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                    color="black" if v > 0.6 else "white")
    if title:
        ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="accuracy")
    fig.tight_layout()
    return fig
