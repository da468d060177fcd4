"""The recurrent delta-rule memory with retention, in plain PyTorch: the ground truth every kernel is held to.

For each token t, per batch element and head, with a linear memory (arXiv Eqs. 88 and 92-93):

    S_t = S_{t-1} (a_t I - eta_t k_t k_t^T) + eta_t (v_t - B_t k_t) k_t^T          o_t = S_t q_t

- `chunk = 0`: B_t = 0, the token-by-token recurrence of Eq. 92 (DGD on the dot-product loss), that is
  `S_t = a_t S_{t-1} + eta_t (v_t - S_{t-1} k_t) k_t^T`, the delta rule with retention.
- `chunk = C >= 1`: B_t = S_{C floor((t-1)/C)}, the state at the start of t's chunk, the chunk-wise form of
  Eq. 93 (DGD on the L2 loss, its gradient taken at the chunk boundary so a chunk's gradients are parallel).
  With C = 1 it is Eq. 88 on the L2 loss exactly: the erase counts twice, once from DGD's decay, once from the
  loss.

Shapes: q, k (B, H, T, dk); v (B, H, T, dv); eta, alpha (B, H, T); S0 (B, H, dv, dk). Returns o (B, H, T, dv)
and the final state S_T. Autograd through this loop gives the reference gradients. It is slow for long
sequences, which is why the kernels exist.
"""

from __future__ import annotations

import torch

from nlbench.nn.memory import MLPMemory, mlp_memory_chunk, mlp_memory_read


def delta_rule_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, eta: torch.Tensor,
                         alpha: torch.Tensor, S0: torch.Tensor, chunk: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    S = boundary = S0
    outputs = []
    for t in range(q.shape[2]):
        kt, vt = k[:, :, t], v[:, :, t]
        u = torch.einsum("bhvk,bhk->bhv", S, kt)  # S_{t-1} k_t
        if chunk:
            if t % chunk == 0:
                boundary = S
            u = u + torch.einsum("bhvk,bhk->bhv", boundary, kt)
        S = alpha[:, :, t, None, None] * S + eta[:, :, t, None, None] * torch.einsum("bhv,bhk->bhvk", vt - u, kt)
        outputs.append(torch.einsum("bhvk,bhk->bhv", S, q[:, :, t]))
    return torch.stack(outputs, dim=2), S


def mlp_memory_chunk_reference(w1: torch.Tensor, w2: torch.Tensor, k: torch.Tensor, target: torch.Tensor,
                               eta: torch.Tensor, alpha: torch.Tensor, q: torch.Tensor | None = None,
                               read_target: bool = False, x_next: torch.Tensor | None = None
                               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """One chunk of M stacked residual MLP memories per sample (`memory.mlp_memory_chunk`), in the kernels'
    layout: weights `w1 (B, M, d, h)`, `w2 (B, M, h, d)`; `k, target, q (B, C, d)`, `x_next (B, N, d)` and
    `eta, alpha (B, C)` shared by the M memories. Returns the weights after the chunk, the reads `(B, M, C, d)`
    of q before each write and the reads `(B, M, N, d)` of x_next after the chunk (the next chunk's inputs)."""
    shared = [None if t is None else t[:, None] for t in (k, target, eta, alpha, q)]
    state, y = mlp_memory_chunk(MLPMemory(w1, w2), *shared, read_target=read_target)
    return state.w1, state.w2, y, None if x_next is None else mlp_memory_read(state, x_next[:, None])

