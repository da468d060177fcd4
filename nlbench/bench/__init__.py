"""Benchmarks that print ratios against a reference measured in the same process.

`nlbench bench step`: the cost of one training step (forward, backward, optimizer/level schedule) of
each Nested Learning strategy, against a naive MLP with about the same number of parameters.

`nlbench bench overhead`: the cost of the harness. `naive` on `split-digits` through nlbench (Avalanche
strategy + protocol, with and without MLflow tracking) against a plain PyTorch loop with the same model,
optimizer, epochs, batch size and evaluations (every test experience before training and after each
experience). Each variant gets one warm-up, then the median of `repeats` timed runs.
"""

from __future__ import annotations

import functools
import math
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from unittest import mock

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from nlbench.core.registry import SCENARIOS, get_method
from nlbench.data.scenario import ScenarioData
from nlbench.kernels.dispatch import ENV as KERNEL_ENV
from nlbench.methods.models import input_features, trainable_params
from nlbench.nn import MLP
from nlbench.optim import build_optimizer
from nlbench.run.config import RunConfig, Suite
from nlbench.run.resources import machine_description
from nlbench.run.runner import execute_run, run_suite, seed_everything


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
    data = _scenario_data(scenario, seed)
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


@functools.lru_cache(maxsize=4)
def _scenario_data(scenario: str, seed: int) -> ScenarioData:
    """Built once per process: several benchmarks of `nlbench bench kernels` time on the same stream."""
    return SCENARIOS.get(scenario)().build(seed)


def mlp_matching(n_params: int, in_features: int, n_classes: int) -> list[int]:
    """Two equal hidden layers whose MLP has about `n_params` parameters (w^2 + (in + out + 2) w + out)."""
    b = in_features + n_classes + 2
    width = round((-b + math.sqrt(b * b + 4 * (n_params - n_classes))) / 2)
    return [max(width, 1)] * 2


def _trainer(method_name: str, hp: dict, data: ScenarioData) -> tuple[Callable[[Tensor, Tensor], None], nn.Module]:
    """One training step on a batch (forward, backward, optimizer step), and the model it trains."""
    method = get_method(method_name)()
    model = method.build_model(hp, data.info)
    optimizer = method.make_optimizer(model, hp)
    loss_fn = nn.CrossEntropyLoss()

    def step(x: Tensor, y: Tensor) -> None:
        optimizer.zero_grad()
        loss_fn(model(x), y).backward()
        optimizer.step()

    return step, model


def _step_timer(method_name: str, hp: dict, data: ScenarioData,
                batch_size: int) -> tuple[Callable[[], None], nn.Module]:
    train, model = _trainer(method_name, hp, data)
    e = data.experiences[0]
    x, y = e.x_train[:batch_size], e.y_train[:batch_size]
    return lambda: train(x, y), model


def _epoch_timer(method_name: str, hp: dict, data: ScenarioData) -> Callable[[], None]:
    """One pass over the first experience's training set in batches of `hp["batch_size"]`."""
    train, _ = _trainer(method_name, hp, data)
    e = data.experiences[0]
    batches = list(zip(e.x_train.split(hp["batch_size"]), e.y_train.split(hp["batch_size"]), strict=True))

    def epoch() -> None:
        for x, y in batches:
            train(x, y)

    return epoch


def _interleaved_medians(fns: Sequence[Callable[[], None]], repeats: int, warmup: int = 5) -> list[float]:
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


def step_cost(methods: Sequence[str] = ("cms", "hope", "titans"), repeats: int = 100,
              scenario: str = "split-digits", seed: int = 0) -> str:
    """Markdown table: median time of one training step per method and of a parameter-matched naive MLP."""
    data = _scenario_data(scenario, seed)
    rows = []
    for name in methods:
        hp = get_method(name).resolve()
        seed_everything(seed)
        step, model = _step_timer(name, hp, data, hp["batch_size"])
        n_params = trainable_params(model)
        hidden = mlp_matching(n_params, input_features(data.info), data.info.n_classes)
        ref_step, ref_model = _step_timer("naive", get_method("naive").resolve({"hidden_sizes": hidden}), data,
                                          hp["batch_size"])
        ref_params = trainable_params(ref_model)
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
    data = _scenario_data(scenario, seed)
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


def _fwd_bwd(fn: Callable, xs: list[Tensor], chunk: int) -> Callable[[], None]:
    def step() -> None:
        out, state = fn(*xs, chunk=chunk)
        torch.autograd.grad(out.sum() + state.sum(), xs)

    return step


