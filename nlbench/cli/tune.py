"""`nlbench tune`: tune a suite's methods fairly (same budget, sampler and seed; never on the reported test data)
and write the tuned suite; `nlbench tuned-table`: the default-vs-tuned comparison from the runs of both suites."""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import Any

from nlbench.cli.common import ExitCode, add_tracking, out_dir, show_data_resolution, store_uri
from nlbench.core.errors import UsageError

# Edits that say where this machine runs things, not what runs: not copied into the tuned suite.
EXECUTION_ONLY = (("data_dir",), ("backend",), ("jobs",))


def add_parsers(sub: Any) -> None:
    from nlbench.cli.run import add_suite_flags
    from nlbench.run.metrics import METRICS
    from nlbench.tune.choices import PROTOCOLS, PRUNERS

    tune = sub.add_parser("tune", help="Tune every method of a suite with Optuna (equal budget, validation data "
                                       "only) and write the tuned suite file", allow_abbrev=False)
    tune.add_argument("suite", nargs="?", default="default", help="Built-in suite name or path to a .toml file")
    tune.add_argument("--budget", type=int, default=20, metavar="N",
                      help="Trials per (scenario, method), the same for every method. Default: 20")
    tune.add_argument("--protocol", default="first-experiences", metavar="NAME",
                      help=f"Tuning data: {' or '.join(PROTOCOLS)} (a whole stream built with the tuning seed). "
                           "Both use validation rows carved from training data, never a reported test row. "
                           "Default: first-experiences")
    tune.add_argument("--experiences", type=int, default=1, metavar="K",
                      help="first-experiences: tune on the first K experiences. Default: 1")
    tune.add_argument("--val-share", type=float, default=0.2, metavar="F",
                      help="Share of the tuning rows held out for validation. Default: 0.2")
    tune.add_argument("--seed", type=int, default=1000, metavar="N",
                      help="Seed of the tuning stream and of the sampler; must not be a seed the suite reports. "
                           "Default: 1000")
    tune.add_argument("--objective", default="acc", metavar="METRIC",
                      help=f"Final validation metric to optimise: {', '.join(m.name for m in METRICS)}. "
                           "Default: acc")
    tune.add_argument("--pruner", default="median", metavar="NAME",
                      help=f"Stop trials early after an experience: {', '.join(PRUNERS)}. Default: median")
    tune.add_argument("--storage", metavar="URL",
                      help="Optuna storage (a database URL). Default: optuna.db beside an embedded MLflow store, "
                           "else ./optuna.db")
    tune.add_argument("--out", default="tuned", metavar="DIR",
                      help="Where <suite>.toml (the tuned suite) and <suite>.md (the chosen values) go. "
                           "Default: tuned")
    tune.add_argument("--tuned-name", metavar="NAME",
                      help="Name of the tuned suite (its runs go to experiment nlbench-NAME), to keep the results "
                           "of several tunings apart. Default: <suite>-tuned")
    add_suite_flags(tune)
    tune.set_defaults(func=cmd_tune)

    table = sub.add_parser("tuned-table", help="Default vs tuned ACC and forgetting per method, from the runs of "
                                               "a suite and of its tuned suite", allow_abbrev=False)
    table.add_argument("--suite", default="default", help="The suite that was tuned. Default: default")
    table.add_argument("--tuned-suite", metavar="FILE", help="The tuned suite file. Default: tuned/<suite>.toml")
    table.add_argument("--out", default="results/tuned", metavar="DIR",
                       help="Where COMPARISON.md goes. Default: results/tuned")
    add_tracking(table)
    table.set_defaults(func=cmd_tuned_table)


