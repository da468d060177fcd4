"""What the benchmarks share: timers that run the candidates in turn, the streams they time on, training steps.

Every benchmark prints ratios against a reference measured in the same process, never absolute targets.
"""

from __future__ import annotations

import functools
import statistics
import time
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from nlbench.core.registry import SCENARIOS, get_method
from nlbench.data.scenario import ScenarioData
from nlbench.run.resources import machine_description


def machine_line() -> str:
    return f"Machine: {machine_description()}; {torch.get_num_threads()} torch threads, torch {torch.__version__}."


def median_time(fn: Callable[[], object], repeats: int) -> tuple[float, list[float]]:
    fn()  # warm-up: imports, allocator, first-touch
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


@functools.lru_cache(maxsize=4)
def scenario_data(scenario: str, seed: int) -> ScenarioData:
    """Built once per process: several benchmarks of `nlbench bench kernels` time on the same stream."""
    return SCENARIOS.get(scenario)().build(seed)


def synced(fn: Callable[[], None], device: str) -> Callable[[], None]:
    """`fn`, waiting for the device's queued work where there is a queue (CUDA), so its time is its own."""
    if torch.device(device).type != "cuda":
        return fn

    def run() -> None:
        fn()
        torch.cuda.synchronize()

    return run


def trainer(method_name: str, hp: dict, data: ScenarioData,
            device: str = "cpu") -> tuple[Callable[[Tensor, Tensor], None], nn.Module]:
    """One training step on a batch (forward, backward, optimizer step) on `device`, and the model it trains."""
    method = get_method(method_name)()
    hp = method.for_stream(hp, data)
    model = method.build_model(hp, data.info).to(device)
    optimizer = method.make_optimizer(model, hp)
    loss_fn = nn.CrossEntropyLoss()

    def step(x: Tensor, y: Tensor) -> None:
        optimizer.zero_grad()
        loss_fn(model(x), y).backward()
        optimizer.step()

    return step, model


def step_timer(method_name: str, hp: dict, data: ScenarioData, batch_size: int,
               device: str = "cpu") -> tuple[Callable[[], None], nn.Module]:
    train, model = trainer(method_name, hp, data, device)
    e = data.experiences[0]
    x, y = e.x_train[:batch_size].to(device), e.y_train[:batch_size].to(device)
    return synced(lambda: train(x, y), device), model


def epoch_timer(method_name: str, hp: dict, data: ScenarioData) -> Callable[[], None]:
    """One pass over the first experience's training set in batches of `hp["batch_size"]`."""
    train, _ = trainer(method_name, hp, data)
    e = data.experiences[0]
    batches = list(zip(e.x_train.split(hp["batch_size"]), e.y_train.split(hp["batch_size"]), strict=True))

    def epoch() -> None:
        for x, y in batches:
            train(x, y)

    return epoch


def interleaved_medians(fns: Sequence[Callable[[], None]], repeats: int, warmup: int = 5) -> list[float]:
    """Median seconds of each function, timed in turn within every round so machine drift hits all alike."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, out in zip(fns, times, strict=True):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times]


