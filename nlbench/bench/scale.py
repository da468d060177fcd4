"""`nlbench bench scale`: what scale-out buys on this machine, measured in one process against its own reference.

1. A whole suite (default: `default`) through `run_suite` into a throw-away SQLite store: the process pool with one
   worker (the reference), with one worker per core, and Ray's local backend with as many CPUs; the matrices of
   every backend must equal the reference's.
2. One run (`split-digits/hope`, seed 0, of the default suite) alone on the machine (the reference), then while
   CPU-heavy neighbours fill every core: with nlbench's per-run thread count (1), and with torch's default of one
   thread per core (what oversubscribes a shared machine).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from nlbench.bench.timing import machine_line
from nlbench.run.config import RunConfig, available_cores
from nlbench.run.execute import execute_run

# A neighbour: a training-like job doing float32 matrix products, on `threads` threads (0: torch's default, every
# core).
_NEIGHBOUR = ("import torch\nif {threads}:\n    torch.set_num_threads({threads})\na = torch.randn(512, 512)\n"
              "while True:\n    a = torch.tanh(a @ a.T / 512)\n")
TARGETS = {"speedup": 1.8, "ray_within": 0.10, "contention": 2.5}


def _suite_time(suite: Any, configs: Sequence[RunConfig], backend: Any) -> tuple[float, dict[str, Any]]:
    from nlbench.run.runner import run_suite

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        outcome = run_suite(suite, list(configs), f"sqlite:///{Path(tmp) / 'mlflow.db'}", progress=True,
                            backend=backend, spool=_NoSpool())
        elapsed = time.perf_counter() - t0
    if outcome.failed or outcome.tracking_error:
        raise RuntimeError(f"{backend.describe()}: {len(outcome.failed)} runs failed; {outcome.tracking_error}")
    return elapsed, {r.config.key: r.R for r in outcome.results}


class _NoSpool:
    """A benchmark's store is a temporary file: nothing to keep if it fails (it then raises)."""

    folder = "<none>"

    def pending(self) -> list:
        return []

    def save(self, result: Any) -> None:
        raise RuntimeError("the benchmark's temporary store failed")

    def __len__(self) -> int:
        return 0


@contextmanager
def _neighbours(n: int, threads: int) -> Iterator[None]:
    procs = [subprocess.Popen([sys.executable, "-c", _NEIGHBOUR.format(threads=threads)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) for _ in range(n)]
    try:
        time.sleep(3)  # torch imported, loops running
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()


def _timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _one_run(config: RunConfig) -> Callable[[], None]:
    def run() -> None:
        result = execute_run(config)
        if not result.ok:
            raise RuntimeError(result.error)

    return run


def scale(repeats: int = 1, suite_name: str = "default") -> str:
    """Markdown tables: suite wall time per backend, one run's slowdown among neighbours; `repeats` times each
    one-run measurement (median)."""
    import statistics

    from nlbench.run.backends import ProcessBackend, RayBackend
    from nlbench.run.suite import load_suite

    cores = available_cores()
    suite = load_suite(suite_name)
    configs = suite.run_configs()
    rows = []
    ref_time, ref_R = _suite_time(suite, configs, ProcessBackend(1, 1))
    rows.append(("process pool, 1 worker (reference)", ref_time, True))
    t, R = _suite_time(suite, configs, ProcessBackend(cores, 1))
    rows.append((f"process pool, {cores} workers", t, ref_R == R))
    try:
        t, R = _suite_time(suite, configs, RayBackend("", cores))
        rows.append((f"ray, local instance with {cores} CPUs", t, ref_R == R))
    except Exception as exc:  # Ray missing: say so rather than leave a hole
        rows.append((f"ray: not measured ({type(exc).__name__})", float("nan"), False))

    one = next(c for c in configs if c.scenario == "split-digits" and c.method == "hope" and c.seed == 0)
    def median(config: RunConfig) -> float:
        return statistics.median(_timed(_one_run(config)) for _ in range(repeats))

    idle = median(one)
    with _neighbours(cores, 1):
        polite = median(one)
    with _neighbours(cores, 0):
        busy_1, busy_all = median(one), median(replace(one, threads=cores))

    pool = rows[1][1]
    lines = [
        f"Scale-out on this machine: suite `{suite_name}` ({len(configs)} runs) into a temporary SQLite store, "
        f"and one run among CPU-heavy neighbours.", machine_line(),
        f"Regenerate: `nlbench bench scale --out results/scale.md` (one-run times: median of {repeats}).", "",
        "| backend | wall s | speedup vs 1 worker | same matrices as reference |", "| --- | ---: | ---: | --- |",
    ]
    for name, seconds, same in rows:
        lines.append(f"| {name} | {seconds:.1f} | {ref_time / seconds:.2f}x | {'yes' if same else 'NO'} |")
    ray_time = rows[2][1]
    lines += ["", f"Targets: {cores} workers >= {TARGETS['speedup']}x the 1-worker time (measured "
              f"{ref_time / pool:.2f}x); Ray within {TARGETS['ray_within']:.0%} of the process pool (measured "
              f"{ray_time / pool - 1:+.1%}).", "",
              f"One run: `{one.run_name}` of that suite, among {cores} neighbours that each multiply 512x512 "
              "matrices in a loop, on 1 thread (like other nlbench runs) or on torch's default of one thread per "
              "core (each neighbour then keeps every core busy).", "",
              "| condition | s | slowdown vs idle |", "| --- | ---: | ---: |",
              f"| alone, 1 thread (reference) | {idle:.1f} | 1.00x |",
              f"| {cores} single-thread neighbours; the run on 1 thread (nlbench's default) | {polite:.1f} | "
              f"{polite / idle:.2f}x |",
              f"| {cores} all-core neighbours; the run on 1 thread (nlbench's default) | {busy_1:.1f} | "
              f"{busy_1 / idle:.2f}x |",
              f"| {cores} all-core neighbours; the run on {cores} threads (torch's default) | {busy_all:.1f} | "
              f"{busy_all / idle:.2f}x |", "",
              f"Target: <= {TARGETS['contention']}x with nlbench's default. A fair share of {cores} cores among "
              f"{cores + 1} busy single-thread processes is {(cores + 1) / cores:.2f}x; among all-core neighbours "
              f"the run is one of {cores * cores + 1} busy threads, a fair share of "
              f"{(cores * cores + 1) / cores:.2f}x, which nlbench cannot lower: the neighbours' threads are theirs."]
    return "\n".join(lines)
