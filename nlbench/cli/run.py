"""`nlbench run`: build the suite once from its file and the command line, validate it, run it, record it."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from nlbench.cli.common import ExitCode, add_data_dir, add_tracking, data_dir, out_dir, show_data_resolution
from nlbench.core.errors import UsageError

BACKEND_ENV = "NLBENCH_BACKEND"


def add_parser(sub: Any) -> None:
    run = sub.add_parser("run", help="Run a benchmark suite (default: 'default')", allow_abbrev=False)
    run.add_argument("suite", nargs="?", default="default", help="Built-in suite name or path to a .toml file")
    add_suite_flags(run)
    run.add_argument("--rerun", action="store_true",
                     help="Run every run again, even those whose config already FINISHED in the experiment")
    run.add_argument("--report-dir", default="results", metavar="DIR",
                     help="Where a suite's report (e.g. heart-table's model table) is written. Default: results")
    run.set_defaults(func=cmd_run)


def add_suite_flags(run: argparse.ArgumentParser) -> None:
    """The flags that shape a suite and where its runs execute (`nlbench run` and `nlbench tune`)."""
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="assignments",
                     help="Set a suite key before validation, TOML value (e.g. --set train.lr=0.05, "
                          "--set method.ewc.ewc_lambda=10); repeatable")
    run.add_argument("--seeds", type=int, nargs="+", metavar="N", help="Seeds to run instead of the suite's")
    run.add_argument("--only", action="append", default=[], metavar="NAME[,NAME]",
                     help="Keep only these scenarios and/or methods (multi-allowed)")
    run.add_argument("--experiment", help="MLflow experiment name. Default: nlbench-<suite name>")
    run.add_argument("--device", help="Device for every run (auto, cpu, cuda[:N]). Default: the suite's")
    run.add_argument("--kernel-backend", metavar="NAME",
                     help="Delta-rule kernel for every run: auto, reference (kernels off), numba, triton. "
                          "Default: $NLBENCH_KERNEL_BACKEND, else the suite's (auto)")
    run.add_argument("--threads", type=int, metavar="N",
                     help="torch, BLAS and numba threads per run; results depend on it, so it is part of each "
                          "run's config (0: this machine's cores shared among the jobs). Default: the suite's (1)")
    run.add_argument("--backend", metavar="NAME",
                     help="Where runs execute: serial (this process), process (a local pool of worker processes), "
                          "ray, or auto (process on a machine with more than one core). "
                          f"Default: ${BACKEND_ENV}, else the suite's (auto)")
    run.add_argument("--jobs", "-j", type=int, metavar="N",
                     help="Runs at once (process backend; 0: one per core). Default: the suite's (0)")
    run.add_argument("--ray-address", metavar="ADDRESS",
                     help="An existing Ray cluster for --backend ray ('auto', 'ray://HOST:10001'). Default: "
                          "$RAY_ADDRESS, else a local Ray instance started for this suite")
    run.add_argument("--subsample", type=int, metavar="N",
                     help="At most N training images per experience for every scenario with a 'subsample' "
                          "option (the MNIST streams)")
    run.add_argument("--no-progress", action="store_true", help="Hide the progress bar")
    add_data_dir(run)
    add_tracking(run)


def overrides(args: argparse.Namespace) -> list[Any]:
    """The command line (and the environment it names) as edits of the suite document, lowest first."""
    from nlbench.kernels.dispatch import ENV as KERNEL_ENV
    from nlbench.run.overrides import parse_assignment, setting

    edits = []
    if os.environ.get(KERNEL_ENV) and args.kernel_backend is None:
        edits.append(setting("kernel_backend", os.environ[KERNEL_ENV], f"${KERNEL_ENV}={os.environ[KERNEL_ENV]}"))
    folder = data_dir(args)
    if folder:
        edits.append(setting("data_dir", folder, "--data-dir / $NLBENCH_DATA"))
    for key, value in (("seeds", args.seeds), ("device", args.device), ("experiment", args.experiment),
                       ("kernel_backend", args.kernel_backend), ("threads", args.threads),
                       ("backend", args.backend), ("jobs", args.jobs)):
        if value is not None:
            shown = " ".join(map(str, value)) if isinstance(value, list) else value
            edits.append(setting(key, value, f"--{key.replace('_', '-')} {shown}"))
    return edits + [parse_assignment(pair) for pair in args.assignments]


def backend_from_env(suite: Any, args: argparse.Namespace) -> Any:
    """$NLBENCH_BACKEND picks the backend when --backend does not (it changes where runs execute, never what they
    compute, so it is not an edit of the suite)."""
    import dataclasses

    from nlbench.run.backends import BACKENDS

    value = os.environ.get(BACKEND_ENV, "")
    if not value or args.backend is not None:
        return suite
    if value not in BACKENDS:
        raise UsageError(f"${BACKEND_ENV} must be one of {', '.join(BACKENDS)}. Got {value!r} instead.")
    return dataclasses.replace(suite, backend=value)


def subsample_overrides(suite: Any, n: int) -> list[Any]:
    """`--subsample N` as `scenario.LABEL.subsample = N` for every scenario of the suite that takes it."""
    from nlbench.core.registry import SCENARIOS
    from nlbench.run.overrides import Override

    if n < 1:
        raise UsageError(f"--subsample must be an int >= 1. Got {n} instead.")
    labels = [label for label in suite.scenarios
              if "subsample" in SCENARIOS.get(suite.scenario_parts(label)[0]).params()]
    if not labels:
        raise UsageError("--subsample applies to scenarios with a 'subsample' option (split-mnist, permuted-mnist, "
                         "rotated-mnist); none of this suite's scenarios has one.")
    return [Override(("scenario", label, "subsample"), n, f"--subsample {n}") for label in labels]


def only_names(args: argparse.Namespace) -> list[str]:
    only = [name.strip() for item in args.only for name in item.split(",") if name.strip()]
    if args.only and not only:
        raise UsageError(f"--only {' '.join(args.only)!r} names no scenario or method; give names, or drop --only.")
    return only


def suite_from_args(args: argparse.Namespace) -> Any:
    """The suite with the command line's edits, validated."""
    from nlbench.run.suite import load_suite

    edits = overrides(args)
    suite = load_suite(args.suite, edits)
    if args.subsample is not None:
        suite = load_suite(args.suite, edits + subsample_overrides(suite, args.subsample))
    return backend_from_env(suite, args)


