"""`nlbench leaderboard`, `nlbench nested-report` and `nlbench model-table`: tables regenerated from the store."""

from __future__ import annotations

import argparse
import os
from typing import Any

from nlbench.cli.common import ExitCode, add_data_dir, add_filters, add_tracking, data_dir, out_dir, store_uri
from nlbench.core.errors import UsageError


def add_parsers(sub: Any) -> None:
    from nlbench.results.schema import RANKABLE  # not from leaderboard: that imports pandas and scipy

    board = sub.add_parser("leaderboard", help="Rank methods per scenario over seeds from the runs in MLflow",
                           allow_abbrev=False)
    _add_selection(board)
    board.add_argument("--since", metavar="DATE", help="Only runs started on or after this date (UTC)")
    board.add_argument("--rank-by", default="acc", choices=RANKABLE,
                       help="Metric to rank by (ties: lower forgetting). Default: acc")
    board.add_argument("--reference", default="naive", help="Method every other is paired against. Default: naive")
    board.add_argument("--out", default="results", metavar="DIR",
                       help="Directory for LEADERBOARD.md, leaderboard.csv and plots/. Default: results")
    board.set_defaults(func=cmd_leaderboard)

    study = sub.add_parser("nested-report", help="Every Nested Learning method against its flat control and "
                                                 "naive (paired, ACC and forgetting), and forgetting against the "
                                                 "slowest period and the base lr, from the runs in MLflow",
                           allow_abbrev=False)
    _add_selection(study)
    study.add_argument("--reference", default="naive", help="Method every other is paired against. Default: naive")
    study.add_argument("--control", action="append", default=[], metavar="METHOD=CONTROL",
                       help="Pair METHOD with CONTROL instead of its own flat control (repeatable)")
    study.add_argument("--out", default="results", metavar="DIR",
                       help="Directory for NESTED.md, nested.csv and plots/. Default: results")
    study.set_defaults(func=cmd_nested_report)

    table = sub.add_parser("model-table", help="The model-comparison table of a suite's binary scenarios (accuracy, "
                                               "ROC AUC, time, parameters) from the runs in MLflow", allow_abbrev=False)
    _add_selection(table)
    table.add_argument("--out", default="results", metavar="DIR",
                       help="Directory for <scenario>.md, .csv, _roc.png and _confusion.png. Default: results")
    add_data_dir(table)
    table.set_defaults(func=cmd_model_table)

    rep = sub.add_parser("reproduce-report", help="Published numbers next to nlbench's (results/reproduce.md) from "
                                                  "the runs of the reproduce suite in MLflow", allow_abbrev=False)
    rep.add_argument("--suite", default="reproduce", help="Suite whose runs to read. Default: reproduce")
    rep.add_argument("--experiment", help="MLflow experiment name. Default: nlbench-<suite>")
    add_tracking(rep)
    rep.add_argument("--out", default="results", metavar="DIR",
                     help="Directory for reproduce.md and reproduce.csv. Default: results")
    rep.set_defaults(func=cmd_reproduce_report)


def _add_selection(p: argparse.ArgumentParser) -> None:
    p.add_argument("--suite", default="default", help="Suite whose runs to read. Default: default")
    p.add_argument("--experiment", help="MLflow experiment name. Default: nlbench-<suite>")
    add_filters(p, "runs")
    add_tracking(p)


def command_line(args: argparse.Namespace, name: str, flags: tuple[str, ...], defaults: dict[str, str],
                 tags: dict[str, str]) -> str:
    """The command that regenerates a table, for its header: no machine paths, no defaults."""
    command = f"nlbench {name} --suite {args.suite}" + "".join(
        f" --{flag.replace('_', '-')} {getattr(args, flag)}" for flag in flags if getattr(args, flag, None))
    command += "".join(f" --tag {key}={value}" for key, value in tags.items())
    if args.out != "results" and not os.path.isabs(args.out):  # an absolute path is this machine's only
        command += f" --out {args.out}"
    return command + "".join(f" --{flag.replace('_', '-')} {getattr(args, flag)}" for flag, default in
                             defaults.items() if getattr(args, flag) != default)


def _filters(args: argparse.Namespace) -> dict[str, Any]:
    from nlbench.results.store import parse_tag_filters

    return {"scenario": args.scenario, "method": args.method, "family": args.family,
            "tags": parse_tag_filters(args.tag)}


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from nlbench.results.report import build_report

    out, filters = out_dir(args.out), _filters(args)
    command = command_line(args, "leaderboard", ("experiment", "scenario", "method", "family", "since"),
                           {"rank_by": "acc", "reference": "naive"}, filters["tags"])
    text, paths = build_report(store_uri(args), args.suite, out, command,
                               experiment=args.experiment, rank_by=args.rank_by, reference=args.reference,
                               since=args.since, **filters)
    print(text)
    print(f"\nWrote {len(paths)} files under {args.out}/ (LEADERBOARD.md, leaderboard.csv, plots/); "
          "also logged to the suite's latest parent run.")
    return ExitCode.OK


def cmd_nested_report(args: argparse.Namespace) -> int:
    from nlbench.results.report import build_nested_report

    out, filters = out_dir(args.out), _filters(args)
    pairs = {}
    for item in args.control:
        method, sep, control = item.partition("=")
        if not sep or not method or not control:
            raise UsageError(f"--control {item!r}: expected METHOD=CONTROL, e.g. --control cms=cms-flat-lr.")
        pairs[method] = control
    command = command_line(args, "nested-report", ("experiment", "scenario", "method", "family"),
                           {"reference": "naive"}, filters["tags"])
    command += "".join(f" --control {m}={c}" for m, c in pairs.items())
    text, paths = build_nested_report(store_uri(args), args.suite, out, command, experiment=args.experiment,
                                      reference=args.reference, pairs=pairs, **filters)
    print(text)
    print(f"\nWrote {len(paths)} files under {args.out}/ (NESTED.md, nested.csv, plots/).")
    return ExitCode.OK


def cmd_reproduce_report(args: argparse.Namespace) -> int:
    from nlbench.results.reproduce import write_reproduce_report

    command = f"nlbench reproduce-report --suite {args.suite}" + (
        f" --experiment {args.experiment}" if args.experiment else "")
    md, sentence = write_reproduce_report(store_uri(args), args.suite, out_dir(args.out), command,
                                          experiment=args.experiment)
    print(f"Wrote {md} and reproduce.csv. {sentence}")
    return ExitCode.OK


def cmd_model_table(args: argparse.Namespace) -> int:
    from nlbench.results.model_table import write_model_tables

    out, filters = out_dir(args.out), _filters(args)
    command = command_line(args, "model-table", ("experiment", "scenario", "method", "family"), {}, filters["tags"])
    paths = write_model_tables(store_uri(args), args.suite, out, command,
                               experiment=args.experiment, data_dir=data_dir(args), **filters)
    print(f"Model table: {', '.join(str(p) for p in paths) or 'nothing (no binary scenario in these runs)'}")
    return ExitCode.OK
