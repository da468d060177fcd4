"""`nlbench` command line: run suites, list what is registered, inspect runs, publish tables, benchmark.

One module per command group (`run`, `catalog`, `inspect`, `report`, `bench`); `main(argv) -> int` is callable
from tests, `console_main` is the thin entry point.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from nlbench.cli import bench, catalog, inspect, report, run, tune
from nlbench.cli.common import ExitCode, Parser
from nlbench.core.errors import NlbenchError, TrackingError, UsageError

__all__ = ["ExitCode", "build_parser", "console_main", "main"]


def build_parser() -> Parser:
    from nlbench import __version__

    parser = Parser(prog="nlbench", allow_abbrev=False,
                    description="Continual-learning benchmark harness: accuracy and forgetting of Nested Learning, "
                                "classic CL and sklearn methods, tracked in MLflow.")
    parser.add_argument("--version", action="version", version=f"nlbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    run.add_parser(sub)
    catalog.add_parsers(sub)
    inspect.add_parsers(sub)
    report.add_parsers(sub)
    tune.add_parsers(sub)
    bench.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # nlbench draws its own progress bar; MLflow's per-download bars would interleave with it
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return ExitCode.USAGE_ERROR
        return int(args.func(args))
    except UsageError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return ExitCode.USAGE_ERROR
    except TrackingError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return ExitCode.TRACKING_ERROR
    except NlbenchError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return ExitCode.INTERNAL_ERROR
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return ExitCode.INTERRUPTED


def console_main() -> None:
    sys.exit(main())
