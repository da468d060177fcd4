"""`nlbench bench overhead`: the cost of the harness.

`naive` on `split-digits` through nlbench (the run unit: Avalanche strategy + protocol; then with MLflow tracking)
against a plain PyTorch loop with the same model, optimizer, epochs, batch size and evaluations (every test
experience before training and after each experience), timed in turn; and a full-MNIST case for training
throughput and the evaluation's share of a run.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from nlbench.bench.timing import interleaved_medians, machine_line, scenario_data
from nlbench.core.registry import get_method
from nlbench.data.scenario import ScenarioData
from nlbench.methods.models import input_features
from nlbench.nn import MLP
from nlbench.optim import build_optimizer
from nlbench.run.backends import SerialBackend
from nlbench.run.config import RunConfig
from nlbench.run.execute import RunResult, execute_run, seed_everything
from nlbench.run.runner import run_suite
from nlbench.run.suite import Suite


@dataclass
class PlainTimes:
    train_s: float = 0.0
    eval_s: float = 0.0


def finished(config: RunConfig) -> RunResult:
    """The run unit's result; a failed run stops the benchmark with its error."""
    result = execute_run(config)
    if not result.ok:
        raise RuntimeError(f"benchmark run {config.run_name} failed: {result.error}")
    return result


def plain_torch_naive(data: ScenarioData, hp: dict, seed: int, times: PlainTimes | None = None) -> np.ndarray:
    """The reference: naive fine-tuning written directly in PyTorch as a careful user would (minibatches sliced
    from shuffled tensors, evaluation without autograd in large batches), with the protocol's evaluations."""
    seed_everything(seed)
    times = times if times is not None else PlainTimes()
    exps = data.experiences
    model = MLP(input_features(data.info), hp["hidden_sizes"], data.info.n_classes)
    loss_fn = nn.CrossEntropyLoss()

    @torch.no_grad()
    def evaluate() -> list[float]:
        t0 = time.perf_counter()
        model.eval()
        accs = []
        for e in exps:
            correct = sum(int((model(x).argmax(1) == y).sum())
                          for x, y in zip(e.x_test.split(hp["eval_batch_size"]),
                                          e.y_test.split(hp["eval_batch_size"]), strict=True))
            accs.append(correct / len(e.y_test))
        model.train()
        times.eval_s += time.perf_counter() - t0
        return accs

    R = np.zeros((len(exps), len(exps)))
    evaluate()  # b
    for i, e in enumerate(exps):
        t0 = time.perf_counter()
        optimizer = build_optimizer(model.parameters(), hp, model)  # Avalanche also resets it per experience
        for _ in range(hp["epochs"]):
            for index in torch.randperm(len(e.y_train)).split(hp["batch_size"]):
                optimizer.zero_grad()
                loss_fn(model(e.x_train[index]), e.y_train[index]).backward()
                optimizer.step()
        times.train_s += time.perf_counter() - t0
        R[i] = evaluate()
    return R


