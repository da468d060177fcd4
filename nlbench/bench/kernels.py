"""`nlbench bench kernels`: the delta-rule memory kernels against their PyTorch reference, at the issue's sizes and
at the sizes HOPE runs at; the self-modifying memories on each implementation (the fused MLP-memory chunk kernel
among them); then a HOPE epoch with kernels on and off, and the Newton-Schulz profile of Muon."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from nlbench.bench.timing import epoch_timer, interleaved_medians, machine_line, scenario_data, step_timer, synced
from nlbench.core.registry import get_method
from nlbench.kernels.dispatch import use_backend
from nlbench.run.execute import seed_everything


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

    lines = [f"| batch | heads | T | d | form | reference ms | {name} ms | speed-up |",
             "| ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |"]
    for batch, heads, T, d in shapes:
        xs = _kernel_inputs(batch, heads, T, d, device)
        for chunk in chunks:
            ref, t = interleaved_medians([synced(_fwd_bwd(delta_rule_reference, xs, chunk), device),
                                           synced(_fwd_bwd(fast, xs, chunk), device)], repeats)
            lines.append(f"| {batch} | {heads} | {T} | {d} | {_form(chunk)} | {ref * 1e3:.2f} | {t * 1e3:.2f} | "
                         f"{ref / t:.1f}x |")
    return lines


def with_backend(backend: str, fn: Callable[[], None]) -> Callable[[], None]:
    """`fn` with the dispatcher's backend forced the way a run forces it from its `kernel_backend` setting."""
    def run() -> None:
        with use_backend(backend):
            fn()

    return run


LINEAR_HOPE = {"memory_hidden": 0, "self_modify": False}  # the HOPE whose Titans memory runs on the kernel


def hope_epoch_cost(repeats: int, scenario: str = "permuted-digits", seed: int = 0, warmup: int = 5) -> list[str]:
    """One training epoch of `hope` with kernels on (auto) and off (reference), two identical models in turn."""
    data = scenario_data(scenario, seed)
    variants = [("linear memory, L2 loss (Eq. 93)", LINEAR_HOPE),
                ("linear memory, dot-product loss (Eq. 92)", {**LINEAR_HOPE, "memory_loss": "dot"})]
    method = get_method("hope")
    e = data.experiences[0]
    lines = [f"End to end: one training epoch of `hope` on {scenario} (experience 0: {len(e.y_train)} samples of "
             f"{tuple(e.x_train.shape[1:])}, one token per row; batch {method.resolve()['batch_size']}, method "
             f"defaults otherwise), kernels off (kernel_backend = reference) against on (auto: "
             f"{'triton' if torch.cuda.is_available() else 'numba'}), two identically seeded models trained in turn; "
             f"median of {repeats} epochs after {warmup} warm-up epochs.", "",
             "| hope variant | kernels off s/epoch | kernels on s/epoch | speed-up |", "| --- | ---: | ---: | ---: |"]
    for label, overrides in variants:
        hp = method.resolve(overrides)
        epochs = []
        for backend in ("reference", "auto"):
            seed_everything(seed)
            epochs.append(with_backend(backend, epoch_timer("hope", hp, data)))
        off, on = interleaved_medians(epochs, repeats, warmup)
        lines.append(f"| {label} | {off:.3f} | {on:.3f} | {off / on:.2f}x |")
    seed_everything(seed)
    (default,) = interleaved_medians([epoch_timer("hope", method.resolve(), data)], repeats, warmup)
    lines.append(f"| default: MLP memory, self-modifying (no kernel: it is not a linear recurrence) | {default:.3f} "
                 "| - | - |")
    return lines


def newton_schulz_profile(repeats: int, scenario: str = "permuted-digits", seed: int = 0) -> list[str]:
    """How much of a Muon step is Newton-Schulz, and how fast its largest matmul runs: is a kernel worth it?"""
    from nlbench.optim import newton_schulz

    data = scenario_data(scenario, seed)
    hp = get_method("muon").resolve()
    seed_everything(seed)
    step, model = step_timer("muon", hp, data, hp["batch_size"])
    shapes = [tuple(p.shape) for p in model.parameters() if p.ndim == 2]
    grads = [torch.randn(shape) for shape in shapes]
    grams = [g.mT if g.shape[0] > g.shape[1] else g for g in grads]  # the wide side, as newton_schulz iterates
    ns_steps = hp["optimizer_options"]["ns_steps"]
    fns = [step, *(lambda g=g: newton_schulz(g, ns_steps) for g in grads), *(lambda x=x: x @ x.mT for x in grams)]
    times = interleaved_medians(fns, repeats)
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


def _forward_backward(model: torch.nn.Module, x: Tensor) -> None:
    model(x).sum().backward()


