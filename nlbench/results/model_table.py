"""The model-comparison table that heart-disease papers publish, written after a suite (`report = "model-table"`).

One row per method on a single-experience binary scenario: accuracy, ROC AUC and balanced accuracy as mean ± std
over seeds, training time, and the number of learned parameters. It comes with ROC curves (all seeds' test
scores pooled per method), confusion matrices (summed over seeds), and the duplicate check of every seed's split.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nlbench.results.leaderboard import markdown_table
from nlbench.results.summary import mean_std


def model_table(results: Sequence[Any]) -> pd.DataFrame:
    """Rows per method, in the suite's order, sorted by mean accuracy."""
    rows = []
    for method in dict.fromkeys(r.config.method for r in results):
        runs = [r for r in results if r.config.method == method]
        rows.append({
            "method": method, "seeds": len(runs),
            "accuracy": mean_std([r.summary["acc"] for r in runs]),
            "roc_auc": mean_std([r.summary.get("auc", float("nan")) for r in runs]),
            "balanced_accuracy": mean_std([r.summary.get("bacc", float("nan")) for r in runs]),
            "train_time_s": mean_std([r.train_time_s for r in runs]),
            "parameters": int(np.median([r.n_params for r in runs])),
            "_acc": float(np.mean([r.summary["acc"] for r in runs])),
        })
    return pd.DataFrame(rows).sort_values("_acc", ascending=False).drop(columns="_acc")


def roc_plot(results: Sequence[Any], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_auc_score, roc_curve

    fig, ax = plt.subplots(figsize=(6.5, 6))
    for method in dict.fromkeys(r.config.method for r in results):
        y = np.concatenate([s[0] for r in results if r.config.method == method for s in r.final_scores])
        p = np.concatenate([s[1] for r in results if r.config.method == method for s in r.final_scores])
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, label=f"{method} (pooled AUC {roc_auc_score(y, p):.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def confusion_plot(results: Sequence[Any], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import confusion_matrix

    methods = list(dict.fromkeys(r.config.method for r in results))
    cols = min(4, len(methods))
    rows = -(-len(methods) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.6 * rows), squeeze=False)
    for ax, method in zip(axes.flat, methods, strict=False):
        y = np.concatenate([s[0] for r in results if r.config.method == method for s in r.final_scores])
        p = np.concatenate([s[1] for r in results if r.config.method == method for s in r.final_scores])
        cm = confusion_matrix(y, (p >= 0.5).astype(int), labels=[0, 1])
        ax.imshow(cm, cmap="Blues")
        for (i, j), v in np.ndenumerate(cm):
            ax.text(j, i, str(v), ha="center", va="center", color="white" if v > cm.max() / 2 else "black")
        ax.set(title=method, xticks=[0, 1], yticks=[0, 1], xlabel="predicted", ylabel="true")
        ax.title.set_fontsize(9)
    for ax in list(axes.flat)[len(methods):]:
        ax.axis("off")
    fig.suptitle(title + " (summed over seeds)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def duplicate_lines(scenario: Any, seeds: Sequence[int]) -> list[str]:
    from nlbench.data.duplicates import duplicate_report

    lines = []
    for seed in seeds:
        report = duplicate_report(scenario.build(seed).raw_rows())
        lines.append(f"- seed {seed}: {report.train_rows[0]} train / {report.test_rows[0]} test rows; "
                     f"{report.repeated_in_train[0]} repeated within train, {report.repeated_in_test[0]} within "
                     f"test, {report.leaks} test rows also in train")
    return lines


def write_model_table(suite: Any, results: Sequence[Any], out: Path, environment: dict[str, str]) -> list[Path]:
    """`<scenario>.md`, `.csv`, `_roc.png` and `_confusion.png` under `out`, one set per scenario of the suite."""
    from nlbench.core.registry import SCENARIOS

    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for label in dict.fromkeys(r.config.scenario for r in results if r.ok):
        runs = [r for r in results if r.ok and r.config.scenario == label]
        if not runs[0].final_scores:
            continue  # only binary scenarios carry test scores
        stem = label.replace("-", "_")
        table = model_table(runs)
        scenario = SCENARIOS.get(runs[0].config.scenario_name)(**runs[0].config.scenario_options)
        csv, md = out / f"{stem}.csv", out / f"{stem}.md"
        table.to_csv(csv, index=False)
        roc, confusion = out / f"{stem}_roc.png", out / f"{stem}_confusion.png"
        roc_plot(runs, roc, f"{label}: ROC curves")
        confusion_plot(runs, confusion, f"{label}: confusion matrices")
        seeds = sorted({r.config.seed for r in runs})
        lines = [
            f"# {label}: model comparison", "",
            f"Suite `{suite.name}`, {len(runs)} finished runs, seeds {seeds}; generated "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. nlbench {environment.get('nlbench_version')}, "
            f"torch {environment.get('torch_version')}; machine: {environment.get('machine')}.",
            f"Data: {runs[0].data_source}. Regenerate: `nlbench run {suite.name}`.", "",
            "Mean ± std over seeds of the test accuracy, ROC AUC and balanced accuracy (threshold 0.5), the "
            "training time in seconds, and the median number of learned parameters (weights, tree nodes, support "
            "vectors, or the stored training set for k-NN).", "",
            *markdown_table(table), "",
            f"![ROC curves]({roc.name})", f"![Confusion matrices]({confusion.name})", "",
            "Duplicate rows (exact, before preprocessing):", *duplicate_lines(scenario, seeds), "",
        ]
        md.write_text("\n".join(lines), encoding="utf-8")
        paths += [md, csv, roc, confusion]
    return paths
