"""The model-comparison table heart-disease papers publish, read from the store like the leaderboard.

One row per method on a binary scenario: accuracy, ROC AUC and balanced accuracy over seeds, training time, and
the number of learned parameters. It comes with ROC curves (all seeds' test scores pooled per method),
confusion matrices (summed over seeds), and the duplicate check of every seed's split. `nlbench run` writes it
after a suite with `report = "model-table"`; `nlbench model-table --suite NAME` regenerates it from the store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nlbench.core.errors import UsageError
from nlbench.results import schema
from nlbench.results.report import header_lines
from nlbench.results.store import read_json_artifact, runs_frame, search
from nlbench.results.tables import PLUS_MINUS, estimate, markdown_table

Scores = list[tuple[list[int], list[float]]]  # per test set: labels, positive-class scores


def model_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per method, sorted by mean accuracy (ties in the order the methods ran); `frame` is `runs_frame`
    plus an `n_params` column."""
    rows = []
    for method, g in frame.sort_values("started").groupby("method", sort=False):
        rows.append({"method": method, "seeds": len(g), "accuracy": str(estimate(g["acc"])),
                     "roc_auc": str(estimate(g["auc"])), "balanced_accuracy": str(estimate(g["bacc"])),
                     "train_time_s": str(estimate(g["train_s"])), "parameters": int(g["n_params"].median()),
                     "_acc": round(g["acc"].mean(), 12)})  # equal means tie, whatever the summation order
    return pd.DataFrame(rows).sort_values("_acc", ascending=False, kind="stable").drop(columns="_acc")


def _pooled(scores: Sequence[Scores]) -> tuple[np.ndarray, np.ndarray]:
    y = np.concatenate([np.asarray(s[0], dtype=int) for run in scores for s in run])
    p = np.concatenate([np.asarray(s[1], dtype=float) for run in scores for s in run])
    return y, p


def roc_plot(scores: Mapping[str, Sequence[Scores]], path: Path, title: str) -> None:
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_auc_score, roc_curve

    fig, ax = plt.subplots(figsize=(6.5, 6))
    for method, runs in scores.items():
        y, p = _pooled(runs)
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, label=f"{method} (pooled AUC {roc_auc_score(y, p):.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def confusion_plot(scores: Mapping[str, Sequence[Scores]], path: Path, title: str) -> None:
    import matplotlib.pyplot as plt
    from sklearn.metrics import confusion_matrix

    methods = list(scores)
    cols = min(4, len(methods))
    rows = -(-len(methods) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.6 * rows), squeeze=False)
    for ax, method in zip(axes.flat, methods, strict=False):
        y, p = _pooled(scores[method])
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


def duplicate_lines(config: Any, seeds: Sequence[int], data_dir: str) -> list[str]:
    """The duplicate check of each seed's split, on the scenario a run config names."""
    from nlbench.core.registry import SCENARIOS
    from nlbench.data.duplicates import duplicate_report

    scenario = SCENARIOS.get(config["scenario_name"])(data_dir=data_dir, **config["scenario_options"])
    lines = []
    for seed in seeds:
        report = duplicate_report(scenario.build(seed).raw_rows())
        lines.append(f"- seed {seed}: {report.train_rows[0]} train / {report.test_rows[0]} test rows; "
                     f"{report.repeated_in_train[0]} repeated within train, {report.repeated_in_test[0]} within "
                     f"test, {report.leaks} test rows also in train")
    return lines


def write_model_tables(tracking_uri: str, suite: str, out: Path, command: str, experiment: str | None = None,
                       data_dir: str = "", **filters: Any) -> list[Path]:
    """`<scenario>.md`, `.csv`, `_roc.png` and `_confusion.png` under `out` for each binary scenario of the runs."""
    from mlflow.tracking import MlflowClient

    experiment = experiment or f"nlbench-{suite}"
    runs = search(tracking_uri, experiment, **filters)
    frame = runs_frame(runs)
    if frame.empty:
        raise UsageError(f"no finished runs in experiment '{experiment}' at {tracking_uri} match the filters.")
    frame["n_params"] = frame["run_id"].map(runs.set_index("run_id")[schema.metric_column(schema.N_PARAMS)])
    client = MlflowClient(tracking_uri)
    scores = {run_id: read_json_artifact(client, run_id, schema.TEST_SCORES) for run_id in frame["run_id"]}
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for label, group in frame.groupby("scenario", sort=False):
        group = group[group["run_id"].map(lambda r: bool(scores[r]))]
        if group.empty:
            continue  # only binary scenarios carry test scores
        stem = str(label).replace("-", "_")
        table = model_table(group)
        by_method = {m: [scores[r] for r in g["run_id"]] for m, g in group.groupby("method", sort=False)}
        csv, md = out / f"{stem}.csv", out / f"{stem}.md"
        roc, confusion = out / f"{stem}_roc.png", out / f"{stem}_confusion.png"
        table.to_csv(csv, index=False)
        roc_plot({m: by_method[m] for m in table["method"]}, roc, f"{label}: ROC curves")
        confusion_plot({m: by_method[m] for m in table["method"]}, confusion, f"{label}: confusion matrices")
        ids = runs["run_id"].isin(group["run_id"])
        config = read_json_artifact(client, group["run_id"].iloc[0], schema.RUN_CONFIG)
        seeds = sorted(int(s) for s in group["seed"].unique())
        source = runs.loc[ids, schema.tag_column(schema.DATA_SOURCE)].dropna().unique()
        lines = [
            f"# {label}: model comparison", "", *header_lines(suite, command, runs[ids]),
            f"Seeds {seeds}. Data: {', '.join(map(str, source)) or 'not recorded'}.", "",
            f"Test accuracy, ROC AUC and balanced accuracy (threshold 0.5) and training time in seconds: {PLUS_MINUS}. "
            "Parameters: the median number of learned parameters (weights, tree nodes, support vectors, or the "
            "stored training set for k-NN).", "",
            *markdown_table(table), "",
            f"![ROC curves]({roc.name})", f"![Confusion matrices]({confusion.name})", "",
            "Duplicate rows (exact, before preprocessing):",
            *duplicate_lines(config, seeds, data_dir or config.get("data_dir", "")), "",
        ]
        md.write_text("\n".join(lines), encoding="utf-8")
        paths += [md, csv, roc, confusion]
    return paths