def overhead(repeats: int = 5, scenario: str = "split-digits", seed: int = 0, suite_runs: int = 5) -> str:
    """Markdown tables of the harness overhead; each ratio is against the plain loop of the same process. A
    one-run suite pays the suite's own store work (experiment, parent run) in full; a `suite_runs`-run suite (seeds
    `seed`, `seed` + 1, ...) shares it, against as many plain loops on the same seeds."""
    hp = get_method("naive").resolve()
    seeds = [seed + i for i in range(suite_runs)]
    configs = [RunConfig("bench", scenario, scenario, {}, "naive", "naive", hp, s, "cpu") for s in seeds]
    streams = {s: scenario_data(scenario, s) for s in seeds}
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        suite = Suite(name="bench-overhead", path="<bench>", scenarios=(scenario,), methods=("naive",))

        def tracked(runs: list[RunConfig]) -> None:
            outcome = run_suite(suite, runs, uri, progress=False, backend=SerialBackend(), rerun=True)
            if outcome.failed:
                raise RuntimeError(f"benchmark run failed: {outcome.failed[0].error}")

        # (name, timed function, runs it makes, index of the plain loop over the same runs)
        variants = [
            ("plain PyTorch loop (reference)", lambda: plain_torch_naive(streams[seed], hp, seed), 1, 0),
            ("nlbench execute_run (Avalanche + protocol)", lambda: finished(configs[0]), 1, 0),
            ("nlbench run with MLflow tracking (+ artifacts)", lambda: tracked(configs[:1]), 1, 0),
            (f"plain PyTorch loop, {suite_runs} seeds (reference), per run",
             lambda: [plain_torch_naive(streams[s], hp, s) for s in seeds], suite_runs, 3),
            (f"nlbench run with MLflow tracking, a {suite_runs}-run suite, per run", lambda: tracked(configs),
             suite_runs, 3),
        ]
        medians = interleaved_medians([fn for _, fn, _, _ in variants], repeats, warmup=1)
    per_run = [m / runs for m, (_, _, runs, _) in zip(medians, variants, strict=True)]
    lines = [
        f"Harness overhead: naive on {scenario} ({hp['epochs']} epochs, batch {hp['batch_size']}, "
        f"MLP {hp['hidden_sizes']}, {len(streams[seed].experiences)} experiences), median of {repeats} after 1 "
        f"warm-up, the variants timed in turn. The last two rows run seeds {seeds[0]}-{seeds[-1]}: a suite's own "
        "store work (experiment, parent run) is shared by its runs.",
        machine_line(),
        "Regenerate: `nlbench bench overhead --out results/harness_overhead.md`",
        "",
        "| variant | median s per run | ratio vs plain |",
        "| --- | ---: | ---: |",
    ]
    lines += [f"| {name} | {t:.3f} | {t / per_run[ref]:.2f}x |"
              for (name, _, _, ref), t in zip(variants, per_run, strict=True)]
    return "\n".join([*lines, "", full_mnist_throughput(max(1, min(repeats, 3)), seed)])


def full_mnist_throughput(repeats: int, seed: int) -> str:
    """Training throughput and evaluation share on full split MNIST (60,000 training images, MLP 1x512, batch
    256, one epoch per experience): nlbench's run unit against the plain loop, each measured in turn."""
    hp = get_method("naive").resolve({"hidden_sizes": [512], "batch_size": 256, "epochs": 1})
    scenario = "split-mnist"
    config = RunConfig("bench", scenario, scenario, {}, "naive", "naive", hp, seed, "cpu")
    data = scenario_data(scenario, seed)
    n_train = sum(len(e.y_train) for e in data.experiences)
    rows: dict[str, list[tuple[float, float]]] = {"plain": [], "nlbench": []}
    for _ in range(repeats + 1):  # the first round warms up
        times = PlainTimes()
        plain_torch_naive(data, hp, seed, times)
        rows["plain"].append((times.train_s, times.eval_s))
        result = finished(config)
        rows["nlbench"].append((result.train_time_s, result.eval_time_s))
    (plain_train, plain_eval), (ours_train, ours_eval) = (
        tuple(statistics.median(v) for v in zip(*rows[k][1:], strict=True)) for k in ("plain", "nlbench"))
    return "\n".join([
        f"Full MNIST: naive on split-mnist ({n_train} training images, MLP [512], batch 256, 1 epoch per "
        f"experience, evaluation on all {sum(len(e.y_test) for e in data.experiences)} test images after each "
        f"experience), median of {repeats} after 1 warm-up.",
        "",
        "| variant | training s | samples/s | throughput vs plain | evaluation s | evaluation share of the run |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        f"| plain PyTorch loop (reference) | {plain_train:.2f} | {n_train / plain_train:,.0f} | 1.00x | "
        f"{plain_eval:.2f} | {plain_eval / (plain_train + plain_eval):.0%} |",
        f"| nlbench execute_run | {ours_train:.2f} | {n_train / ours_train:,.0f} | {plain_train / ours_train:.2f}x | "
        f"{ours_eval:.2f} | {ours_eval / (ours_train + ours_eval):.0%} |",
    ])
