"""One entry point for the delta-rule memory: picks a backend for the tensors it is given.

`backend="auto"` picks Triton for CUDA tensors, numba for CPU tensors, and the PyTorch reference when the
kernel's package is missing. $NLBENCH_KERNEL_BACKEND forces one backend (`reference`, `numba`, `triton`; with
TRITON_INTERPRET=1 the Triton kernel also runs on CPU tensors, which is how it is tested without a GPU).
`nlbench bench kernels` measured numba 7x-125x faster than the reference at lengths 64-1024, and 5x-8x at the
small sizes HOPE runs at (T = 8 or 28, d = 32): on CPU, `auto` picks numba at every size measured.
The Triton kernel has not been timed on a GPU yet (none was lent).
"""

from __future__ import annotations

import os

import torch

from nlbench.core.errors import UsageError
from nlbench.kernels.reference import delta_rule_reference

BACKENDS = ("auto", "reference", "numba", "triton")
ENV = "NLBENCH_KERNEL_BACKEND"


def _available(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def resolve_backend(backend: str, device: torch.device) -> str:
    """The backend that will run: $NLBENCH_KERNEL_BACKEND, else `backend`, with `auto` resolved for `device`."""
    chosen = os.environ.get(ENV) or backend
    if chosen not in BACKENDS:
        raise UsageError(f"kernel backend must be one of {', '.join(BACKENDS)} (from {ENV} or backend=). "
                         f"Got {chosen!r} instead.")
    if chosen == "auto":
        if device.type == "cuda":
            return "triton" if _available("triton") else "reference"
        return "numba" if device.type == "cpu" and _available("numba") else "reference"
    if chosen == "numba" and device.type != "cpu":
        raise UsageError(f"the numba kernel runs on CPU tensors only; got tensors on {device}.")
    if chosen == "triton" and device.type != "cuda" and not os.environ.get("TRITON_INTERPRET"):
        raise UsageError(f"the Triton kernel needs CUDA tensors (or TRITON_INTERPRET=1); got tensors on {device}.")
    return chosen


def delta_rule(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, eta: torch.Tensor, alpha: torch.Tensor,
               S0: torch.Tensor, chunk: int = 0, backend: str = "auto") -> tuple[torch.Tensor, torch.Tensor]:
    """Outputs (B, H, T, dv) and final state of `S_t = a_t S_{t-1} + eta_t (v_t - S_{t-1} k_t - B_t k_t) k_t^T`
    (B_t = 0 when `chunk = 0`, else the state at the start of t's chunk; see `reference.py`)."""
    if chunk < 0:
        raise UsageError(f"chunk must be 0 (no chunks) or a chunk length >= 1. Got {chunk!r} instead.")
    chosen = resolve_backend(backend, q.device)
    if chosen == "numba":
        from nlbench.kernels.numba_delta import delta_rule_numba

        return delta_rule_numba(q, k, v, eta, alpha, S0, chunk)
    if chosen == "triton":
        from nlbench.kernels.triton_delta import delta_rule_triton

        return delta_rule_triton(q, k, v, eta, alpha, S0, chunk)
    return delta_rule_reference(q, k, v, eta, alpha, S0, chunk)
