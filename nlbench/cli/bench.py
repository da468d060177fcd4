"""`nlbench bench NAME`: a benchmark's table, ratios against a reference timed in the same process."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from nlbench.cli.common import ExitCode
from nlbench.core.errors import UsageError


def add_parser(sub: Any) -> None:
    from nlbench.bench import BENCHMARKS

    bench = sub.add_parser("bench", help="Benchmarks, printed as ratios against a same-run reference",
                           allow_abbrev=False)
    bench.add_argument("what", choices=list(BENCHMARKS),
                       help="; ".join(f"{name}: {text}" for name, (_, _, text) in BENCHMARKS.items()))
    bench.add_argument("--repeats", type=int, help="Timed repetitions after warm-up. Default: " + ", ".join(
        f"{repeats} ({name})" for name, (_, repeats, _) in BENCHMARKS.items()))
    bench.add_argument("--out", metavar="FILE", help="Also write the table to this Markdown file")
    bench.add_argument("--suite", metavar="NAME", help="scale only: the suite to time. Default: default")
    bench.add_argument("--device", help="step only: where the steps run (auto, cpu, cuda[:N]); on CUDA its table "
                                        "is results/step_cost_gpu.md. Default: cpu")
    bench.set_defaults(func=cmd_bench)


def cmd_bench(args: argparse.Namespace) -> int:
    from nlbench.bench import BENCHMARKS, benchmark

    if args.repeats is not None and args.repeats < 1:
        raise UsageError(f"--repeats must be >= 1. Got {args.repeats} instead.")
    kwargs = {}
    if args.suite is not None:
        if args.what != "scale":
            raise UsageError(f"--suite applies to 'nlbench bench scale' only, not to '{args.what}'.")
        from nlbench.run.suite import load_suite

        load_suite(args.suite)  # an unknown suite is a usage error before anything is timed
        kwargs["suite_name"] = args.suite
    if args.device is not None:
        from nlbench.run.config import device_problem, resolve_device

        if args.what != "step":
            raise UsageError(f"--device applies to 'nlbench bench step' only, not to '{args.what}' (kernels adds "
                             "its GPU tables by itself where CUDA is available).")
        problem = device_problem(args.device)
        if problem:
            raise UsageError(f"--device {args.device!r} {problem}.")
        kwargs["device"] = resolve_device(args.device)
    table = benchmark(args.what)(repeats=args.repeats or BENCHMARKS[args.what][1], **kwargs)
    print(table)
    if args.out:
        Path(args.out).write_text(table + "\n", encoding="utf-8")
    return ExitCode.OK
