"""One entry point for the delta-rule memory: picks a backend for the tensors it is given.

`backend="auto"` picks numba for CPU tensors and the PyTorch reference otherwise. The Triton kernel for CUDA
tensors is not written yet, so CUDA uses the reference too. $NLBENCH_KERNEL_BACKEND forces one backend
(`reference`, `numba`). No backend is picked automatically unless `nlbench bench kernels` measured it faster
than the reference at the sizes the suites use.
"""

from __future__ import annotations

import os

import torch

from nlbench.errors import UsageError
from nlbench.kernels.reference import delta_rule_reference

BACKENDS = ("auto", "reference", "numba")
ENV = "NLBENCH_KERNEL_BACKEND"


def _numba_available() -> bool:
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_backend(backend: str, device: torch.device) -> str:
    """The backend that will run: $NLBENCH_KERNEL_BACKEND, else `backend`, with `auto` resolved for `device`."""
    chosen = os.environ.get(ENV) or backend
    if chosen not in BACKENDS:
        raise UsageError(f"kernel backend must be one of {', '.join(BACKENDS)} (from {ENV} or backend=). "
                         f"Got {chosen!r} instead.")
    if chosen == "auto":
        return "numba" if device.type == "cpu" and _numba_available() else "reference"
    if chosen == "numba" and device.type != "cpu":
        raise UsageError(f"the numba kernel runs on CPU tensors only; got tensors on {device}.")
    return chosen


def delta_rule(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, eta: torch.Tensor, alpha: torch.Tensor,
               S0: torch.Tensor, backend: str = "auto") -> tuple[torch.Tensor, torch.Tensor]:
    """Outputs (B, H, T, dv) and final state of `S_t = a_t S_{t-1} + eta_t (v_t - S_{t-1} k_t) k_t^T`."""
    if resolve_backend(backend, q.device) == "numba":
        from nlbench.kernels.numba_delta import delta_rule_numba

        return delta_rule_numba(q, k, v, eta, alpha, S0)
    return delta_rule_reference(q, k, v, eta, alpha, S0)
