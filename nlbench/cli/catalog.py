"""`nlbench list`, `nlbench scenarios check` and `nlbench new scenario`: what is registered, and adding to it."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from nlbench.cli.common import ExitCode, Parser, add_data_dir, data_dir, show_data_resolution
from nlbench.core.errors import UnknownNameError, UsageError


def add_parsers(sub: Any) -> None:
    lst = sub.add_parser("list", help="List scenarios, strategies, baselines and suites", allow_abbrev=False)
    lst.add_argument("names", nargs="*", metavar="NAME", help="Only these scenarios, methods or suites")
    lst.add_argument("--params", action="store_true", help="Also show every option and hyperparameter: default "
                                                           "and what it does")
    lst.add_argument("--markdown", action="store_true", help="Print the reference of every parameter, metric and "
                                                             "record key as Markdown (docs/reference.md)")
    lst.set_defaults(func=cmd_list)

    scen = sub.add_parser("scenarios", help="Inspect scenarios (check: duplicate rows across train/test)",
                          allow_abbrev=False)
    scen_sub = scen.add_subparsers(dest="scenarios_command", metavar="ACTION", parser_class=Parser, required=True)
    check = scen_sub.add_parser("check", help="Report exact duplicate rows within and across train and test sets",
                                allow_abbrev=False)
    check.add_argument("name", help="Registered scenario name (see `nlbench list`)")
    check.add_argument("--seed", type=int, default=0, help="Seed of the split. Default: 0")
    check.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="assignments",
                       help="A scenario option, TOML value (e.g. --set 'sites=[\"va\"]'); repeatable")
    add_data_dir(check)
    check.set_defaults(func=cmd_scenarios_check)

    new = sub.add_parser("new", help="Write the skeleton of a new scenario module and its test", allow_abbrev=False)
    new_sub = new.add_subparsers(dest="new_kind", metavar="KIND", parser_class=Parser, required=True)
    new_scen = new_sub.add_parser("scenario", help="scenarios/<name>.py and tests/test_scenario_<name>.py",
                                  allow_abbrev=False)
    new_scen.add_argument("name", help="kebab-case scenario name, e.g. my-stream")
    new_scen.add_argument("--dir", default=".", help="Root of the nlbench checkout. Default: the current directory")
    new_scen.set_defaults(func=cmd_new)


def _param_lines(params: list[list[Any]]) -> list[str]:
    width = max((len(pair) for pair, _, _ in params), default=0)
    return [f"{' ' * 21}{pair:<{width}}  {doc}" + (f"  [tune: {space}]" if space is not None else "")
            for pair, doc, space in params]


def cmd_list(args: argparse.Namespace) -> int:
    if args.markdown:
        from nlbench.cli.reference import reference_markdown

        print(reference_markdown(), end="")
        return ExitCode.OK
    from nlbench.core.listing import listing

    catalog = listing()  # cached: no torch or Avalanche import unless a source changed
    suites = catalog.pop("Suites")
    known = {entry["name"] for entries in catalog.values() for entry in entries} | set(suites)
    for name in args.names:
        if name not in known:
            raise UnknownNameError("name", name, known)
    for title, entries in catalog.items():
        chosen = [e for e in entries if not args.names or e["name"] in args.names]
        if args.names and not chosen:
            continue
        print(f"{title}:")
        if not chosen:
            print("  (none yet)")
        for entry in chosen:
            if "broken" in entry:
                print(f"  {entry['name']:<18} BROKEN: {entry['broken']}")
                continue
            print(f"  {entry['name']:<18} {entry['description']} [{entry['tag']}]")
            if args.params:
                print("\n".join(_param_lines(entry["params"])))
    chosen_suites = [n for n in suites if not args.names or n in args.names]
    if chosen_suites:
        print("Suites:")
        for name in chosen_suites:
            print(f"  {name:<18} {suites[name]}")
    return ExitCode.OK


def cmd_scenarios_check(args: argparse.Namespace) -> int:
    from nlbench.core.registry import SCENARIOS
    from nlbench.data.duplicates import duplicate_report, format_report
    from nlbench.run.overrides import parse_assignment

    show_data_resolution()
    if args.seed < 0:
        raise UsageError(f"--seed must be a non-negative int. Got {args.seed} instead.")
    options = {}
    for pair in args.assignments:
        override = parse_assignment(pair)
        options[".".join(override.path)] = override.value
    scenario = SCENARIOS.get(args.name)(where="--set", data_dir=data_dir(args), **options)
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


def cmd_new(args: argparse.Namespace) -> int:
    from nlbench.cli.new import new_scenario

    for path in new_scenario(args.name, Path(args.dir)):
        print(f"wrote {path}")
    print(f"Next: edit load() and make_experiences(), then `python -m pytest -q {path}` and "
          f"`nlbench scenarios check {args.name}`.")
    return ExitCode.OK