def cmd_tune(args: argparse.Namespace) -> int:
    from nlbench.cli.run import backend_from_args, only_names, overrides, suite_from_args
    from nlbench.results.tables import markdown_table
    from nlbench.results.uri import check_tracking_uri
    from nlbench.run.execute import check_data
    from nlbench.run.suite import suite_document
    from nlbench.tune.output import chosen_table, tuned_document, write_tuned_suite
    from nlbench.tune.study import TuneOptions, Tuner, default_storage

    only = only_names(args)
    suite = suite_from_args(args)
    options = TuneOptions(args.budget, args.protocol, args.experiences, args.val_share, args.seed, args.objective,
                          args.pruner)
    options.check(suite)
    if args.tuned_name is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", args.tuned_name):
        raise UsageError(f"--tuned-name must be letters, digits, '.', '_' or '-'. Got {args.tuned_name!r} instead.")
    uri = check_tracking_uri(args.tracking_uri)
    storage = args.storage or default_storage(uri)
    if "://" not in storage:
        raise UsageError(f"--storage {storage}: give a database URL such as sqlite:///optuna.db.")
    out = out_dir(args.out)
    configs = suite.run_configs(only=only)
    show_data_resolution()
    check_data(configs)
    backend = backend_from_args(suite, args, configs[0].threads)
    tuner = Tuner(suite, options, uri, storage, backend, tuple(only))
    print(f"nlbench: tuning suite '{suite.name}': {len(tuner.pairs)} (scenario, method) studies, "
          f"{options.summary()}; trials -> MLflow experiment '{tuner.experiment}' at {uri}, studies -> "
          f"{storage}; {backend.describe()}", file=sys.stderr)
    outcome = tuner.run(progress=not args.no_progress)
    edits = [e for e in overrides(args) if e.path not in EXECUTION_ONLY]
    command = _command(args)
    path = out / f"{suite.name}.toml"
    doc = tuned_document(suite_document(args.suite, edits), suite, outcome.pairs, options, args.tuned_name)
    write_tuned_suite(path, doc, command)
    chosen = chosen_table(outcome.pairs)
    md = out / f"{suite.name}.md"
    md.write_text("\n".join([f"# Tuned hyperparameters: suite `{suite.name}`", "", f"Made by `{command}`: "
                             f"{options.summary()}. No test row of the reported seeds {list(suite.seeds)} was read.",
                             "", *markdown_table(chosen), ""]), encoding="utf-8")
    print(chosen.to_string(index=False))
    print(f"\n{outcome.trials_run} trials run in {outcome.wall_time_s:.1f} s"
          + (f" ({outcome.resumed} left by an interrupted tune settled)" if outcome.resumed else "")
          + f"; study parent run {outcome.parent_run_id} in experiment '{outcome.experiment}'.")
    if outcome.failed:  # a diverging learning rate, say: a result of the search, counted toward the budget
        print(f"{len(outcome.failed)} trials failed (each printed above; tag tuning_state = fail); they count toward "
              "the budget like any other trial.")
    print(f"Tuned suite: {path}  (run it: nlbench run {path})")
    return ExitCode.OK


def _command(args: argparse.Namespace) -> str:
    """The command as typed, without machine paths (for the files it writes)."""
    parts = ["nlbench", "tune", args.suite if not os.path.isabs(args.suite) else Path(args.suite).name]
    for flag, default in (("budget", 20), ("protocol", "first-experiences"), ("experiences", 1),
                          ("val_share", 0.2), ("seed", 1000), ("objective", "acc"), ("pruner", "median")):
        if getattr(args, flag) != default:
            parts.append(f"--{flag.replace('_', '-')} {getattr(args, flag)}")
    parts += [f"--set {a}" for a in args.assignments] + [f"--only {o}" for o in args.only]
    parts += [f"--tuned-name {args.tuned_name}"] if args.tuned_name else []
    parts += [f"--out {args.out}"] if args.out != "tuned" and not os.path.isabs(args.out) else []
    return " ".join(parts)


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def cmd_tuned_table(args: argparse.Namespace) -> int:
    from nlbench.results.store import runs_frame, search
    from nlbench.results.tables import markdown_table
    from nlbench.run.suite import load_suite
    from nlbench.tune.output import comparison, ranks

    tuned_path = args.tuned_suite or f"tuned/{args.suite}.toml"
    if not Path(tuned_path).is_file():
        raise UsageError(f"--tuned-suite {tuned_path}: no such file; run `nlbench tune {args.suite}` first.")
    tuned = load_suite(tuned_path)
    base = load_suite(args.suite)
    uri = store_uri(args)
    out = out_dir(args.out)
    frames = {}
    for suite in (base, tuned):
        frame = runs_frame(search(uri, suite.experiment_name))
        if frame.empty:
            raise UsageError(f"no finished runs in experiment '{suite.experiment_name}' at {uri}: run "
                             f"`nlbench run {suite.path if suite is tuned else suite.name}` first.")
        frames[suite.name] = frame
    table = comparison(frames[base.name], frames[tuned.name])
    table["chosen"] = [", ".join(f"{k} = {_short(v)}" for k, v in tuned.scenario_parts(s)[2].get(m, {}).items())
                       if tuned.tuned_note(s, m) else "defaults" for s, m in zip(table["scenario"], table["method"],
                                                                                  strict=True)]
    before, after = ranks(frames[base.name]), ranks(frames[tuned.name])
    shown = Path(tuned_path).name if os.path.isabs(tuned_path) else tuned_path
    lines = [f"# Default vs tuned: suite `{base.name}`", "",
             f"Tuned suite `{shown}`: {tuned.description}", "",
             f"Made by `nlbench run {base.name}`, `nlbench run {shown}`, then `nlbench tuned-table --suite "
             f"{base.name}`; seeds {', '.join(map(str, base.seeds))}. Tuning never read these seeds' test sets.", "",
             "Cells: mean ± 95 % CI over the seeds; `tuned-default`: mean paired difference over the same seeds; "
             "`p`: paired t-test.", "", *markdown_table(table), "", "## Ranking by ACC", ""]
    for scenario in sorted(before):
        lines += [f"- {scenario}: default {' > '.join(before[scenario])}",
                  f"  tuned {' > '.join(after.get(scenario, []))}"]
    out.mkdir(parents=True, exist_ok=True)
    path = out / "COMPARISON.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(table.to_string(index=False))
    print(f"\nWrote {path}")
    return ExitCode.OK
