"""Associative memories and their learning rules, as pure functions on tensors.

Axis key (titans-pytorch style): `...` any batch axes, `i` key/input width, `o` value/output width,
`h` hidden width of a deep memory, `n` tokens. A matrix memory `M` has shape `(..., o, i)` and reads
`M k`; keys `k` are `(..., i)`, values `v` are `(..., o)`, step sizes `eta` and retention `alpha` are
`(...)` (one per memory) or plain floats.

References are to Behrouz et al., "Nested Learning", arXiv:2512.24695v1 (see
`shared/reference/nested_learning.md`).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor
from torch.nn import functional as F


def _scalar(x: Tensor | float) -> Tensor | float:
    """Broadcast a per-memory scalar `(...)` against a matrix `(..., o, i)`."""
    return x[..., None, None] if isinstance(x, Tensor) else x


def outer(v: Tensor, k: Tensor) -> Tensor:
    """v k^T over the batch axes: `(..., o), (..., i) -> (..., o, i)`."""
    return v.unsqueeze(-1) * k.unsqueeze(-2)


def read(M: Tensor, k: Tensor) -> Tensor:
    """y = M k."""
    return (M @ k.unsqueeze(-1)).squeeze(-1)


def hebbian_update(M: Tensor, k: Tensor, v: Tensor, eta: Tensor | float) -> Tensor:
    """Hebbian write: M + eta v k^T (GD on the dot-product loss -<M k, v>; never erases)."""
    return M + _scalar(eta) * outer(v, k)


def delta_update(M: Tensor, k: Tensor, v: Tensor, eta: Tensor | float) -> Tensor:
    """Delta rule: M - eta (M k - v) k^T = M (I - eta k k^T) + eta v k^T.

    GD on 1/2 ||M k - v||^2: it erases what M currently returns for k and writes v in its place.
    """
    return M - _scalar(eta) * outer(read(M, k) - v, k)


def oja_update(M: Tensor, k: Tensor, eta: Tensor | float) -> Tensor:
    """Oja's (subspace) rule: y = M k; M + eta (y k^T - y y^T M).

    Hebbian growth with a normalising decay, so the rows of M converge to an orthonormal basis
    of the keys' principal subspace instead of growing without bound.
    """
    y = read(M, k)
    return M + _scalar(eta) * (outer(y, k) - outer(y, y) @ M)


def dgd_update(M: Tensor, k: Tensor, grad: Tensor, eta: Tensor | float,
               alpha: Tensor | float = 1.0) -> Tensor:
    """Delta gradient descent with retention (Eq. 88; Eq. 57 with alpha = 1):

        M <- M (alpha I - eta k k^T) - eta grad

    The first term decays the old weights by alpha everywhere and additionally by eta along the current
    input direction k (a data-dependent decay); `grad` is the gradient of the inner loss at M.
    """
    eta_, alpha_ = _scalar(eta), _scalar(alpha)
    return alpha_ * M - eta_ * outer(read(M, k), k) - eta_ * grad


def dgd_l2_update(M: Tensor, k: Tensor, v: Tensor, eta: Tensor | float, alpha: Tensor | float = 1.0,
                  at: Tensor | None = None) -> Tensor:
    """Eq. 93, DGD on the L2 loss 1/2 ||M k - v||^2 of a linear memory, with the gradient taken at the
    state `at` (the chunk-boundary state in chunk-wise training; `M` itself when None)."""
    grad = outer(read(M if at is None else at, k) - v, k)
    return dgd_update(M, k, grad, eta, alpha)


def dgd_effective_lr(eta: Tensor | float, key_norm: float = 1.0) -> Tensor | float:
    """Eq. 57's eta': the exact argmin of 1/2||W x - u||^2 + 1/(2 eta)||W - W_t||^2 for ||x|| = key_norm
    is W_t (I - eta' x x^T) + eta' u x^T with eta' = eta / (1 + eta key_norm^2); the paper prints the
    key_norm = 1 case, eta / (1 + eta)."""
    return eta / (1 + eta * key_norm**2)


def softmax_memory(q: Tensor, keys: Tensor, values: Tensor, temperature: float = 1.0) -> Tensor:
    """Non-parametric (Nadaraya-Watson) memory: softmax(q K^T / temperature) V.

    `q (..., i)`, `keys (..., n, i)`, `values (..., n, o)` -> `(..., o)`: the kernel-weighted average of
    the stored values, i.e. the argmin of sum_j w_j ||v - v_j||^2 with softmax weights (softmax attention).
    """
    scores = (keys @ q.unsqueeze(-1)).squeeze(-1) / temperature
    return (scores.softmax(dim=-1).unsqueeze(-2) @ values).squeeze(-2)


# Deep memory: the residual 2-layer MLP of Eq. 89, M(x) = x + W1 s(W2 x), s = SiLU.

class MLPMemory(NamedTuple):
    """Weights of a residual MLP memory: `w1 (..., d, h)` output side, `w2 (..., h, d)` input side."""

    w1: Tensor
    w2: Tensor


def mlp_memory_read(mem: MLPMemory, x: Tensor) -> Tensor:
    """M(x) = x + W1 silu(W2 x) for tokens `x (..., n, d)` and per-sample weights `(..., d, h), (..., h, d)`."""
    z = x @ mem.w2.transpose(-1, -2)
    return x + F.silu(z) @ mem.w1.transpose(-1, -2)


def silu_grad(z: Tensor) -> Tensor:
    """d silu(z) / dz."""
    s = torch.sigmoid(z)
    return s * (1 + z * (1 - s))


class GradFactors(NamedTuple):
    """Per-token gradients of the L2 loss of a residual MLP memory, kept as rank-1 factors:
    dL/dW1 = err act^T and dL/dW2 = back k^T, with `err (..., n, d)`, `act, back (..., n, h)`."""

    err: Tensor
    act: Tensor
    back: Tensor


def mlp_memory_l2_grad_factors(mem: MLPMemory, k: Tensor, v: Tensor) -> GradFactors:
    """Factors of the per-token gradients of L = 1/2 ||M(k_t) - v_t||^2, all at the same weights `mem`.

    Written out (not autograd) so a whole chunk is one batched op and the result stays differentiable for
    meta-learning the initial state. The factor 1/2 matches the recurrence of Eq. 93 (the 2 of ||.||^2 is
    absorbed in eta).
    """
    z = k @ mem.w2.transpose(-1, -2)                       # (..., n, h)
    act = F.silu(z)
    err = k + act @ mem.w1.transpose(-1, -2) - v            # (..., n, d)
    back = (err @ mem.w1) * silu_grad(z)                   # (..., n, h)
    return GradFactors(err, act, back)


def mlp_memory_l2_grads(mem: MLPMemory, k: Tensor, v: Tensor) -> MLPMemory:
    """The same gradients materialised: `w1 (..., n, d, h)`, `w2 (..., n, h, d)`."""
    f = mlp_memory_l2_grad_factors(mem, k, v)
    return MLPMemory(outer(f.err, f.act), outer(f.back, k))


def mlp_memory_dgd_step(mem: MLPMemory, k: Tensor, grads: MLPMemory, eta: Tensor, alpha: Tensor) -> MLPMemory:
    """One DGD step with retention (Eq. 88) on a residual MLP memory, for one token per sample.

    Choice (the paper leaves it open): the data-dependent decay (alpha I - eta k k^T) right-multiplies
    the input-side weight W2, the only one that acts on k; the output-side W1 gets the retention alpha
    only. `k (..., d)`, grads `(..., d, h), (..., h, d)`, `eta, alpha (...)`.
    """
    w2 = dgd_update(mem.w2, k, grads.w2, eta, alpha)
    w1 = _scalar(alpha) * mem.w1 - _scalar(eta) * grads.w1
    return MLPMemory(w1, w2)


def mlp_memory_dgd_step_factored(mem: MLPMemory, k: Tensor, grads: GradFactors, eta: Tensor,
                                 alpha: Tensor) -> MLPMemory:
    """`mlp_memory_dgd_step` with the gradients as rank-1 factors of one token (`err (..., d)`,
    `act, back (..., h)`): W2 <- alpha W2 - eta (W2 k + back) k^T, W1 <- alpha W1 - eta err act^T.
    Same result, two outer products per token instead of a materialised gradient per token."""
    a, e = _scalar(alpha), _scalar(eta)
    w2 = a * mem.w2 - e * outer(read(mem.w2, k) + grads.back, k)
    w1 = a * mem.w1 - e * outer(grads.err, grads.act)
    return MLPMemory(w1, w2)


def dgd_over_chunk(state: MLPMemory, k: Tensor, grads: GradFactors, eta: Tensor, alpha: Tensor,
                   q: Tensor | None = None) -> tuple[MLPMemory, Tensor | None]:
    """Apply Eq. 88 token by token over one chunk whose gradients were all taken at the chunk-boundary
    state (Eqs. 90-93); optionally read `y_t = M_{t-1}(q_t)` before each write (Eq. 83).

    Tokens are axis -2 of `k, q` and of the gradient factors, axis -1 of `eta, alpha (..., n)`.
    """
    reads = []
    for t in range(k.shape[-2]):
        if q is not None:
            reads.append(mlp_memory_read(state, q[..., t:t + 1, :]))
        grad_t = GradFactors(*(g[..., t, :] for g in grads))
        state = mlp_memory_dgd_step_factored(state, k[..., t, :], grad_t, eta[..., t], alpha[..., t])
    return state, (torch.cat(reads, dim=-2) if q is not None else None)


def mlp_memory_chunk(mem: MLPMemory, k: Tensor, target: Tensor, eta: Tensor, alpha: Tensor, q: Tensor | None = None,
                     read_target: bool = False) -> tuple[MLPMemory, Tensor | None]:
    """One chunk of writes (Eqs. 88-93): the L2 gradients of every token taken at the boundary state `mem`,
    towards `target`, or towards the memory's own read M(target) with `read_target` (Eq. 86), then applied
    token by token, reading `q` before each write (Eq. 83). The materialised path; the numba kernel of
    `nlbench.kernels.numba_mlp_memory` computes the same."""
    if read_target:
        target = mlp_memory_read(mem, target)
    return dgd_over_chunk(mem, k, mlp_memory_l2_grad_factors(mem, k, target), eta, alpha, q)