def _kernel_inputs(batch: int, heads: int, T: int, d: int, device: str = "cpu") -> list[Tensor]:
    g = torch.Generator().manual_seed(0)
    xs = [torch.randn(batch, heads, T, d, generator=g), torch.nn.functional.normalize(
        torch.randn(batch, heads, T, d, generator=g), dim=-1), torch.randn(batch, heads, T, d, generator=g),
        0.5 * torch.rand(batch, heads, T, generator=g), 0.9 + 0.1 * torch.rand(batch, heads, T, generator=g),
        0.1 * torch.randn(batch, heads, d, d, generator=g)]
    return [x.to(device).requires_grad_() for x in xs]


def _form(chunk: int) -> str:
    return f"Eq. 93, chunk {chunk}" if chunk else "Eq. 92"


def _kernel_table(name: str, fast: Callable, device: str, shapes: Sequence[tuple[int, int, int, int]],
                  chunks: Sequence[int], repeats: int) -> list[str]:
    """Rows of forward + backward time, the PyTorch reference against `fast`, both on `device`, timed in turn."""
    from nlbench.kernels.reference import delta_rule_reference

    def synced(fn: Callable[[], None]) -> Callable[[], None]:
        if device == "cpu":
            return fn

        def run() -> None:
            fn()
            torch.cuda.synchronize()

        return run

    lines = [f"| batch | heads | T | d | form | reference ms | {name} ms | speed-up |",
             "| ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |"]
    for batch, heads, T, d in shapes:
        xs = _kernel_inputs(batch, heads, T, d, device)
        for chunk in chunks:
            ref, t = _interleaved_medians([synced(_fwd_bwd(delta_rule_reference, xs, chunk)),
                                           synced(_fwd_bwd(fast, xs, chunk))], repeats)
            lines.append(f"| {batch} | {heads} | {T} | {d} | {_form(chunk)} | {ref * 1e3:.2f} | {t * 1e3:.2f} | "
                         f"{ref / t:.1f}x |")
    return lines


def _with_backend(backend: str, fn: Callable[[], None]) -> Callable[[], None]:
    """`fn` with the dispatcher's backend forced the way a user forces it, through the environment."""
    def run() -> None:
        with mock.patch.dict(os.environ, {KERNEL_ENV: backend}):
            fn()

    return run


LINEAR_HOPE = {"memory_hidden": 0, "self_modify": False}  # the HOPE whose Titans memory runs on the kernel


def hope_epoch_cost(repeats: int, scenario: str = "permuted-digits", seed: int = 0, warmup: int = 5) -> list[str]:
    """One training epoch of `hope` with kernels on (auto) and off (reference), two identical models in turn."""
    data = _scenario_data(scenario, seed)
    variants = [("linear memory, L2 loss (Eq. 93)", LINEAR_HOPE),
                ("linear memory, dot-product loss (Eq. 92)", {**LINEAR_HOPE, "memory_loss": "dot"})]
    method = get_method("hope")
    e = data.experiences[0]
    lines = [f"End to end: one training epoch of `hope` on {scenario} (experience 0: {len(e.y_train)} samples of "
             f"{tuple(e.x_train.shape[1:])}, one token per row; batch {method.resolve()['batch_size']}, method "
             f"defaults otherwise), kernels off ({KERNEL_ENV}=reference) against on (auto: "
             f"{'triton' if torch.cuda.is_available() else 'numba'}), two identically seeded models trained in turn; "
             f"median of {repeats} epochs after {warmup} warm-up epochs.", "",
             "| hope variant | kernels off s/epoch | kernels on s/epoch | speed-up |", "| --- | ---: | ---: | ---: |"]
    for label, overrides in variants:
        hp = method.resolve(overrides)
        epochs = []
        for backend in ("reference", "auto"):
            seed_everything(seed)
            epochs.append(_with_backend(backend, _epoch_timer("hope", hp, data)))
        off, on = _interleaved_medians(epochs, repeats, warmup)
        lines.append(f"| {label} | {off:.3f} | {on:.3f} | {off / on:.2f}x |")
    seed_everything(seed)
    (default,) = _interleaved_medians([_epoch_timer("hope", method.resolve(), data)], repeats, warmup)
    lines.append(f"| default: MLP memory, self-modifying (no kernel: it is not a linear recurrence) | {default:.3f} "
                 "| - | - |")
    return lines


