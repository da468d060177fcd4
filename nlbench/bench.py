"""Benchmarks that print ratios against a reference measured in the same process.

`nlbench bench step`: the cost of one training step (forward, backward, optimizer/level schedule) of
each Nested Learning strategy, against a naive MLP with about the same number of parameters.

`nlbench bench overhead`: the cost of the harness. `naive` on `split-digits` through nlbench (Avalanche
strategy + protocol, with and without MLflow tracking) against a plain PyTorch loop with the same model,
optimizer, epochs, batch size and evaluations (every test experience before training and after each
experience). Each variant gets one warm-up, then the median of `repeats` timed runs.
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from nlbench.config import RunConfig, Suite
from nlbench.models import input_features, trainable_params
from nlbench.nn import MLP
from nlbench.optim import build_optimizer
from nlbench.registry import SCENARIOS, get_method
from nlbench.resources import machine_description
from nlbench.runner import execute_run, run_suite, seed_everything
from nlbench.scenario import ScenarioData


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


def _median_time(fn: Callable[[], object], repeats: int) -> tuple[float, list[float]]:
    fn()  # warm-up: imports, allocator, first-touch
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def overhead(repeats: int = 5, scenario: str = "split-digits", seed: int = 0) -> str:
    """Markdown table of the harness overhead; the ratio is against the plain loop of the same process."""
    hp = get_method("naive").resolve()
    config = RunConfig("bench", scenario, scenario, {}, "naive", "naive", hp, seed, "cpu")
    data = SCENARIOS.get(scenario)().build(seed)
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        suite = Suite(name="bench-overhead", path="<bench>", scenarios=[scenario], methods=["naive"])

        def harness() -> None:
            result = execute_run(config)
            assert result.ok, result.traceback

        def tracked() -> None:
            assert not run_suite(suite, [config], uri, progress=False).failed

        variants = [
            ("plain PyTorch loop (reference)", lambda: plain_torch_naive(data, hp, seed)),
            ("nlbench execute_run (Avalanche + protocol)", harness),
            ("nlbench run with MLflow tracking (+ artifacts)", tracked),
        ]
        rows = [(name, *_median_time(fn, repeats)) for name, fn in variants]
    ref = rows[0][1]
    lines = [
        f"Harness overhead: naive on {scenario} ({hp['epochs']} epochs, batch {hp['batch_size']}, "
        f"MLP {hp['hidden_sizes']}, {len(data.experiences)} experiences), median of {repeats} after 1 warm-up.",
        f"Machine: {machine_description()}; {torch.get_num_threads()} torch threads, torch {torch.__version__}.",
        "Regenerate: `nlbench bench overhead --out results/harness_overhead.md`",
        "",
        "| variant | median s | runs (s) | ratio vs plain |",
        "| --- | ---: | --- | ---: |",
    ]
    for name, median, times in rows:
        lines.append(f"| {name} | {median:.3f} | {', '.join(f'{t:.2f}' for t in times)} | {median / ref:.2f}x |")
    return "\n".join(lines)


def mlp_matching(n_params: int, in_features: int, n_classes: int) -> list[int]:
    """Two equal hidden layers whose MLP has about `n_params` parameters (w^2 + (in + out + 2) w + out)."""
    b = in_features + n_classes + 2
    width = round((-b + math.sqrt(b * b + 4 * (n_params - n_classes))) / 2)
    return [max(width, 1)] * 2


def _step_timer(method_name: str, hp: dict, data: ScenarioData, batch_size: int) -> tuple[Callable[[], None], int]:
    method = get_method(method_name)()
    model = method.build_model(hp, data.info)
    optimizer = method.make_optimizer(model, hp)
    e = data.experiences[0]
    x, y = e.x_train[:batch_size], e.y_train[:batch_size]
    loss_fn = nn.CrossEntropyLoss()

    def step() -> None:
        optimizer.zero_grad()
        loss_fn(model(x), y).backward()
        optimizer.step()

    return step, trainable_params(model)


def _interleaved_medians(fns: Sequence[Callable[[], None]], repeats: int) -> list[float]:
    """Median seconds of each function, timed in turn within every round so machine drift hits all alike."""
    for _ in range(5):  # warm-up
        for fn in fns:
            fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, out in zip(fns, times, strict=True):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times]


def step_cost(methods: Sequence[str] = ("cms", "hope", "titans"), repeats: int = 100,
              scenario: str = "split-digits", seed: int = 0) -> str:
    """Markdown table: median time of one training step per method and of a parameter-matched naive MLP."""
    data = SCENARIOS.get(scenario)().build(seed)
    rows = []
    for name in methods:
        hp = get_method(name).resolve()
        seed_everything(seed)
        step, n_params = _step_timer(name, hp, data, hp["batch_size"])
        hidden = mlp_matching(n_params, input_features(data.info), data.info.n_classes)
        ref_step, ref_params = _step_timer("naive", get_method("naive").resolve({"hidden_sizes": hidden}), data,
                                           hp["batch_size"])
        t, t_ref = _interleaved_medians([step, ref_step], repeats)
        rows.append((name, n_params, t, hidden, ref_params, t_ref))
    lines = [
        f"Cost of one training step (forward + backward + update, batch {get_method('naive').resolve()['batch_size']}, "
        f"{scenario}, method defaults) against naive fine-tuning of an MLP with about as many parameters; "
        f"median of {repeats} steps after 5 warm-up steps, the two timed alternately in one process.",
        f"Machine: {machine_description()}; {torch.get_num_threads()} torch threads, torch {torch.__version__}.",
        "Regenerate: `nlbench bench step --out results/step_cost.md`",
        "",
        "| method | params | ms/step | matched MLP | MLP params | MLP ms/step | ratio |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: |",
    ]
    for name, n, t, hidden, n_ref, t_ref in rows:
        lines.append(f"| {name} | {n} | {t * 1e3:.2f} | {hidden} | {n_ref} | {t_ref * 1e3:.2f} | {t / t_ref:.1f}x |")
    return "\n".join(lines)


OPTIMIZER_METHODS = ("delta-momentum", "deep-momentum", "dgd", "muon", "m3", "context-steered", "meta-opt")


def optimizer_cost(methods: Sequence[str] = OPTIMIZER_METHODS, repeats: int = 200,
                   scenario: str = "permuted-digits", seed: int = 0) -> str:
    """Markdown table: one training step of the MLP under each optimizer, against torch's SGD and Adam."""
    data = SCENARIOS.get(scenario)().build(seed)
    naive = get_method("naive")
    variants = [("sgd (torch)", "naive", naive.resolve()),
                ("adam (torch)", "naive", naive.resolve({"optimizer": "adam", "lr": 0.001}))]
    variants += [(name, name, get_method(name).resolve()) for name in methods]
    steps = []
    for _, method_name, hp in variants:
        seed_everything(seed)
        steps.append(_step_timer(method_name, hp, data, hp["batch_size"])[0])
    times = _interleaved_medians(steps, repeats)
    hp = naive.resolve()
    lines = [
        f"Cost of one training step (forward + backward + optimizer step) of the MLP {hp['hidden_sizes']} on "
        f"{scenario} (batch {hp['batch_size']}) under each optimizer, each strategy's defaults; median of "
        f"{repeats} steps after 5 warm-up steps, all timed in turn in one process.",
        f"Machine: {machine_description()}; {torch.get_num_threads()} torch threads, torch {torch.__version__}.",
        "Regenerate: `nlbench bench optimizers --out results/optimizer_cost.md`",
        "",
        "| optimizer | ms/step | vs SGD | vs Adam |",
        "| --- | ---: | ---: | ---: |",
    ]
    for (name, _, _), t in zip(variants, times, strict=True):
        lines.append(f"| {name} | {t * 1e3:.3f} | {t / times[0]:.2f}x | {t / times[1]:.2f}x |")
    return "\n".join(lines)