def backend_from_args(suite: Any, args: argparse.Namespace, threads: int) -> Any:
    from nlbench.run.backends import RAY_ADDRESS_ENV, make_backend

    if args.ray_address is not None and suite.execution[0] != "ray":
        raise UsageError(f"--ray-address applies to --backend ray; this suite runs on '{suite.execution[0]}'.")
    return make_backend(suite.backend, suite.jobs, threads, args.ray_address or os.environ.get(RAY_ADDRESS_ENV, ""))


def cmd_run(args: argparse.Namespace) -> int:
    from nlbench.results.summary import format_summary, results_frame
    from nlbench.results.uri import check_tracking_uri
    from nlbench.run.execute import check_data
    from nlbench.run.runner import run_suite

    only = only_names(args)
    suite = suite_from_args(args)
    configs = suite.run_configs(only=only)
    uri = check_tracking_uri(args.tracking_uri)  # every input is checked before the store is first written
    if suite.report:
        out_dir(args.report_dir, "--report-dir")
    show_data_resolution()
    check_data(configs)
    backend = backend_from_args(suite, args, configs[0].threads)
    print(f"nlbench: suite '{suite.name}': {len(configs)} runs -> MLflow experiment "
          f"'{suite.experiment_name}' at {uri}; {backend.describe()}", file=sys.stderr)
    outcome = run_suite(suite, configs, uri, progress=not args.no_progress, backend=backend, rerun=args.rerun)
    if outcome.results:
        print(format_summary(results_frame(outcome.results)))
    if suite.report and outcome.tracking_error is None:
        write_report(suite, outcome, args, uri)
    print(f"\n{len(outcome.results) - len(outcome.failed)}/{len(outcome.results)} runs finished in "
          f"{outcome.wall_time_s:.1f} s; parent run {outcome.parent_run_id} in experiment '{outcome.experiment}'.")
    for line in resume_lines(outcome):
        print(line)
    if outcome.tracking_error is not None:
        print(f"ERROR: {outcome.tracking_error}. {outcome.spooled} finished results are kept in "
              f"{outcome.spool_folder}; run the same command again once the store answers: it uploads them and "
              "runs only what is missing.", file=sys.stderr)
        return ExitCode.TRACKING_ERROR
    if not uri.startswith(("http://", "https://")):
        print(f"Open MLflow with: nlbench ui{'' if args.tracking_uri is None else ' --tracking-uri ' + uri}")
    if outcome.failed:  # each was printed as it failed
        return ExitCode.RUNS_FAILED
    return ExitCode.OK


def resume_lines(outcome: Any) -> list[str]:
    """What this invocation did not have to run, and what it cleaned up."""
    lines = []
    if outcome.skipped:
        lines.append(f"{len(outcome.skipped)}/{outcome.total} runs skipped: the same config already FINISHED in "
                     "the experiment (--rerun runs them again).")
    if outcome.uploaded:
        lines.append(f"{outcome.uploaded} results kept locally by an earlier invocation were uploaded.")
    if outcome.reaped:
        lines.append(f"{len(outcome.reaped)} runs left RUNNING by a process that is gone were marked KILLED: "
                     f"{', '.join(outcome.reaped[:5])}{' ...' if len(outcome.reaped) > 5 else ''}.")
    return lines


def write_report(suite: Any, outcome: Any, args: argparse.Namespace, uri: str) -> None:
    """The suite's report: a model table from the runs this invocation recorded, or the reproduction report from
    every finished run of the experiment (a suite run in parts with --only fills it part by part)."""
    from pathlib import Path

    from nlbench.results.model_table import write_model_tables
    from nlbench.results.reproduce import write_reproduce_report

    if suite.report == "reproduce":
        md, sentence = write_reproduce_report(uri, suite.name, Path(args.report_dir),
                                              f"nlbench reproduce-report --suite {suite.name}",
                                              experiment=suite.experiment_name)
        print(f"\nReproduction report: {md}. {sentence}")
        return

    command = f"nlbench model-table --suite {suite.name}"
    written = write_model_tables(uri, suite.name, Path(args.report_dir), command, experiment=suite.experiment_name,
                                 data_dir=data_dir(args), run_ids=outcome.run_ids)
    print(f"\nModel table: {', '.join(str(p) for p in written) or 'nothing (no binary scenario finished)'}")
