"""One entry point per memory kernel (the delta rule, a chunk of writes to residual MLP memories): picks a backend
for the tensors it is given.

`backend="auto"` picks Triton for CUDA tensors, numba for CPU tensors, and the PyTorch reference when the
kernel's package is missing. A run forces one backend for every model it builds with `use_backend(...)`, from its
config's `kernel_backend` (`--kernel-backend`, or $NLBENCH_KERNEL_BACKEND read by the CLI), so the choice is
logged with the run. With TRITON_INTERPRET=1 the Triton kernel also runs on CPU tensors, which is how it is
tested without a GPU.
`nlbench bench kernels` measured numba 7x-125x faster than the reference at lengths 64-1024, and 5x-8x at the
small sizes HOPE runs at (T = 8 or 28, d = 32): on CPU, `auto` picks numba at every size measured.
The Triton kernels have not been timed on a GPU yet (none was lent).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch

from nlbench.core.errors import UsageError
from nlbench.kernels.reference import delta_rule_reference, mlp_memory_chunk_reference

BACKENDS = ("auto", "reference", "numba", "triton")
ENV = "NLBENCH_KERNEL_BACKEND"  # the CLI's default for `--kernel-backend`
_ACTIVE: ContextVar[tuple[str, int]] = ContextVar("nlbench_kernel_backend", default=("auto", 0))


def _check(backend: str) -> str:
    if backend not in BACKENDS:
        raise UsageError(f"kernel backend must be one of {', '.join(BACKENDS)}. Got {backend!r} instead.")
    return backend


@contextmanager
def use_backend(backend: str, threads: int = 0) -> Iterator[None]:
    """Inside: every `delta_rule(..., backend="auto")` runs on `backend`, numba with at most `threads` threads
    (numba's own count is back as it was afterwards)."""
    token = _ACTIVE.set((_check(backend), threads))
    numba = sys.modules.get("numba")  # not imported yet: it starts at its configured count, restored below
    before = numba.get_num_threads() if numba is not None else None
    try:
        yield
    finally:
        _ACTIVE.reset(token)
        numba = sys.modules.get("numba")
        if threads and numba is not None:
            numba.set_num_threads(before if before is not None else numba.config.NUMBA_NUM_THREADS)


def _available(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def resolve_backend(backend: str, device: torch.device) -> str:
    """The backend that will run: `backend`, else (for `auto`) the one `use_backend` set, resolved for `device`."""
    chosen = _check(backend) if backend != "auto" else _ACTIVE.get()[0]
    if chosen == "auto":
        if device.type == "cuda":
            return "triton" if _available("triton") else "reference"
        return "numba" if device.type == "cpu" and _available("numba") else "reference"
    if chosen == "numba" and device.type != "cpu":
        raise UsageError(f"the numba kernel runs on CPU tensors only; got tensors on {device}.")
    if chosen == "triton" and device.type != "cuda" and not os.environ.get("TRITON_INTERPRET"):
        raise UsageError(f"the Triton kernel needs CUDA tensors (or TRITON_INTERPRET=1); got tensors on {device}.")
    return chosen


def numba_threads() -> int:
    """Numba runs with the threads `use_backend` allows, if it set a number; returns how many it runs with (also a
    cost model's input: `titans.KERNEL_SAMPLES_PER_THREAD`)."""
    import numba

    threads = _ACTIVE.get()[1]
    if threads:
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    return numba.get_num_threads()


def delta_rule(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, eta: torch.Tensor, alpha: torch.Tensor,
               S0: torch.Tensor, chunk: int = 0, backend: str = "auto") -> tuple[torch.Tensor, torch.Tensor]:
    """Outputs (B, H, T, dv) and final state of `S_t = a_t S_{t-1} + eta_t (v_t - S_{t-1} k_t - B_t k_t) k_t^T`
    (B_t = 0 when `chunk = 0`, else the state at the start of t's chunk; see `reference.py`)."""
    if chunk < 0:
        raise UsageError(f"chunk must be 0 (no chunks) or a chunk length >= 1. Got {chunk!r} instead.")
    chosen = resolve_backend(backend, q.device)
    if chosen == "numba":
        from nlbench.kernels.numba_delta import delta_rule_numba

        numba_threads()
        return delta_rule_numba(q, k, v, eta, alpha, S0, chunk)
    if chosen == "triton":
        from nlbench.kernels.triton_delta import delta_rule_triton

        return delta_rule_triton(q, k, v, eta, alpha, S0, chunk)
    return delta_rule_reference(q, k, v, eta, alpha, S0, chunk)


def mlp_memory_chunk(w1: torch.Tensor, w2: torch.Tensor, k: torch.Tensor, target: torch.Tensor, eta: torch.Tensor,
                     alpha: torch.Tensor, q: torch.Tensor | None = None, read_target: bool = False,
                     x_next: torch.Tensor | None = None, backend: str = "auto"
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """One chunk of writes to M stacked residual MLP memories per sample (see `reference.py`): the weights after
    it, the reads of `q` before each write and of `x_next` after the chunk."""
    args = (w1, w2, k, target, eta, alpha, q, read_target, x_next)
    chosen = resolve_backend(backend, k.device)
    if chosen == "numba":
        from nlbench.kernels.numba_mlp_memory import mlp_memory_chunk_numba

        numba_threads()
        return mlp_memory_chunk_numba(*args)
    if chosen == "triton":
        from nlbench.kernels.triton_mlp_memory import mlp_memory_chunk_triton

        return mlp_memory_chunk_triton(*args)
    return mlp_memory_chunk_reference(*args)


def fused_chunk(function: type[torch.autograd.Function], w1: torch.Tensor, w2: torch.Tensor, k: torch.Tensor,
                target: torch.Tensor, eta: torch.Tensor, alpha: torch.Tensor, q: torch.Tensor | None = None,
                read_target: bool = False, x_next: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """`mlp_memory_chunk` computed by a fused kernel's autograd `function` (numba's, Triton's), which returns every
    read, empty where none was asked for: None there, as the reference."""
    w1, w2, y, y_next = function.apply(w1, w2, k, target, eta, alpha, q, x_next, read_target)
    return w1, w2, (y if q is not None else None), (y_next if x_next is not None else None)
