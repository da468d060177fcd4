"""A residual MLP memory (Eq. 89) learning by DGD with retention (Eq. 88), kept as the factors of its writes.

Why: materialising every sample's weights `(b, d, h)` after every token made a Titans step ~40x an MLP step.
Every write of Eq. 88 with the gradient of Eqs. 90-93 is rank one on top of a uniform decay, so after p writes

    W1_p = A_p W1_0 - sum_{s<=p} c_s err_s act_s^T,     W2_p = A_p W2_0 - sum_{s<=p} c_s e_s k_s^T,
    A_p = prod_{r<=p} alpha_r,   c_s = eta_s prod_{r=s+1..p} alpha_r,   e_s = W2_{s-1} k_s + back_s,

(`memory.mlp_memory_dgd_step_factored`: the data-dependent decay of W2 folds into e_s). Applying W_p to a
token is then `A_p (W_0 x)` with the shared initial weights plus attention over the p earlier writes, and a
chunk of C writes is one batched solve of a unit lower-triangular C x C system for its e_s. No per-sample
weight matrix exists unless the final state is asked for (memory carried along a stream).

Axis key: b batch, m stacked memories (the k, v, eta, alpha memories share their keys and gates), n/p
tokens, d width, h hidden width. Layout: what the m memories share (k, targets, q, gates, decays) is
`(b, n, f)`; every per-memory tensor is `(m, b, n, f)`, memory-major, so shared tensors broadcast against it
without copies and its products are plain batched matmuls. (Broadcasting weights or keys across a
`(b, m, ...)` layout cost a view, an expand and a copy per operand: most of the ~1,000 ops of a forward pass.)
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor
from torch.nn import functional as F

from nlbench.nn.memory import MLPMemory, silu_grad


@functools.lru_cache(maxsize=32)
def _later_than(C: int, device: torch.device) -> Tensor:
    """`(C + 1, C + 1)` mask `[row, r]: r > row`, i.e. alpha_{r-1} comes after write j = row - 1 (j = -1..C-1)."""
    idx = torch.arange(C + 1, device=device)
    return idx[None, :] > idx[:, None]


def within_chunk_decay(eta: Tensor, alpha: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """For the C writes of a chunk: `G[i, j] = eta_j prod_{r=j+1..i-1} alpha_r` (j < i, else 0), the weight of
    write j in the state token i reads (after i-1 writes); `a[i] = prod_{r<i} alpha_r`, the decay of the
    boundary state by then; `tail[j] = eta_j prod_{r>j} alpha_r`, write j's weight at the chunk's end; and
    the chunk's total decay `prod_r alpha_r`. All from one masked cumprod (no division by a small alpha):
    row j + 1 of P holds `P[j + 1, i] = prod_{j<r<i} alpha_r` for i = 0..C, row 0 standing for j = -1."""
    C = alpha.shape[-1]
    shifted = torch.cat([torch.ones_like(alpha[..., :1]), alpha], dim=-1)  # [r] -> alpha_{r-1}
    P = torch.where(_later_than(C, alpha.device), shifted[..., None, :], 1.0).cumprod(-1)
    G = (P[..., 1:, :C].transpose(-1, -2) * eta[..., None, :]).tril(-1)
    return G, P[..., 0, :C], eta * P[..., 1:, C], P[..., 0, C]


SHORT = 8  # the longest contraction `short_matmul` computes as a broadcast product ...
BROADCAST_MAX = 1 << 16  # ... and the most elements its product may have (beyond, the copy costs more than GEMMs)


def short_matmul(a: Tensor, b: Tensor) -> Tensor:
    """`a @ b` for batches of small matrices, as a broadcast product and sum when the contracted axis is short
    (a chunk's or a short history's tokens) and the batch small. On CPU, torch's batched matmul calls one small
    GEMM per matrix, which costs about twice as much forward and backward at these sizes (measured: 128 matrices
    of 2 x 4 by 4 x 32). Over longer histories (28 image rows) or large batches (evaluation) the product's
    memory traffic costs more than the GEMMs, so they run as matmuls."""
    rows, k, cols = a.shape[-2], a.shape[-1], b.shape[-1]
    matrices = max(a.numel() // (rows * k), b.numel() // (k * cols))  # after broadcasting
    if k > SHORT or matrices * rows * k * cols > BROADCAST_MAX:
        return a @ b
    return (a.unsqueeze(-1) * b.unsqueeze(-3)).sum(-2)


def unit_lower_solve(L: Tensor, rhs: Tensor) -> Tensor:
    """(I + L)^-1 rhs for a strictly lower-triangular C x C `L`: L is nilpotent, so the inverse is the finite
    product (I - L)(I + L^2)(I + L^4)... (log2 C factors). A few tiny matmuls, cheaper forward and backward
    than a triangular solve for the chunk sizes used (2-8)."""
    inverse_times = rhs
    power, span = -L, 1
    while True:
        inverse_times = inverse_times + short_matmul(power, inverse_times)
        span *= 2
        if span >= L.shape[-1]:
            return inverse_times
        power = power @ power


class WriteHistory:
    """The state of m stacked residual MLP memories of a batch after the writes so far (see the module doc)."""

    def __init__(self, initial: MLPMemory, batch: int):
        self.w1_0, self.w2_0 = initial  # (m, d, h), (m, h, d): shared by every sample
        self.batch = batch
        self.total: Tensor | None = None  # A_p, (b,)
        self.tails: Tensor | None = None  # c_s, (b, p)
        self.keys: Tensor | None = None  # (b, p, d)
        self.e: Tensor | None = None  # (m, b, p, h)
        self.err: Tensor | None = None  # (m, b, p, d)
        self.act: Tensor | None = None  # (m, b, p, h)

    def _decayed(self, y: Tensor, scores: Tensor, right: Tensor) -> Tensor:
        """A y - sum_s c_s scores_s right_s: the weight `A W_0 - sum_s c_s right_s left_s^T` applied to the
        inputs whose `W_0 x` is y and whose products with the left factors are `scores (..., n, p)` (once
        there are writes)."""
        return self.total[:, None, None] * y - short_matmul(scores * self.tails[:, None, :], right)

    def _apply(self, x: Tensor, w0: Tensor, left: Tensor, right: Tensor) -> Tensor:
        """W_p x for each memory's own input `x (m, b, n, in)`; `w0 (m, out, in)`, the shared initial weights
        as one product batched over the m memories."""
        m, b, n, i = x.shape
        y = torch.bmm(x.view(m, b * n, i), w0.transpose(1, 2)).view(m, b, n, -1)
        return y if self.total is None else self._decayed(y, x @ left.transpose(-1, -2), right)

    def w2(self, x: Tensor) -> Tensor:
        """W2 x for every memory of an input they share, `(b, n, d) -> (m, b, n, h)`: one product with the m
        stacked weights, and the products with the (shared) keys taken once."""
        b, n, d = x.shape
        m = self.w2_0.shape[0]
        y = (self.w2_0.reshape(-1, d) @ x.reshape(b * n, d).T).view(m, -1, b * n).transpose(1, 2).reshape(m, b, n, -1)
        return y if self.total is None else self._decayed(y, torch.bmm(x, self.keys.transpose(1, 2)), self.e)

    def w1(self, hidden: Tensor) -> Tensor:
        return self._apply(hidden, self.w1_0, self.act, self.err)

    def w1_transposed(self, r: Tensor) -> Tensor:
        return self._apply(r, self.w1_0.transpose(1, 2), self.err, self.act)

    def read(self, x: Tensor) -> Tensor:
        """M(x) = x + W1 silu(W2 x) at the current state (Eq. 89), `(b, n, d) -> (m, b, n, d)`."""
        return self.w1(F.silu(self.w2(x))) + x

    def write(self, k: Tensor, target: Tensor, eta: Tensor, alpha: Tensor, q: Tensor | None = None,
              read_target: bool = False) -> Tensor | None:
        """One chunk: C writes of Eq. 88 whose L2 gradients are all taken at the current (boundary) state
        (Eqs. 90-93), towards `target`, or towards M(target) at that state with `read_target` (Eq. 86). With
        `q`, also return the reads `M_{t-1}(q_t)` before each write (Eq. 83), `(m, b, C, d)`. `k, target, q`
        are `(b, C, d)` and `eta, alpha` `(b, C)`, shared by the m memories. The boundary state is applied to
        k, the target and q in one product each (fewer, larger ops: the chunks are small)."""
        C = k.shape[1]
        inputs = [k] + ([target] if read_target else []) + ([q] if q is not None else [])
        z, *rest = self.w2(torch.cat(inputs, dim=1) if len(inputs) > 1 else k).split(C, dim=-2)
        act = F.silu(z)  # the gradient factors of 1/2 ||M(k) - target||^2 at the boundary state
        if read_target:
            w1_act, w1_target = self.w1(torch.cat([act, F.silu(rest.pop(0))], dim=-2)).split(C, dim=-2)
            err = w1_act - w1_target + (k - target)
        else:
            err = self.w1(act) + (k - target)
        back = self.w1_transposed(err) * silu_grad(z)
        G, a, tail, total = within_chunk_decay(eta, alpha)
        a = a[..., None]
        # e_i = W2_{i-1} k_i + back_i = a_i z_i - sum_{j<i} G_ij (k_j . k_i) e_j + back_i: (I + L) E = R.
        e = unit_lower_solve(G * torch.bmm(k, k.transpose(1, 2)), a * z + back)
        reads = None
        if q is not None:  # y_i = M_{i-1}(q_i), the boundary state's read decayed by a_i plus the chunk's writes
            hq = F.silu(a * rest[0] - short_matmul(G * torch.bmm(q, k.transpose(1, 2)), e))
            reads = a * self.w1(hq) - short_matmul(G * (hq @ act.transpose(-1, -2)), err) + q
        self._append(k, e, err, act, tail, total)
        return reads

    def _append(self, k: Tensor, e: Tensor, err: Tensor, act: Tensor, tail: Tensor, total: Tensor) -> None:
        if self.total is None:
            self.total, self.tails, self.keys, self.e, self.err, self.act = total, tail, k, e, err, act
            return
        self.total = self.total * total
        self.tails = torch.cat([self.tails * total[:, None], tail], dim=-1)
        self.keys = torch.cat([self.keys, k], dim=1)
        self.e, self.err, self.act = (torch.cat(pair, dim=-2) for pair in
                                      ((self.e, e), (self.err, err), (self.act, act)))

    def state(self) -> MLPMemory:
        """The per-sample weights `(b, m, d, h), (b, m, h, d)` (materialised: only for carrying them on)."""
        w1, w2 = (w.expand(self.batch, *w.shape) for w in (self.w1_0, self.w2_0))
        if self.total is None:
            return MLPMemory(w1, w2)
        c, A = self.tails[:, :, None], self.total[:, None, None, None]
        return MLPMemory(*(A * w - ((right * c).transpose(-1, -2) @ left).transpose(0, 1)
                           for w, left, right in ((w1, self.act, self.err), (w2, self.keys, self.e))))
