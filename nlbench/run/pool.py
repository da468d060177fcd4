"""A local pool of worker processes where a run that crashes (segfault, out-of-memory kill, `os._exit`) fails
only itself: its worker is replaced and the suite goes on.

`concurrent.futures.ProcessPoolExecutor` marks the whole pool broken when one worker dies, which would fail
every run still queued; hence this small pool. Workers are spawned (not forked: torch's thread pools do not
survive a fork) with their thread pools sized before torch, BLAS or numba are imported, so N workers with T
threads each use N x T cores and no more.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from nlbench.run.config import RunConfig
from nlbench.run.execute import RunResult, failed_result, now_ms
from nlbench.run.feed import Feed

# Thread pools read their size from these when the library is first imported in the worker.
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS",
              "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
_PARENT_POLL_S = 2.0


def _exit_when_orphaned(parent_pid: int) -> None:
    """A worker whose driver was killed (kill -9) stops instead of training on for nobody."""
    while True:
        time.sleep(_PARENT_POLL_S)
        if os.getppid() != parent_pid:
            os._exit(1)


def _worker(conn: Connection, parent_pid: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    threading.Thread(target=_exit_when_orphaned, args=(parent_pid,), daemon=True).start()
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        execute, config = job
        conn.send(execute(config))


def describe_exit(code: int | None) -> str:
    """A worker's exit code in words: the signal that killed it, if any."""
    if code is None:
        return "no exit code"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"killed by {name}" + (" (out of memory?)" if -code == signal.SIGKILL else "")
    return f"exit code {code}"


@contextlib.contextmanager
def _thread_env(threads: int) -> Iterator[None]:
    """The environment a spawned worker starts with: thread pools of `threads` threads."""
    before = {key: os.environ.get(key) for key in THREAD_ENV}
    os.environ.update({key: str(threads) for key in THREAD_ENV})
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@dataclass
class _Worker:
    process: Any  # multiprocessing's SpawnProcess
    conn: Connection
    config: RunConfig | None = None  # the run it holds, None when idle
    started_ms: int = 0


class ProcessPool:
    """`jobs` worker processes, each running one run at a time with `threads` threads."""

    def __init__(self, jobs: int, threads: int):
        self.jobs, self.threads = jobs, threads
        self.running = 0

    def _spawn(self) -> _Worker:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        ours, theirs = ctx.Pipe()
        process = ctx.Process(target=_worker, args=(theirs, os.getpid()), daemon=True, name="nlbench-worker")
        with _thread_env(self.threads):
            process.start()
        theirs.close()
        return _Worker(process, ours)

    def run(self, configs: Iterable[RunConfig | None],
            execute: Callable[[RunConfig], RunResult]) -> Iterator[RunResult]:
        """Results in the order runs finish. `execute` must be picklable (a module-level function). `configs` is
        read lazily, one config when a worker is free (a tuner asks its next trial then); a None from it means
        none yet (see `nlbench.run.feed`)."""
        feed, workers = Feed(configs), []
        try:
            while True:
                for w in workers:
                    if w.config is None and (config := feed.take()) is not None:
                        self._give(w, config, execute)
                while len(workers) < self.jobs and (config := feed.take()) is not None:
                    workers.append(self._spawn())
                    self._give(workers[-1], config, execute)
                busy = [w for w in workers if w.config]
                if not busy:
                    feed.require_end()
                    break
                self.running = len(busy)
                ready = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy]))
                for w in busy:
                    if w.conn in ready or w.process.sentinel in ready:
                        result = self._collect(w)
                        if not w.process.is_alive():
                            workers.remove(w)
                        yield result
        finally:
            self.running = 0
            _stop(workers)

    @staticmethod
    def _give(w: _Worker, config: RunConfig, execute: Callable[[RunConfig], RunResult]) -> None:
        w.config, w.started_ms = config, now_ms()
        w.conn.send((execute, config))

    @staticmethod
    def _collect(w: _Worker) -> RunResult:
        """The worker's result, or a FAILED one saying how the worker died."""
        config, w.config = w.config, None
        try:
            if w.conn.poll():
                return w.conn.recv()
        except (EOFError, OSError):
            pass
        w.process.join(timeout=10)
        return failed_result(config, f"WorkerDied: the worker process running it {describe_exit(w.process.exitcode)}",
                             w.started_ms)


def _stop(workers: Sequence[_Worker]) -> None:
    """Idle workers are told to stop; busy ones (Ctrl-C, an error in the driver) are terminated."""
    for w in workers:
        with contextlib.suppress(OSError, ValueError):
            if w.config is None:
                w.conn.send(None)
            else:
                w.process.terminate()
    for w in workers:
        w.process.join(timeout=5)
        if w.process.is_alive():
            w.process.kill()
            w.process.join(timeout=5)
        w.conn.close()
