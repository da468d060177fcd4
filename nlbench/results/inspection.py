"""`nlbench show RUN_ID` and `nlbench compare RUN_A RUN_B`: one run, or two side by side, from MLflow."""

from __future__ import annotations

from typing import Any

import pandas as pd

from nlbench.results import schema
from nlbench.results.store import get_run, n_experiences, read_matrix


def _final_metrics(run: Any) -> dict[str, float]:
    """The run's one-value metrics (final metrics, costs), not its matrices or training curves."""
    return {k: v for k, v in sorted(run.data.metrics.items()) if k.startswith(schema.SUMMARY_PREFIXES)}


def show(client: Any, run_id: str) -> str:
    run = get_run(client, run_id)
    tags = run.data.tags
    lines = [f"run {run_id}  {run.info.run_name}  [{run.info.status}]",
             "  " + "  ".join(f"{k}={tags[k]}" for k in ("suite", "scenario", "method", "family", "seed", "device")
                              if k in tags)]
    for tag in (schema.ERROR, schema.TRACKING_ERROR):
        if tag in tags:
            lines.append(f"  {tag}: {tags[tag]}")
    lines += ["", "params:"] + [f"  {k} = {v}" for k, v in sorted(run.data.params.items())]
    lines += ["", "metrics:"] + [f"  {k} = {v:.4f}" for k, v in _final_metrics(run).items()]
    R = read_matrix(client, run_id, n_experiences(run))
    if R.size:
        frame = pd.DataFrame(R, index=[f"after {i}" for i in range(len(R))],
                             columns=[f"exp{j}" for j in range(len(R))])
        lines += ["", "accuracy matrix R:", frame.to_string(float_format=lambda v: f"{v:.3f}")]
    artifacts = [a.path for a in client.list_artifacts(run_id)]
    lines += ["", f"artifacts ({run.info.artifact_uri}):"] + [f"  {p}" for p in artifacts]
    return "\n".join(lines)


def compare(client: Any, run_a: str, run_b: str) -> str:
    """Params that differ and every final metric of two runs, side by side."""
    a, b = get_run(client, run_a), get_run(client, run_b)
    names = (f"{a.info.run_name} ({run_a[:8]})", f"{b.info.run_name} ({run_b[:8]})")
    keys = sorted(set(a.data.params) | set(b.data.params))
    differ = [(k, a.data.params.get(k, "-"), b.data.params.get(k, "-")) for k in keys
              if a.data.params.get(k) != b.data.params.get(k)]
    params = pd.DataFrame(differ, columns=["param", *names]).set_index("param")
    ma, mb = _final_metrics(a), _final_metrics(b)
    metrics = pd.DataFrame({names[0]: pd.Series(ma), names[1]: pd.Series(mb)})
    metrics["b - a"] = metrics[names[1]] - metrics[names[0]]
    lines = ["params that differ:", params.to_string() if len(params) else "  (none)", "",
             "metrics:", metrics.to_string(float_format=lambda v: f"{v:.4f}")]
    return "\n".join(lines)
