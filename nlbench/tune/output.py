"""What `nlbench tune` leaves behind: a ready suite file with the chosen values, and the default-vs-tuned table.

The tuned suite is the original document with one `[scenario.S.method.M]` table per tuned pair (values are chosen
per scenario) and a `[tuned.S.M]` table saying how (protocol, budget, validation score, study); `nlbench run` of
it tags every run `tuned`, and its leaderboard shows that in a column.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from nlbench.run.suite import Suite
from nlbench.tune.study import Pair, TuneOptions


def tuned_document(doc: Mapping[str, Any], suite: Suite, pairs: Sequence[Pair], options: TuneOptions,
                   name: str | None = None) -> dict:
    """The suite document with the chosen values and their provenance; reports the same seeds as the original.
    Its runs go to their own experiment (nlbench-<name>, default name <suite>-tuned)."""
    out = copy.deepcopy(dict(doc))
    out.pop("data_dir", None)  # a machine's path, never written into a shareable file
    out.pop("experiment", None)
    out["name"] = name or f"{suite.name}-tuned"
    out["description"] = f"{suite.description} Hyperparameters tuned by nlbench tune: {options.summary()}.".strip()
    for pair in pairs:
        if not pair.best:
            continue
        table = out.setdefault("scenario", {}).setdefault(pair.scenario, {})
        table.setdefault("method", {}).setdefault(pair.method, {}).update(pair.best)
        out.setdefault("tuned", {}).setdefault(pair.scenario, {})[pair.method] = {
            "summary": options.summary(), "trials": pair.counted, "validation": round(pair.best_value, 6),
            "study": pair.study_name}
    return out


def write_tuned_suite(path: Path, doc: Mapping[str, Any], command: str) -> None:
    import tomli_w

    shown = path.name if path.is_absolute() else path.as_posix()  # never a machine's absolute path
    header = (f"# Written by `{command}`.\n# Run it with `nlbench run {shown}`; the chosen values are the "
              "[scenario.S.method.M] tables, how they were chosen the [tuned.S.M] tables.\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".toml.tmp")
    tmp.write_text(header + tomli_w.dumps(dict(doc)), encoding="utf-8")
    tmp.replace(path)  # a reader never sees half a file


def chosen_table(pairs: Sequence[Pair]) -> pd.DataFrame:
    """One row per (scenario, method): the chosen values, the best validation score, the trials counted."""
    rows = []
    for p in pairs:
        chosen = ", ".join(f"{k} = {_fmt(v)}" for k, v in p.best.items()) or p.note or "defaults kept"
        rows.append({"scenario": p.scenario, "method": p.method, "trials": p.counted,
                     "best validation": "" if not math.isfinite(p.best_value) else f"{p.best_value:.3f}",
                     "chosen": chosen})
    return pd.DataFrame(rows)


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def comparison(default: pd.DataFrame, tuned: pd.DataFrame) -> pd.DataFrame:
    """Default vs tuned per (scenario, method) from two leaderboard frames (`runs_frame`): ACC and forgetting with
    95 % intervals, and the paired difference tuned - default over the seeds both have, with its p-value."""
    from nlbench.results.tables import estimate, paired_difference

    rows = []
    for (scenario, method), d in default.groupby(["scenario", "method"], sort=True):
        t = tuned[(tuned["scenario"] == scenario) & (tuned["method"] == method)]
        if t.empty:
            continue
        d, t = d.drop_duplicates("seed").set_index("seed"), t.drop_duplicates("seed").set_index("seed")
        row = {"scenario": scenario, "method": method, "n": len(d.index.intersection(t.index))}
        for metric in ("acc", "forgetting"):
            row[f"{metric} default"] = str(estimate(d[metric]))
            row[f"{metric} tuned"] = str(estimate(t[metric]))
            diff, p, _ = paired_difference(t[metric], d[metric])
            row[f"{metric} tuned-default"] = "" if not math.isfinite(diff) else f"{diff:+.3f}"
            row[f"{metric} p"] = "" if not math.isfinite(p) else "<0.001" if p < 0.001 else f"{p:.3f}"
        rows.append(row)
    return pd.DataFrame(rows)


def ranks(frame: pd.DataFrame) -> dict[str, list[str]]:
    """Methods per scenario by mean ACC, best first."""
    means = frame.groupby(["scenario", "method"])["acc"].mean().reset_index()
    return {s: list(g.sort_values("acc", ascending=False)["method"]) for s, g in means.groupby("scenario")}