def newton_schulz_profile(repeats: int, scenario: str = "permuted-digits", seed: int = 0) -> list[str]:
    """How much of a Muon step is Newton-Schulz, and how fast its largest matmul runs: is a kernel worth it?"""
    from nlbench.optim import newton_schulz

    data = _scenario_data(scenario, seed)
    hp = get_method("muon").resolve()
    seed_everything(seed)
    step, model = _step_timer("muon", hp, data, hp["batch_size"])
    shapes = [tuple(p.shape) for p in model.parameters() if p.ndim == 2]
    grads = [torch.randn(shape) for shape in shapes]
    grams = [g.mT if g.shape[0] > g.shape[1] else g for g in grads]  # the wide side, as newton_schulz iterates
    ns_steps = hp["optimizer_options"]["ns_steps"]
    fns = [step, *(lambda g=g: newton_schulz(g, ns_steps) for g in grads), *(lambda x=x: x @ x.mT for x in grams)]
    times = _interleaved_medians(fns, repeats)
    t_step, t_ns, t_mm = times[0], times[1:1 + len(shapes)], times[1 + len(shapes):]
    lines = [f"Newton-Schulz inside a `muon` training step on {scenario} (batch {hp['batch_size']}, "
             f"{ns_steps} quintic steps per 2-D weight), median of {repeats}, timed in turn:", "",
             "| weight | Newton-Schulz us | X X^T us | X X^T GFLOP/s |", "| --- | ---: | ---: | ---: |"]
    for shape, x, ns, mm in zip(shapes, grams, t_ns, t_mm, strict=True):
        flops = 2 * x.shape[0] ** 2 * x.shape[1]
        lines.append(f"| {shape[0]} x {shape[1]} | {ns * 1e6:.0f} | {mm * 1e6:.1f} | {flops / mm / 1e9:.1f} |")
    lines += ["", f"Muon step: {t_step * 1e3:.3f} ms, of which Newton-Schulz over its weights: "
                  f"{sum(t_ns) * 1e3:.3f} ms ({sum(t_ns) / t_step:.0%})."]
    return lines


def kernel_cost(lengths: Sequence[int] = (64, 256, 1024), dims: Sequence[int] = (16, 64), batch: int = 2,
                heads: int = 2, repeats: int = 3, end_to_end: bool = True) -> str:
    """Markdown tables: forward + backward of the delta-rule memory, numba (and Triton on a GPU) against the
    PyTorch reference, at the issue's sizes and at the sizes HOPE uses; then a HOPE epoch with kernels on/off."""
    from nlbench.kernels.numba_delta import delta_rule_numba

    t0 = time.perf_counter()
    _fwd_bwd(delta_rule_numba, _kernel_inputs(1, 1, 2, 4), 0)()  # JIT compile (or load from numba's cache)
    compile_s = time.perf_counter() - t0
    chunks = (0, 4)
    sweep = [(batch, heads, T, d) for d in dims for T in lengths]
    model_sizes = [(32, 1, 8, 32), (32, 1, 28, 32)]  # batch 32, d = 32: digits (8 rows), MNIST (28 rows)
    lines = [
        f"Recurrent delta-rule memory, forward + backward (float32, dk = dv = d), numba against the PyTorch "
        f"reference in the same process, the two timed in turn; median of {repeats} after 5 warm-up runs. "
        f"Numba JIT compile (or cache load), timed once before: {compile_s:.2f} s. Forms: Eq. 92 is the "
        "token-by-token recurrence, Eq. 93 the chunk-wise one (gradient at the chunk-boundary state).",
        f"Machine: {machine_description()}; {torch.get_num_threads()} torch threads, torch {torch.__version__}.",
        "Regenerate: `nlbench bench kernels --out results/kernels.md`. "
        + ("The GPU tables follow." if torch.cuda.is_available() else
           "GPU (Triton): not measured, no GPU on this machine; the Triton kernel is tested on CPU through "
           "TRITON_INTERPRET=1."),
        "", "Sizes of the issue's targets (lengths 64-1024, head dimensions 16-64):", "",
        *_kernel_table("numba", delta_rule_numba, "cpu", sweep, chunks, repeats),
        "", "Sizes HOPE runs at in the suites (the dispatcher picks numba there too):", "",
        *_kernel_table("numba", delta_rule_numba, "cpu", model_sizes, chunks, repeats),
    ]
    if torch.cuda.is_available():
        from nlbench.kernels.triton_delta import delta_rule_triton

        lines += ["", f"GPU: {torch.cuda.get_device_name(0)}, Triton against the PyTorch reference on the same device.",
                  "", *_kernel_table("triton", delta_rule_triton, "cuda",
                                     [(batch, heads, T, d) for d in dims for T in (256, 1024, 4096)], chunks,
                                     repeats)]
    if end_to_end:
        lines += ["", *hope_epoch_cost(repeats), "", *newton_schulz_profile(max(repeats, 100))]
    return "\n".join(lines)