def _fwd_bwd(fn: Callable, xs: list[torch.Tensor]) -> Callable[[], None]:
    def step() -> None:
        out, state = fn(*xs)
        torch.autograd.grad(out.sum() + state.sum(), xs)

    return step


def _kernel_inputs(batch: int, heads: int, T: int, d: int, device: str = "cpu") -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    xs = [torch.randn(batch, heads, T, d, generator=g), torch.nn.functional.normalize(
        torch.randn(batch, heads, T, d, generator=g), dim=-1), torch.randn(batch, heads, T, d, generator=g),
        0.5 * torch.rand(batch, heads, T, generator=g), 0.9 + 0.1 * torch.rand(batch, heads, T, generator=g),
        0.1 * torch.randn(batch, heads, d, d, generator=g)]
    return [x.to(device).requires_grad_() for x in xs]


def _gpu_kernel_rows(lengths: Sequence[int], dims: Sequence[int], batch: int, heads: int,
                     repeats: int) -> list[str]:
    """The Triton table, on a CUDA device (each timed call is synchronised)."""
    from nlbench.kernels.reference import delta_rule_reference
    from nlbench.kernels.triton_delta import delta_rule_triton

    def synced(fn: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            fn()
            torch.cuda.synchronize()

        return run

    lines = ["", f"GPU: {torch.cuda.get_device_name(0)}, Triton against the PyTorch reference on the same device.", "",
             "| T | d | reference ms | triton ms | speed-up |", "| ---: | ---: | ---: | ---: | ---: |"]
    for d in dims:
        for T in lengths:
            xs = _kernel_inputs(batch, heads, T, d, "cuda")
            ref, fast = _interleaved_medians([synced(_fwd_bwd(delta_rule_reference, xs)),
                                              synced(_fwd_bwd(delta_rule_triton, xs))], repeats)
            lines.append(f"| {T} | {d} | {ref * 1e3:.2f} | {fast * 1e3:.2f} | {ref / fast:.1f}x |")
    return lines


def kernel_cost(lengths: Sequence[int] = (64, 256, 1024), dims: Sequence[int] = (16, 64), batch: int = 2,
                heads: int = 2, repeats: int = 3) -> str:
    """Markdown table: forward + backward of the delta-rule memory, numba (and Triton on a GPU) against the
    PyTorch reference."""
    from nlbench.kernels.numba_delta import delta_rule_numba
    from nlbench.kernels.reference import delta_rule_reference

    def inputs(T: int, d: int) -> list[torch.Tensor]:
        return _kernel_inputs(batch, heads, T, d)

    t0 = time.perf_counter()
    _fwd_bwd(delta_rule_numba, inputs(2, 4))()  # JIT compile (or load from numba's cache)
    compile_s = time.perf_counter() - t0
    rows = []
    for d in dims:
        for T in lengths:
            xs = inputs(T, d)
            ref, fast = _interleaved_medians([_fwd_bwd(delta_rule_reference, xs), _fwd_bwd(delta_rule_numba, xs)],
                                             repeats)
            rows.append((T, d, ref, fast))
    lines = [
        f"Recurrent delta-rule memory, forward + backward (batch {batch}, heads {heads}, float32, dk = dv = d), "
        f"numba against the PyTorch reference in the same process; median of {repeats} after 5 warm-up runs. "
        f"Numba JIT compile (or cache load), timed once before: {compile_s:.2f} s.",
        f"Machine: {machine_description()}; {torch.get_num_threads()} torch threads, torch {torch.__version__}.",
        "Regenerate: `nlbench bench kernels --out results/kernels.md`. "
        + ("The GPU table follows." if torch.cuda.is_available() else
           "GPU (Triton): not measured, no GPU on this machine; the Triton kernel is tested on CPU through "
           "TRITON_INTERPRET=1."),
        "",
        "| T | d | reference ms | numba ms | speed-up |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [f"| {T} | {d} | {ref * 1e3:.2f} | {fast * 1e3:.2f} | {ref / fast:.1f}x |" for T, d, ref, fast in rows]
    if torch.cuda.is_available():
        lines += _gpu_kernel_rows((256, 1024, 4096), dims, batch, heads, repeats)
    return "\n".join(lines)