MLP_MEMORY_SIZES = [(8, 16), (8, 32), (8, 64), (28, 32), (28, 64)]  # (tokens, batch): digits and MNIST rows
MLP_MEMORY_GPU_SIZES = [(8, 32), (8, 512), (28, 32), (28, 512)]  # and the evaluation batches a GPU gets


def mlp_memory_cost(repeats: int, sizes: Sequence[tuple[int, int]] = MLP_MEMORY_SIZES, dim: int = 32,
                    threads: Sequence[int] = (1, 0), device: str = "cpu") -> list[str]:
    """The self-modifying Titans memories (k, v, eta, alpha and main, d = h = `dim`, method defaults otherwise),
    forward + backward of the module, on each `memory_impl`, timed in turn, with 1 thread and with this process's
    (0): where the fused chunk kernel (numba on CPU, Triton on `device = "cuda"`) beats the factored path, which
    sets `titans.KERNEL_SAMPLES_PER_THREAD` for `auto` on CPU."""
    import numba

    from nlbench.nn.titans import KERNEL_SAMPLES_PER_THREAD, SelfModifyingTitans

    impls = ("factored", "kernel", "materialised")
    where = (f"with torch and numba on 1 thread and on {torch.get_num_threads()}" if device == "cpu" else
             f"on {torch.cuda.get_device_name(0)} (the kernel: Triton)")
    lines = [f"Self-modifying Titans memories (d = h = {dim}), forward + backward of the module, float32, on each "
             f"`memory_impl`, timed in turn, {where}; median of {repeats} after 5 warm-up runs. `auto` (the default) "
             f"runs the kernel on CPU while the batch has at most {KERNEL_SAMPLES_PER_THREAD} samples per numba "
             "thread, the factored path above and on CUDA.", "",
             "| threads | tokens | batch | " + " | ".join(f"{i} ms" for i in impls) + " | kernel vs factored |",
             "| ---: | ---: | ---: | " + "---: | " * len(impls) + "---: |"]
    torch_threads, numba_threads = torch.get_num_threads(), numba.get_num_threads()
    try:
        for n in threads:
            torch.set_num_threads(n or torch_threads)
            numba.set_num_threads(n or numba_threads)
            for tokens, batch in sizes:
                x = torch.randn(batch, tokens, dim, generator=torch.Generator().manual_seed(0)).to(device)
                steps = []
                for impl in impls:
                    torch.manual_seed(0)
                    model = SelfModifyingTitans(dim, dim, implementation=impl).to(device)
                    steps.append(synced(functools.partial(_forward_backward, model, x), device))
                times = interleaved_medians(steps, repeats)
                lines.append(f"| {n or torch_threads} | {tokens} | {batch} | "
                             + " | ".join(f"{t * 1e3:.2f}" for t in times) + f" | {times[0] / times[1]:.2f}x |")
    finally:
        torch.set_num_threads(torch_threads)
        numba.set_num_threads(numba_threads)
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
        machine_line(),
        "Regenerate: "
        + ("`nlbench bench kernels --out results/kernels_gpu.md` on a GPU machine (its CPU tables are that "
           "machine's); the GPU tables follow." if torch.cuda.is_available() else
           "`nlbench bench kernels --out results/kernels.md`. "
           "GPU (Triton): not measured, no GPU on this machine; the Triton kernels are tested on CPU through "
           "TRITON_INTERPRET=1."),
        "", "Sizes of the issue's targets (lengths 64-1024, head dimensions 16-64):", "",
        *_kernel_table("numba", delta_rule_numba, "cpu", sweep, chunks, repeats),
        "", "Sizes HOPE runs at in the suites (the dispatcher picks numba there too):", "",
        *_kernel_table("numba", delta_rule_numba, "cpu", model_sizes, chunks, repeats),
        "", *mlp_memory_cost(max(repeats, 20), MLP_MEMORY_SIZES if end_to_end else [(3, 2)], 32 if end_to_end else 4),
    ]
    if torch.cuda.is_available():
        from nlbench.kernels.triton_delta import delta_rule_triton

        lines += ["", f"GPU: {torch.cuda.get_device_name(0)}, Triton against the PyTorch reference on the same device.",
                  "", *_kernel_table("triton", delta_rule_triton, "cuda",
                                     [(batch, heads, T, d) for d in dims for T in (256, 1024, 4096)], chunks,
                                     repeats),
                  "", *mlp_memory_cost(max(repeats, 20), MLP_MEMORY_GPU_SIZES, threads=(0,), device="cuda")]
    if end_to_end:
        lines += ["", *hope_epoch_cost(repeats), "", *newton_schulz_profile(max(repeats, 100))]
    return "\n".join(lines)
