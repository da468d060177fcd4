"""Where runs execute: in this process (`serial`), in a local pool of worker processes (`process`), or as Ray
tasks on a local or existing Ray cluster (`ray`). Each backend only executes `RunConfig`s and hands back
`RunResult`s; the driver records them, so the store sees one writer whichever backend ran the runs, and the same
configs give the same results (the thread count is part of a run's config).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from nlbench.core.errors import UsageError
from nlbench.run.config import RunConfig, available_cores
from nlbench.run.execute import RunResult, execute_run, failed_result
from nlbench.run.feed import Feed

BACKENDS = ("auto", "serial", "process", "ray")
RAY_ADDRESS_ENV = "RAY_ADDRESS"
Execute = Callable[[RunConfig], RunResult]


def resolve_backend(name: str, jobs: int) -> tuple[str, int]:
    """('auto', 0) -> the process pool with one worker per core on a machine with more than one core, else serial.
    For `ray`, jobs is 0: the cluster decides how many runs fit at once."""
    if name not in BACKENDS:
        raise UsageError(f"'backend' must be one of {', '.join(BACKENDS)}. Got {name!r} instead.")
    cores = available_cores()
    if name == "auto":
        name = "process" if (jobs or cores) > 1 else "serial"
    if name == "serial":
        return name, 1
    if name == "ray":
        return name, jobs
    return name, jobs or cores


class SerialBackend:
    """Each run in this process, one after another: for debugging, and the tests."""

    name = "serial"

    def __init__(self) -> None:
        self.running = 0

    def run(self, configs: Iterable[RunConfig | None], execute: Execute = execute_run) -> Iterator[RunResult]:
        feed = Feed(configs)
        while (config := feed.take()) is not None:
            self.running = 1
            yield execute(config)
        self.running = 0
        feed.require_end()

    def describe(self) -> str:
        return "serial (in this process)"


class ProcessBackend:
    """A local pool of `jobs` worker processes; a crashing run fails alone (see `nlbench.run.pool`)."""

    name = "process"

    def __init__(self, jobs: int, threads: int):
        from nlbench.run.pool import ProcessPool

        self.pool = ProcessPool(jobs, threads)

    @property
    def running(self) -> int:
        return self.pool.running

    def run(self, configs: Iterable[RunConfig | None], execute: Execute = execute_run) -> Iterator[RunResult]:
        return self.pool.run(configs, execute)

    def describe(self) -> str:
        return f"process pool ({self.pool.jobs} workers x {self.pool.threads} threads)"


def _ray_task(execute: Execute, config: RunConfig) -> RunResult:
    return execute(config)


class RayBackend:
    """One Ray task per run, declaring its CPUs (the run's threads) and a GPU for CUDA runs. `address`: an existing
    cluster ('auto', 'ray://host:10001', or $RAY_ADDRESS); empty starts a local one on this machine for this suite.
    nlbench must be installed on the cluster's nodes."""

    name = "ray"

    def __init__(self, address: str = "", jobs: int = 0):
        try:
            import ray
        except ImportError as exc:
            raise UsageError("backend 'ray' needs Ray: pip install 'nlbench[ray]' (or pip install ray).") from exc
        self.ray, self.address, self.jobs = ray, address, jobs
        self.running = 0
        self._started_here = False

    def check_address(self) -> None:
        """A HOST:PORT (or ray://HOST:PORT) address answers, checked in seconds before anything is written (Ray
        itself retries for minutes)."""
        import socket

        host, sep, port = self.address.removeprefix("ray://").rpartition(":")
        if not sep or not port.isdigit():
            return  # 'auto' and the like: Ray resolves them
        try:
            socket.create_connection((host or "127.0.0.1", int(port)), timeout=3).close()
        except OSError as exc:
            raise UsageError(f"--ray-address {self.address}: no Ray cluster answers there ({exc.strerror or exc}); "
                             "start one (ray start --head) or drop --ray-address for a local one.") from exc

    def _connect(self) -> None:
        ray = self.ray
        if ray.is_initialized():
            return
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
        if self.address:
            kwargs["address"] = self.address
        else:
            kwargs["num_cpus"] = self.jobs or available_cores()
        try:
            ray.init(**kwargs)
        except Exception as exc:  # an address with no cluster behind it
            raise UsageError(f"Ray could not start or connect{' to ' + self.address if self.address else ''}: "
                             f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from exc
        self._started_here = True

    def run(self, configs: Iterable[RunConfig | None], execute: Execute = execute_run) -> Iterator[RunResult]:
        """Submits a window of twice the runs the cluster's CPUs hold at once, then one more per result, so a lazy
        `configs` (a tuner's trials) is read as capacity frees up."""
        ray = self.ray
        self._connect()
        try:
            cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
            task = ray.remote(max_retries=0)(_ray_task)
            pending: dict[Any, RunConfig] = {}
            feed = Feed(configs)
            while True:
                while len(pending) < 2 * cpus and (config := feed.take()) is not None:
                    gpus = 1 if config.device.startswith("cuda") else 0
                    ref = task.options(num_cpus=max(1, config.threads), num_gpus=gpus).remote(execute, config)
                    pending[ref] = config
                if not pending:
                    feed.require_end()
                    break
                threads = max(1, next(iter(pending.values())).threads)
                self.running = min(len(pending), max(1, cpus // threads))
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    config = pending.pop(ref)
                    try:
                        yield ray.get(ref)
                    except ray.exceptions.RayError as exc:  # the worker died, the node was lost
                        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
                        yield failed_result(config, f"{type(exc).__name__}: {first}")
        finally:
            self.running = 0
            if self._started_here:
                ray.shutdown()
                self._started_here = False

    def describe(self) -> str:
        return f"ray ({self.address or 'local cluster'})"


def make_backend(name: str, jobs: int, threads: int, ray_address: str = "") -> Any:
    """The backend a suite asked for, resolved (`auto` -> process or serial)."""
    name, jobs = resolve_backend(name, jobs)
    if name == "serial":
        return SerialBackend()
    if name == "process":
        return ProcessBackend(jobs, threads)
    backend = RayBackend(ray_address, jobs)
    backend.check_address()
    return backend
