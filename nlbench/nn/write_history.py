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
tokens, d width, h hidden width. Keys and gates broadcast over m: `k (b, 1, C, d)`, `eta, alpha (b, 1, C)`.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

from nlbench.nn.memory import MLPMemory, silu_grad


def within_chunk_decay(eta: Tensor, alpha: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """For the C writes of a chunk: `G[i, j] = eta_j prod_{r=j+1..i-1} alpha_r` (j < i, else 0), the weight of
    write j in the state token i reads (after i-1 writes); `a[i] = prod_{r<i} alpha_r`, the decay of the
    boundary state by then; and `tail[j] = eta_j prod_{r>j} alpha_r`, write j's weight at the chunk's end.
    Products by a masked cumprod, so no division by a small alpha."""
    C = alpha.shape[-1]
    idx = torch.arange(C, device=alpha.device)
    later = idx[None, :] > idx[:, None]  # [j, r]: r > j
    prods = torch.where(later, alpha[..., None, :], torch.ones_like(alpha)[..., None, :]).cumprod(-1)
    # prods[j, r] = prod_{r'=j+1..r} alpha_r' for r >= j
    before = torch.cat([torch.ones_like(prods[..., :1]), prods[..., :-1]], dim=-1)  # [j, i] -> prod_{j+1..i-1}
    G = (before.transpose(-1, -2) * eta[..., None, :]).tril(-1)
    a = torch.cat([torch.ones_like(alpha[..., :1]), alpha[..., :-1].cumprod(-1)], dim=-1)  # exclusive cumprod
    tail = eta * prods[..., :, -1]
    return G, a, tail


def shared_matmul(x: Tensor, w: Tensor) -> Tensor:
    """x w for weights shared by the batch: `(b, m|1, n, i), (m, i, o) -> (b, m, n, o)` as one (batched)
    matrix product, never broadcasting `w` over the batch (which copies it once per sample)."""
    b, mx, n, i = x.shape
    m, _, o = w.shape
    if mx == 1:  # one input for all m memories: (b n, i) @ (i, m o)
        y = x.reshape(b * n, i) @ w.permute(1, 0, 2).reshape(i, m * o)
        return y.reshape(b, n, m, o).transpose(1, 2)
    y = x.transpose(0, 1).reshape(m, b * n, i) @ w
    return y.reshape(m, b, n, o).transpose(0, 1)


def unit_lower_solve(L: Tensor, rhs: Tensor) -> Tensor:
    """(I + L)^-1 rhs for a strictly lower-triangular C x C `L`: L is nilpotent, so the inverse is the finite
    product (I - L)(I + L^2)(I + L^4)... (log2 C factors). A few tiny matmuls, cheaper forward and backward
    than a triangular solve for the chunk sizes used (2-8)."""
    inverse_times = rhs
    power, span = -L, 1
    while True:
        inverse_times = inverse_times + power @ inverse_times
        span *= 2
        if span >= L.shape[-1]:
            return inverse_times
        power = power @ power


class WriteHistory:
    """The state of m stacked residual MLP memories of a batch after the writes so far (see the module doc)."""

    def __init__(self, initial: MLPMemory, batch: int):
        self.w1_0, self.w2_0 = initial  # (m, d, h), (m, h, d): shared by every sample
        self.batch = batch
        self.decay: Tensor | None = None  # A_p, (b, 1)
        self.keys: Tensor | None = None  # (b, 1, p, d)
        self.coef: Tensor | None = None  # c_s, (b, 1, p)
        self.e: Tensor | None = None  # (b, m, p, h)
        self.err: Tensor | None = None  # (b, m, p, d)
        self.act: Tensor | None = None  # (b, m, p, h)

    def _apply(self, x: Tensor, w0: Tensor, left: Tensor | None, right: Tensor | None) -> Tensor:
        """x -> W_p x for a weight `A W_0 - sum_s c_s right_s left_s^T` (x is `(b, m|1, C, in)`)."""
        y = shared_matmul(x, w0.transpose(-1, -2))
        if self.decay is None:
            return y
        scores = (x @ left.transpose(-1, -2)) * self.coef[..., None, :]
        return self.decay[..., None, None] * y - scores @ right

    def w2(self, x: Tensor) -> Tensor:
        return self._apply(x, self.w2_0, self.keys, self.e)

    def w1(self, hidden: Tensor) -> Tensor:
        return self._apply(hidden, self.w1_0, self.act, self.err)

    def w1_transposed(self, r: Tensor) -> Tensor:
        return self._apply(r, self.w1_0.transpose(-1, -2), self.err, self.act)

    def read(self, x: Tensor) -> Tensor:
        """M(x) = x + W1 silu(W2 x) at the current state (Eq. 89)."""
        return x + self.w1(F.silu(self.w2(x)))

    def write(self, k: Tensor, target: Tensor, eta: Tensor, alpha: Tensor, q: Tensor | None = None,
              read_target: bool = False) -> Tensor | None:
        """One chunk: C writes of Eq. 88 whose L2 gradients are all taken at the current (boundary) state
        (Eqs. 90-93), towards `target`, or towards M(target) at that state with `read_target` (Eq. 86). With
        `q`, also return the reads `M_{t-1}(q_t)` before each write (Eq. 83). The boundary state is applied
        to k, the target and q in one product each (fewer, larger ops: the chunks are small)."""
        C = k.shape[-2]
        inputs = [k] + ([target] if read_target else []) + ([q] if q is not None else [])
        z, *rest = self.w2(torch.cat(inputs, dim=-2) if len(inputs) > 1 else k).split(C, dim=-2)
        act = F.silu(z)  # the gradient factors of 1/2 ||M(k) - target||^2 at the boundary state
        if read_target:
            w1_act, w1_target = self.w1(torch.cat([act, F.silu(rest.pop(0))], dim=-2)).split(C, dim=-2)
            err = k + w1_act - target - w1_target
        else:
            err = k + self.w1(act) - target
        back = self.w1_transposed(err) * silu_grad(z)
        G, a, tail = within_chunk_decay(eta, alpha)
        # e_i = W2_{i-1} k_i + back_i = a_i z_i - sum_{j<i} G_ij (k_j . k_i) e_j + back_i: (I + L) E = R.
        L = G * (k @ k.transpose(-1, -2))
        e = unit_lower_solve(L, a[..., None] * z + back)
        reads = None
        if q is not None:  # y_i = M_{i-1}(q_i), the boundary state's read decayed by a_i plus the chunk's writes
            hq = F.silu(a[..., None] * rest[0] - (G * (q @ k.transpose(-1, -2))) @ e)
            reads = q + a[..., None] * self.w1(hq) - (G * (hq @ act.transpose(-1, -2))) @ err
        self._append(k, e, err, act, tail, alpha.prod(-1))
        return reads

    def _append(self, k: Tensor, e: Tensor, err: Tensor, act: Tensor, tail: Tensor, total: Tensor) -> None:
        if self.decay is None:
            self.decay, self.coef = total, tail
            self.keys, self.e, self.err, self.act = k.expand(self.batch, -1, -1, -1), e, err, act
            return
        self.decay = self.decay * total
        self.coef = torch.cat([self.coef * total[..., None], tail], dim=-1)
        self.keys = torch.cat([self.keys, k.expand(self.batch, -1, -1, -1)], dim=-2)
        self.e, self.err, self.act = (torch.cat(pair, dim=-2) for pair in
                                      ((self.e, e), (self.err, err), (self.act, act)))

    def state(self) -> MLPMemory:
        """The per-sample weights `(b, m, d, h), (b, m, h, d)` (materialised: only for carrying them on)."""
        w1, w2 = (w.expand(self.batch, *w.shape) for w in (self.w1_0, self.w2_0))
        if self.decay is None:
            return MLPMemory(w1, w2)
        c, A = self.coef[..., None], self.decay[..., None, None]
        return MLPMemory(A * w1 - (self.err * c).transpose(-1, -2) @ self.act,
                         A * w2 - (self.e * c).transpose(-1, -2) @ self.keys)
