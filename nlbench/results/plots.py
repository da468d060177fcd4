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


def _finish(fig: Figure, ax: object, title: str) -> Figure:
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def bar_with_ci(labels: Sequence[str], means: Sequence[float], cis: Sequence[float], chance: float | None = None,
                title: str = "", ylabel: str = "ACC") -> Figure:
    """One bar per method with its 95 % interval; a dashed line at the chance level."""
    fig, ax = plt.subplots(figsize=(1.2 + 0.6 * len(labels), 3.2), dpi=120)
    x = np.arange(len(labels))
    ax.bar(x, means, yerr=np.nan_to_num(np.asarray(cis, dtype=float)), capsize=3, color="tab:blue", alpha=0.8)
    if chance is not None and np.isfinite(chance):
        ax.axhline(chance, ls="--", color="gray", lw=1, label="chance")
        ax.legend(fontsize=7, loc="upper right")
    ax.set_xticks(x, labels, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 1)
    return _finish(fig, ax, title)


def tradeoff_scatter(labels: Sequence[str], acc: Sequence[float], acc_ci: Sequence[float],
                     forgetting: Sequence[float], forgetting_ci: Sequence[float], title: str = "") -> Figure:
    """Stability-plasticity trade-off: forgetting (x, lower is better) against ACC (y, higher is better)."""
    fig, ax = plt.subplots(figsize=(4.6, 3.6), dpi=120)
    for i, label in enumerate(labels):
        ax.errorbar(forgetting[i], acc[i], xerr=np.nan_to_num(forgetting_ci[i]), yerr=np.nan_to_num(acc_ci[i]),
                    fmt="o", capsize=2, label=label)
    ax.set_xlabel("forgetting (lower is better)")
    ax.set_ylabel("ACC (higher is better)")
    ax.legend(fontsize=6, loc="best")
    return _finish(fig, ax, title)


def stream_lines(matrices: dict[str, np.ndarray], title: str = "") -> Figure:
    """Per method, accuracy on each experience j after each training step i >= j (mean over seeds)."""
    n = len(matrices)
    cols = min(n, 4)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.2 * rows), dpi=120, squeeze=False, sharey=True)
    for ax, (method, R) in zip(axes.flat, matrices.items(), strict=False):
        T = R.shape[0]
        for j in range(T):
            ax.plot(range(j, T), R[j:, j], marker=".", lw=1, label=f"exp {j}")
        ax.set_title(method, fontsize=8)
        ax.set_ylim(0, 1)
        ax.set_xticks(range(T))
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    axes[0][0].legend(fontsize=6)
    fig.supxlabel("after training on experience", fontsize=8)
    fig.supylabel("accuracy", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig
