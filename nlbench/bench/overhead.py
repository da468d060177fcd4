"""`nlbench bench overhead`: the cost of the harness.

`naive` on `split-digits` through nlbench (the run unit: Avalanche strategy + protocol; then with MLflow tracking)
against a plain PyTorch loop with the same model, optimizer, epochs, batch size and evaluations (every test
experience before training and after each experience). Each variant gets one warm-up, then the median of
`repeats` timed runs.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from nlbench.bench.timing import machine_line, median_time, scenario_data
from nlbench.core.registry import get_method
from nlbench.data.scenario import ScenarioData
from nlbench.methods.models import input_features
from nlbench.nn import MLP
from nlbench.optim import build_optimizer
from nlbench.run.backends import SerialBackend
from nlbench.run.config import RunConfig
from nlbench.run.execute import execute_run, seed_everything
from nlbench.run.runner import run_suite
from nlbench.run.suite import Suite


def plain_torch_naive(data: ScenarioData, hp: dict, seed: int) -> np.ndarray:
    """The reference: naive fine-tuning written directly in PyTorch, same evaluations as the protocol."""
    seed_everything(seed)
    exps = data.experiences
    model = MLP(input_features(data.info), hp["hidden_sizes"], data.info.n_classes)
    loss_fn = nn.CrossEntropyLoss()

    @torch.no_grad()
    def evaluate() -> list[float]:
        model.eval()
        accs = []
        for e in exps:
            correct = sum(int((model(x).argmax(1) == y).sum())
                          for x, y in zip(e.x_test.split(hp["eval_batch_size"]),
                                          e.y_test.split(hp["eval_batch_size"]), strict=True))
            accs.append(correct / len(e.y_test))
        model.train()
        return accs

    R = np.zeros((len(exps), len(exps)))
    evaluate()  # b
    for i, e in enumerate(exps):
        optimizer = build_optimizer(model.parameters(), hp, model)  # Avalanche also resets it per experience
        loader = DataLoader(TensorDataset(e.x_train, e.y_train), batch_size=hp["batch_size"], shuffle=True)
        for _ in range(hp["epochs"]):
            for x, y in loader:
                optimizer.zero_grad()
                loss_fn(model(x), y).backward()
                optimizer.step()
        R[i] = evaluate()
    return R


def overhead(repeats: int = 5, scenario: str = "split-digits", seed: int = 0) -> str:
    """Markdown table of the harness overhead; the ratio is against the plain loop of the same process."""
    hp = get_method("naive").resolve()
    config = RunConfig("bench", scenario, scenario, {}, "naive", "naive", hp, seed, "cpu")
    data = scenario_data(scenario, seed)
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        suite = Suite(name="bench-overhead", path="<bench>", scenarios=(scenario,), methods=("naive",))

        def harness() -> None:
            result = execute_run(config)
            assert result.ok, result.traceback

        def tracked() -> None:
            assert not run_suite(suite, [config], uri, progress=False, backend=SerialBackend(), rerun=True).failed

        variants = [
            ("plain PyTorch loop (reference)", lambda: plain_torch_naive(data, hp, seed)),
            ("nlbench execute_run (Avalanche + protocol)", harness),
            ("nlbench run with MLflow tracking (+ artifacts)", tracked),
        ]
        rows = [(name, *median_time(fn, repeats)) for name, fn in variants]
    ref = rows[0][1]
    lines = [
        f"Harness overhead: naive on {scenario} ({hp['epochs']} epochs, batch {hp['batch_size']}, "
        f"MLP {hp['hidden_sizes']}, {len(data.experiences)} experiences), median of {repeats} after 1 warm-up.",
        machine_line(),
        "Regenerate: `nlbench bench overhead --out results/harness_overhead.md`",
        "",
        "| variant | median s | runs (s) | ratio vs plain |",
        "| --- | ---: | --- | ---: |",
    ]
    for name, median, times in rows:
        lines.append(f"| {name} | {median:.3f} | {', '.join(f'{t:.2f}' for t in times)} | {median / ref:.2f}x |")
    return "\n".join(lines)


