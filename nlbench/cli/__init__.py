"""`nlbench` command line: run suites, list what is registered, inspect runs, open the MLflow UI.

`main(argv) -> int` is callable from tests; `console_main` is the thin entry point.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from enum import IntEnum
from typing import Any

from nlbench.core.errors import NlbenchError, UsageError


class ExitCode(IntEnum):
    OK = 0
    RUNS_FAILED = 1
    USAGE_ERROR = 2
    INTERNAL_ERROR = 3
    INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse exits 2 as well; keep one message format
        raise UsageError(f"{self.prog}: {message}")


def _add_tracking(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tracking-uri", metavar="URI",
                   help="MLflow store or server. Default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db here")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nlbench", allow_abbrev=False,
                     description="Continual-learning benchmark harness: accuracy and forgetting of "
                                 "Nested Learning, classic CL and sklearn methods, tracked in MLflow.")
    from nlbench import __version__

    parser.add_argument("--version", action="version", version=f"nlbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    run = sub.add_parser("run", help="Run a benchmark suite (default: 'default')", allow_abbrev=False)
    run.add_argument("suite", nargs="?", default="default", help="Built-in suite name or path to a .toml file")
    run.add_argument("--seeds", type=int, nargs="+", metavar="N", help="Seeds to run instead of the suite's")
    run.add_argument("--only", action="append", default=[], metavar="NAME[,NAME]",
                     help="Keep only these scenarios and/or methods (multi-allowed)")
    run.add_argument("--experiment", help="MLflow experiment name. Default: nlbench-<suite name>")
    run.add_argument("--device", help="Device for every run (auto, cpu, cuda[:N]). Default: the suite's")
    run.add_argument("--no-progress", action="store_true", help="Hide the progress bar")
    run.add_argument("--report-dir", default="results", metavar="DIR",
                     help="Where a suite's report (e.g. heart-table's model table) is written. Default: results")
    run.add_argument("--subsample", type=int, metavar="N",
                     help="At most N training images per experience for every scenario with a 'subsample' "
                          "option (the MNIST streams)")
    _add_data_dir(run)
    _add_tracking(run)

    new = sub.add_parser("new", help="Write the skeleton of a new scenario module and its test", allow_abbrev=False)
    new_sub = new.add_subparsers(dest="new_kind", metavar="KIND", parser_class=_Parser, required=True)
    new_scen = new_sub.add_parser("scenario", help="scenarios/<name>.py and tests/test_scenario_<name>.py",
                                  allow_abbrev=False)
    new_scen.add_argument("name", help="kebab-case scenario name, e.g. my-stream")
    new_scen.add_argument("--dir", default=".", help="Root of the nlbench checkout. Default: the current directory")

    scen = sub.add_parser("scenarios", help="Inspect scenarios (check: duplicate rows across train/test)",
                          allow_abbrev=False)
    scen_sub = scen.add_subparsers(dest="scenarios_command", metavar="ACTION", parser_class=_Parser, required=True)
    check = scen_sub.add_parser("check", help="Report exact duplicate rows within and across train and test sets",
                                allow_abbrev=False)
    check.add_argument("name", help="Registered scenario name (see `nlbench list`)")
    check.add_argument("--seed", type=int, default=0, help="Seed of the split. Default: 0")
    check.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="A scenario option, TOML value (e.g. --set 'sites=[\"va\"]'); repeatable")
    _add_data_dir(check)

    lst = sub.add_parser("list", help="List scenarios, strategies, baselines and suites", allow_abbrev=False)
    lst.add_argument("--params", action="store_true", help="Also show each method's and scenario's defaults")

    runs = sub.add_parser("runs", help="Show recent runs as a table", allow_abbrev=False)
    runs.add_argument("--suite", help="Only runs of this suite")
    runs.add_argument("--scenario", help="Only runs on this scenario")
    runs.add_argument("--method", help="Only runs of this method")
    runs.add_argument("--family", choices=["nested", "avalanche", "sklearn"], help="Only runs of this method family")
    runs.add_argument("--tag", action="append", metavar="KEY=VALUE", help="Only runs with this tag (repeatable)")
    runs.add_argument("--status", choices=["FINISHED", "FAILED", "RUNNING", "KILLED"], help="Only runs in this state")
    runs.add_argument("--sort", default="started", choices=["started", "acc", "forgetting", "train_time"],
                      help="Order: newest first, best ACC, least forgetting or fastest. Default: started")
    runs.add_argument("--limit", type=int, default=20, help="How many runs to show. Default: 20")
    _add_tracking(runs)

    show = sub.add_parser("show", help="One run: params, final metrics, accuracy matrix, artifacts",
                          allow_abbrev=False)
    show.add_argument("run_id", help="MLflow run id (see `nlbench runs`)")
    _add_tracking(show)

    cmp_ = sub.add_parser("compare", help="Two runs side by side: differing params and metrics", allow_abbrev=False)
    cmp_.add_argument("run_a", help="MLflow run id")
    cmp_.add_argument("run_b", help="MLflow run id")
    _add_tracking(cmp_)

    board = sub.add_parser("leaderboard", help="Rank methods per scenario over seeds from the runs in MLflow",
                           allow_abbrev=False)
    board.add_argument("--suite", default="default", help="Suite whose runs to rank. Default: default")
    board.add_argument("--experiment", help="MLflow experiment name. Default: nlbench-<suite>")
    board.add_argument("--scenario", help="Only this scenario")
    board.add_argument("--method", help="Only this method")
    board.add_argument("--family", choices=["nested", "avalanche", "sklearn"], help="Only this method family")
    board.add_argument("--since", metavar="DATE", help="Only runs started on or after this date (UTC)")
    board.add_argument("--tag", action="append", metavar="KEY=VALUE", help="Only runs with this tag (repeatable)")
    board.add_argument("--rank-by", default="acc", choices=["acc", "forgetting", "bwt", "fwt", "la", "bacc", "auc"],
                       help="Metric to rank by (ties: lower forgetting). Default: acc")
    board.add_argument("--reference", default="naive", help="Method every other is paired against. Default: naive")
    board.add_argument("--out", default="results", metavar="DIR",
                       help="Directory for LEADERBOARD.md, leaderboard.csv and plots/. Default: results")
    _add_tracking(board)

    bench = sub.add_parser("bench", help="Benchmarks, printed as ratios against a same-run reference",
                           allow_abbrev=False)
    bench.add_argument("what", choices=["overhead", "step", "optimizers", "kernels"],
                       help="overhead: nlbench vs a plain PyTorch loop for naive on split-digits; "
                            "step: one training step of cms/hope/titans vs a parameter-matched naive MLP; "
                            "optimizers: one MLP training step under each deep/meta optimizer vs torch's SGD and Adam; "
                            "kernels: the delta-rule memory kernels vs their PyTorch reference")
    bench.add_argument("--repeats", type=int, help="Timed repetitions after warm-up. Default: 5 (overhead), "
                                                   "100 (step), 200 (optimizers), 3 (kernels)")
    bench.add_argument("--out", metavar="FILE", help="Also write the table to this Markdown file")

    ui = sub.add_parser("ui", help="Start the MLflow UI on 127.0.0.1 for the same store", allow_abbrev=False)
    ui.add_argument("--port", type=int, default=5000, help="Port. Default: 5000")
    _add_tracking(ui)
    return parser


def _add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", metavar="DIR",
                        help="Folder with external datasets (heart: the UCI processed.*.data files). "
                             "Default: $NLBENCH_DATA, then the user cache, then installed packages")


class _StderrHandler(logging.StreamHandler):
    """Writes to the current sys.stderr, even after it was replaced (pytest's capture, a redirect)."""

    stream = property(lambda self: sys.stderr, lambda self, value: None)


def _use_data_dir(args: argparse.Namespace) -> None:
    """`--data-dir` for this process and any worker it starts; data resolution steps printed to stderr."""
    from nlbench.data.sources.files import DATA_ENV

    if args.data_dir:
        os.environ[DATA_ENV] = args.data_dir
    logger = logging.getLogger("nlbench.data")
    if not logger.handlers:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("nlbench: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def _scenario_options(pairs: Sequence[str]) -> dict[str, Any]:
    import tomllib

    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set must look like KEY=VALUE (e.g. --set test_size=0.2). Got {pair!r} instead.")
        try:
            options[key.strip()] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            options[key.strip()] = value  # a bare word: a string
    return options


def cmd_new(args: argparse.Namespace) -> int:
    from pathlib import Path

    from nlbench.cli.new import new_scenario

    for path in new_scenario(args.name, Path(args.dir)):
        print(f"wrote {path}")
    print(f"Next: edit load() and make_experiences(), then `python -m pytest -q {path}` and "
          f"`nlbench scenarios check {args.name}`.")
    return ExitCode.OK


def cmd_scenarios(args: argparse.Namespace) -> int:
    from nlbench.core.registry import SCENARIOS
    from nlbench.data.duplicates import duplicate_report, format_report

    _use_data_dir(args)
    if args.seed < 0:
        raise UsageError(f"--seed must be a non-negative int. Got {args.seed} instead.")
    scenario = SCENARIOS.get(args.name)(where="--set", **_scenario_options(args.set))
    data = scenario.build(args.seed)
    report = duplicate_report(data.raw_rows())
    print(f"{args.name} (seed {args.seed}, data: {data.source}): {data.info.n_experiences} experiences, "
          f"{data.info.setting}")
    print(format_report(report))
    if report.leaks:
        print(f"LEAK: {report.leaks} test rows also occur in a training set.")
        return ExitCode.RUNS_FAILED
    print("No test row occurs in any training set.")
    return ExitCode.OK


def apply_subsample(configs: Sequence[Any], n: int) -> None:
    """`--subsample N` into the options of every run whose scenario takes a 'subsample' option."""
    from nlbench.core.registry import SCENARIOS

    if n < 1:
        raise UsageError(f"--subsample must be an int >= 1. Got {n} instead.")
    takers = [c for c in configs if "subsample" in SCENARIOS.get(c.scenario_name)._parameter_constraints]
    if not takers:
        raise UsageError("--subsample applies to scenarios with a 'subsample' option (split-mnist, permuted-mnist, "
                         "rotated-mnist); none of this suite's scenarios has one.")
    for config in takers:
        config.scenario_options["subsample"] = n


def cmd_run(args: argparse.Namespace) -> int:
    from nlbench.results.summary import format_summary, results_frame
    from nlbench.results.tracking import resolve_tracking_uri
    from nlbench.run.config import DEVICES, is_valid_device, load_suite
    from nlbench.run.runner import check_data, run_suite

    suite = load_suite(args.suite)
    if args.experiment:
        suite.experiment = args.experiment
    if args.device:
        if not is_valid_device(args.device):
            raise UsageError(f"--device must be {DEVICES}. Got {args.device!r} instead.")
        suite.device = args.device
    if args.seeds is not None and any(s < 0 for s in args.seeds):
        raise UsageError(f"--seeds must be non-negative ints. Got {args.seeds} instead.")
    only = [name for item in args.only for name in item.split(",") if name]
    configs = suite.run_configs(seeds=args.seeds, only=only)
    if args.subsample is not None:
        apply_subsample(configs, args.subsample)
    _use_data_dir(args)
    check_data(configs)
    uri = resolve_tracking_uri(args.tracking_uri)
    print(f"nlbench: suite '{suite.name}': {len(configs)} runs -> MLflow experiment "
          f"'{suite.experiment_name}' at {uri}", file=sys.stderr)
    outcome = run_suite(suite, configs, uri, progress=not args.no_progress)
    print(format_summary(results_frame(outcome.results)))
    if suite.report == "model-table":
        from pathlib import Path

        from nlbench.results.model_table import write_model_table
        from nlbench.results.tracking import environment_tags

        written = write_model_table(suite, outcome.results, Path(args.report_dir), environment_tags(suite.device))
        print(f"\nModel table: {', '.join(str(p) for p in written) or 'nothing (no binary scenario finished)'}")
    print(f"\n{len(outcome.results) - len(outcome.failed)}/{len(outcome.results)} runs finished in "
          f"{outcome.wall_time_s:.1f} s; parent run {outcome.parent_run_id} in experiment '{outcome.experiment}'.")
    print(f"Open MLflow with: nlbench ui{'' if args.tracking_uri is None else ' --tracking-uri ' + uri}")
    if outcome.failed:
        for r in outcome.failed:
            print(f"FAILED {r.config.run_name}: {r.error}", file=sys.stderr)
        return ExitCode.RUNS_FAILED
    return ExitCode.OK


def cmd_list(args: argparse.Namespace) -> int:
    from nlbench.core.registry import BASELINES, SCENARIOS, STRATEGIES
    from nlbench.run.config import builtin_suites, load_suite

    def show(title: str, registry: object) -> None:
        print(f"{title}:")
        names = registry.names()
        if not names:
            print("  (none yet)")
        for name in names:
            try:
                cls = registry.get(name)
            except NlbenchError as exc:
                print(f"  {name:<18} BROKEN: {exc}")
                continue
            extra = f" [{cls.FAMILY}]" if hasattr(cls, "FAMILY") else f" [{cls.SETTING}]"
            print(f"  {name:<18} {cls.description()}{extra}")
            if args.params:
                defaults = cls.resolve() if hasattr(cls, "resolve") else cls.DEFAULTS  # resolved, as runs log them
                print("  " + " " * 18 + " " + ", ".join(f"{k}={v!r}" for k, v in defaults.items()))

    show("Scenarios", SCENARIOS)
    show("Strategies", STRATEGIES)
    show("Baselines", BASELINES)
    print("Suites:")
    for name in sorted(builtin_suites()):
        print(f"  {name:<18} {load_suite(name).description}")
    return ExitCode.OK


RUN_ORDER = {"started": "attributes.start_time DESC", "acc": "metrics.`final/acc` DESC",
             "forgetting": "metrics.`final/forgetting` ASC", "train_time": "metrics.`time/train_s` ASC"}


def cmd_runs(args: argparse.Namespace) -> int:
    import mlflow
    import pandas as pd

    from nlbench.results.tracking import parse_tag_filters, resolve_tracking_uri, run_filter

    uri = resolve_tracking_uri(args.tracking_uri)
    mlflow.set_tracking_uri(uri)
    filters = [run_filter(parse_tag_filters(args.tag), kind="run", suite=args.suite, scenario=args.scenario,
                          method=args.method, family=args.family)]
    if args.status:
        filters.append(f"attributes.status = '{args.status}'")
    experiments = [e.experiment_id for e in mlflow.search_experiments()]
    if not experiments:
        print(f"No runs in {uri}.")
        return ExitCode.OK
    df = mlflow.search_runs(experiment_ids=experiments, filter_string=" and ".join(filters),
                            max_results=args.limit, order_by=[RUN_ORDER[args.sort]])
    if df.empty:
        print(f"No matching runs in {uri}.")
        return ExitCode.OK
    cols = {"start_time": "started", "tags.suite": "suite", "tags.scenario": "scenario",
            "tags.method": "method", "tags.seed": "seed", "status": "status",
            "metrics.final/acc": "ACC", "metrics.final/forgetting": "forgetting", "run_id": "run_id"}
    table = pd.DataFrame({v: df.get(k) for k, v in cols.items()})
    table["started"] = pd.to_datetime(table["started"]).dt.strftime("%Y-%m-%d %H:%M")
    print(table.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    return ExitCode.OK


def cmd_ui(args: argparse.Namespace) -> int:
    from nlbench.results.tracking import resolve_tracking_uri

    uri = resolve_tracking_uri(args.tracking_uri)
    if uri.startswith(("http://", "https://")):
        raise UsageError(f"--tracking-uri {uri} is already a tracking server: open it in a browser.")
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", "127.0.0.1",
           "--port", str(args.port)]
    print(f"Serving {uri} at http://127.0.0.1:{args.port} (Ctrl-C to stop)", file=sys.stderr)
    os.execv(sys.executable, cmd)
    return ExitCode.OK  # not reached


def _client(args: argparse.Namespace) -> Any:
    from mlflow.tracking import MlflowClient

    from nlbench.results.tracking import resolve_tracking_uri

    return MlflowClient(resolve_tracking_uri(args.tracking_uri))


def cmd_show(args: argparse.Namespace) -> int:
    from nlbench.results.inspection import show

    print(show(_client(args), args.run_id))
    return ExitCode.OK


def cmd_compare(args: argparse.Namespace) -> int:
    from nlbench.results.inspection import compare

    print(compare(_client(args), args.run_a, args.run_b))
    return ExitCode.OK


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from pathlib import Path

    from nlbench.results.report import build_report
    from nlbench.results.tracking import parse_tag_filters, resolve_tracking_uri

    uri = resolve_tracking_uri(args.tracking_uri)
    tags = parse_tag_filters(args.tag)
    command = f"nlbench leaderboard --suite {args.suite}" + "".join(
        f" --{flag.replace('_', '-')} {getattr(args, flag)}"
        for flag in ("experiment", "scenario", "method", "family", "since") if getattr(args, flag))
    command += "".join(f" --tag {key}={value}" for key, value in tags.items())
    if args.out != "results" and not os.path.isabs(args.out):  # an absolute path is this machine's only
        command += f" --out {args.out}"
    command += "".join(f" --{flag.replace('_', '-')} {getattr(args, flag)}" for flag, default in
                       (("rank_by", "acc"), ("reference", "naive")) if getattr(args, flag) != default)
    text, paths = build_report(uri, args.suite, Path(args.out), command, experiment=args.experiment,
                               rank_by=args.rank_by, reference=args.reference, scenario=args.scenario,
                               method=args.method, family=args.family, since=args.since, tags=tags)
    print(text)
    print(f"\nWrote {len(paths)} files under {args.out}/ (LEADERBOARD.md, leaderboard.csv, plots/); "
          "also logged to the suite's latest parent run.")
    return ExitCode.OK


def cmd_bench(args: argparse.Namespace) -> int:
    if args.repeats is not None and args.repeats < 1:
        raise UsageError(f"--repeats must be >= 1. Got {args.repeats} instead.")
    from nlbench.bench import kernel_cost, optimizer_cost, overhead, step_cost

    bench = {"step": lambda: step_cost(repeats=args.repeats or 100),
             "overhead": lambda: overhead(repeats=args.repeats or 5),
             "optimizers": lambda: optimizer_cost(repeats=args.repeats or 200),
             "kernels": lambda: kernel_cost(repeats=args.repeats or 3)}
    table = bench[args.what]()
    print(table)
    if args.out:
        from pathlib import Path

        Path(args.out).write_text(table + "\n", encoding="utf-8")
    return ExitCode.OK


COMMANDS = {"run": cmd_run, "new": cmd_new, "scenarios": cmd_scenarios, "list": cmd_list, "runs": cmd_runs,
            "show": cmd_show, "compare": cmd_compare, "leaderboard": cmd_leaderboard, "bench": cmd_bench, "ui": cmd_ui}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return ExitCode.USAGE_ERROR
        return int(COMMANDS[args.command](args))
    except UsageError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return ExitCode.USAGE_ERROR
    except NlbenchError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return ExitCode.INTERNAL_ERROR
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return ExitCode.INTERRUPTED


def console_main() -> None:
    sys.exit(main())
