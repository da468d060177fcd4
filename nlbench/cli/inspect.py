"""`nlbench runs`, `show`, `compare` and `ui`: look at what is in the store."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from nlbench.cli.common import ExitCode, add_filters, add_tracking, store_uri, tracking_client
from nlbench.core.errors import UsageError


def add_parsers(sub: Any) -> None:
    from nlbench.results.schema import COLUMNS

    runs = sub.add_parser("runs", help="Show recent runs as a table", allow_abbrev=False)
    runs.add_argument("--suite", help="Only runs of this suite")
    add_filters(runs, "runs")
    runs.add_argument("--status", choices=["FINISHED", "FAILED", "RUNNING", "KILLED"], help="Only runs in this state")
    runs.add_argument("--sort", default="started", choices=["started", *(c.label for c in COLUMNS)],
                      help="Order: newest first, or best first by a final metric or cost. Default: started")
    runs.add_argument("--limit", type=int, default=20, help="How many runs to show. Default: 20")
    add_tracking(runs)
    runs.set_defaults(func=cmd_runs)

    show = sub.add_parser("show", help="One run: params, final metrics, accuracy matrix, artifacts",
                          allow_abbrev=False)
    show.add_argument("run_id", help="MLflow run id (see `nlbench runs`)")
    add_tracking(show)
    show.set_defaults(func=cmd_show)

    cmp_ = sub.add_parser("compare", help="Two runs side by side: differing params and metrics", allow_abbrev=False)
    cmp_.add_argument("run_a", help="MLflow run id")
    cmp_.add_argument("run_b", help="MLflow run id")
    add_tracking(cmp_)
    cmp_.set_defaults(func=cmd_compare)

    ui = sub.add_parser("ui", help="Start the MLflow UI on 127.0.0.1 for the same store", allow_abbrev=False)
    ui.add_argument("--port", type=int, default=5000, help="Port. Default: 5000")
    add_tracking(ui)
    ui.set_defaults(func=cmd_ui)


def order_by(sort: str) -> str:
    """MLflow's order clause: newest first, or best first by a column of the record."""
    from nlbench.results.schema import COLUMNS, metric_column

    if sort == "started":
        return "attributes.start_time DESC"
    column = next(c for c in COLUMNS if c.label == sort)
    return f"{metric_column(f'`{column.key}`')} {'DESC' if column.higher_is_better else 'ASC'}"


def cmd_runs(args: argparse.Namespace) -> int:
    import mlflow
    import pandas as pd

    from nlbench.results import schema
    from nlbench.results.store import parse_tag_filters, run_filter
    from nlbench.results.uri import store_exists

    if args.limit < 1:
        raise UsageError(f"--limit must be an int >= 1. Got {args.limit} instead.")
    tags = parse_tag_filters(args.tag)
    uri = store_uri(args, must_exist=False)
    if not store_exists(uri):
        print(f"No runs in {uri} (no store there yet).")
        return ExitCode.OK
    mlflow.set_tracking_uri(uri)
    filters = [run_filter(tags, kind=schema.RUN_KIND, suite=args.suite,
                          scenario=args.scenario, method=args.method, family=args.family)]
    if args.status:
        filters.append(f"attributes.status = '{args.status}'")
    experiments = [e.experiment_id for e in mlflow.search_experiments()]
    if not experiments:
        print(f"No runs in {uri}.")
        return ExitCode.OK
    df = mlflow.search_runs(experiment_ids=experiments, filter_string=" and ".join(filters),
                            max_results=args.limit, order_by=[order_by(args.sort)])
    if df.empty:
        print(f"No matching runs in {uri}.")
        return ExitCode.OK
    cols = {"start_time": "started", **{schema.tag_column(t): t for t in ("suite", "scenario", "method", "seed")},
            "status": "status", schema.metric_column(schema.final_key("acc")): "ACC",
            schema.metric_column(schema.final_key("forgetting")): "forgetting", "run_id": "run_id"}
    table = pd.DataFrame({v: df.get(k) for k, v in cols.items()})
    table["started"] = pd.to_datetime(table["started"]).dt.strftime("%Y-%m-%d %H:%M")
    print(table.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    return ExitCode.OK


def cmd_show(args: argparse.Namespace) -> int:
    from nlbench.results.inspection import show

    print(show(tracking_client(args), args.run_id))
    return ExitCode.OK


def cmd_compare(args: argparse.Namespace) -> int:
    from nlbench.results.inspection import compare

    print(compare(tracking_client(args), args.run_a, args.run_b))
    return ExitCode.OK


def cmd_ui(args: argparse.Namespace) -> int:
    from nlbench.results.uri import check_tracking_uri

    uri = check_tracking_uri(args.tracking_uri, server=False)
    if uri.startswith(("http://", "https://")):
        raise UsageError(f"--tracking-uri {uri} is already a tracking server: open it in a browser.")
    if not 1 <= args.port <= 65535:
        raise UsageError(f"--port must be an int in [1, 65535]. Got {args.port} instead.")
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", "127.0.0.1",
           "--port", str(args.port)]
    print(f"Serving {uri} at http://127.0.0.1:{args.port} (Ctrl-C to stop)", file=sys.stderr)
    os.execv(sys.executable, cmd)
    return ExitCode.OK  # not reached
