"""One chunk of a residual MLP memory (Eq. 89) learning by DGD with retention (Eq. 88), fused into numba CPU
kernels: forward and a hand-written backward, `parallel` over the batch's samples x stacked memories.

Why: in PyTorch a chunk is a few hundred small ops (5-15 us each on CPU), for some 10 k multiply-adds per
sample and memory. Here each sample's memory is one loop nest over its own `(d, h)` weights.

The chunk, per sample and memory, with weights `W1 (d, h)`, `W2 (h, d)` at the chunk's boundary state
(`nlbench.kernels.reference.mlp_memory_chunk_reference` writes the same in PyTorch ops):

    the L2 gradient factors at the boundary (Eqs. 90-93), for every token t of the chunk:
        z_t = W2 k_t,  act_t = silu(z_t),  err_t = k_t + W1 act_t - target_t,  back_t = (W1^T err_t) * silu'(z_t)
        with `read_target`, target_t is M(target_t) = target_t + W1 silu(W2 target_t) (Eq. 86)
    then token by token (Eq. 88, `memory.mlp_memory_dgd_step_factored`), reading y_t = M_{t-1}(q_t) first (Eq. 83):
        W2 <- alpha_t W2 - eta_t (W2 k_t + back_t) k_t^T,      W1 <- alpha_t W1 - eta_t err_t act_t^T

The backward walks the writes in reverse with G1, G2 = dL/dW1, dL/dW2 after write t (s_t = W2 k_t + back_t):

    d alpha_t = <G1, W1> + <G2, W2>          d eta_t = -s_t . (G2 k_t) - err_t . (G1 act_t)
    g_t = -eta_t G2 k_t                      d back_t = g_t,  d err_t = -eta_t G1 act_t,  d act_t = -eta_t G1^T err_t
    dk_t = -eta_t G2^T s_t + W2^T g_t        before write t: G2 <- alpha_t G2 + g_t k_t^T,  G1 <- alpha_t G1
    a read y_t = q_t + W1 silu(W2 q_t) adds dy_t silu(W2 q_t)^T to G1 and (W1^T dy_t * silu'(W2 q_t)) q_t^T to G2,

and then through the boundary factors, which needs silu''(z) = s (1 - s) (2 + z (1 - 2 s)), s = sigmoid(z).
`torch.autograd.gradcheck` on float64 holds this to the PyTorch reference (tests/test_mlp_memory_kernel.py).
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from numba import njit, prange

from nlbench.kernels.dispatch import fused_chunk

_FAST = {"reassoc", "contract"}  # vectorised reductions; no assumptions about NaN or inf (a NaN must show)


@njit(cache=True, fastmath=_FAST)
def _matvec(A, x, out):  # pragma: no cover - compiled; out = A x
    for i in range(A.shape[0]):
        acc = A[i, 0] * x[0]  # (not 0.0: a float64 accumulator would not vectorise with float32 weights)
        for j in range(1, A.shape[1]):
            acc += A[i, j] * x[j]
        out[i] = acc


@njit(cache=True, fastmath=_FAST)
def _matvec_t(A, x, out):  # pragma: no cover - compiled; out = A^T x
    out[:] = 0.0
    for i in range(A.shape[0]):
        xi = x[i]
        for j in range(A.shape[1]):
            out[j] += A[i, j] * xi


@njit(cache=True, fastmath=_FAST)
def _add_outer(A, scale, u, v):  # pragma: no cover - compiled; A <- scale A + u v^T
    for i in range(A.shape[0]):
        ui = u[i]
        for j in range(A.shape[1]):
            A[i, j] = scale * A[i, j] + ui * v[j]


@njit(cache=True)
def _sigmoid(z):  # pragma: no cover - compiled
    return 1.0 / (1.0 + np.exp(-z))


@njit(cache=True, fastmath=_FAST)
def _boundary_factors(w1, w2, k, target, read_target, z, act, err, back, p):  # pragma: no cover - compiled
    """z, act, err, back of every token of the chunk at the boundary weights; p holds W1^T err."""
    C, h = z.shape
    zt, ht = np.empty(h, dtype=w1.dtype), np.empty(h, dtype=w1.dtype)
    goal = np.empty(k.shape[1], dtype=w1.dtype)
    for t in range(C):
        if read_target:  # the target is the memory's own read of it (Eq. 86)
            _read(w1, w2, target[t], zt, ht, goal)
        else:
            goal[:] = target[t]
        _read(w1, w2, k[t], z[t], act[t], err[t])  # err = M(k) - goal, with z = W2 k and act = silu(z)
        for i in range(err.shape[1]):
            err[t, i] -= goal[i]
        _matvec_t(w1, err[t], p[t])
        for j in range(h):
            s = _sigmoid(z[t, j])
            back[t, j] = p[t, j] * s * (1.0 + z[t, j] * (1.0 - s))


@njit(cache=True, fastmath=_FAST)
def _read(w1, w2, x, zq, hq, out):  # pragma: no cover - compiled; out = x + W1 silu(W2 x), keeping W2 x, silu
    _matvec(w2, x, zq)
    for j in range(zq.shape[0]):
        hq[j] = zq[j] * _sigmoid(zq[j])
    _matvec(w1, hq, out)
    for i in range(out.shape[0]):
        out[i] += x[i]


@njit(cache=True, fastmath=_FAST)
def _read_backward(w1, w2, x, dy, G1, G2, dx, zq, dz):  # pragma: no cover - compiled
    """Through y = x + W1 silu(W2 x): G1 += dy silu(W2 x)^T, G2 += dz x^T, dx = dy + W2^T dz (zq, dz: scratch)."""
    _matvec(w2, x, zq)
    _matvec_t(w1, dy, dz)
    for j in range(zq.shape[0]):
        sg = _sigmoid(zq[j])
        dz[j] = dz[j] * sg * (1.0 + zq[j] * (1.0 - sg))
        zq[j] = zq[j] * sg
    _add_outer(G1, 1.0, dy, zq)
    _add_outer(G2, 1.0, dz, x)
    _matvec_t(w2, dz, dx)
    for i in range(dx.shape[0]):
        dx[i] += dy[i]


@njit(parallel=True, cache=True, fastmath=_FAST)
def _forward(W1, W2, k, target, eta, alpha, q, x_next, read_target, has_q, save, W1o, W2o, y, y_next,
             S1, S2, Z, ACT, ERR, BACK, P):  # pragma: no cover - compiled
    B, M, d, h = W1.shape
    C = k.shape[1]
    for bm in prange(B * M):
        b, m = bm // M, bm % M
        if save:  # the boundary factors and the state before each write, for the backward
            z, act, err, back, p = Z[b, m], ACT[b, m], ERR[b, m], BACK[b, m], P[b, m]
        else:
            z = np.empty((C, h), dtype=W1.dtype)
            act, back, p = np.empty_like(z), np.empty_like(z), np.empty_like(z)
            err = np.empty((C, d), dtype=W1.dtype)
        _boundary_factors(W1[b, m], W2[b, m], k[b], target[b], read_target, z, act, err, back, p)
        w1, w2 = W1o[b, m], W2o[b, m]
        w1[:] = W1[b, m]
        w2[:] = W2[b, m]
        s = np.empty(h, dtype=W1.dtype)
        hq = np.empty(h, dtype=W1.dtype)
        scaled = np.empty(d, dtype=W1.dtype)
        for t in range(C):
            if save and t > 0:
                S1[b, m, t] = w1
                S2[b, m, t] = w2
            if has_q:
                _read(w1, w2, q[b, t], s, hq, y[b, m, t])
            a, e = alpha[b, t], eta[b, t]
            _matvec(w2, k[b, t], s)
            for j in range(h):
                s[j] = -e * (s[j] + back[t, j])
            _add_outer(w2, a, s, k[b, t])
            for i in range(d):
                scaled[i] = -e * err[t, i]
            _add_outer(w1, a, scaled, act[t])
        for n in range(x_next.shape[1]):  # reads after the chunk: the next chunk's, at the state it starts from
            _read(w1, w2, x_next[b, n], s, hq, y_next[b, m, n])


@njit(parallel=True, cache=True, fastmath=_FAST)
def _backward(W1, W2, k, target, eta, alpha, q, x_next, read_target, has_q, S1, S2, Z, ACT, ERR, BACK, P,
              W1o, W2o, dW1o, dW2o, dy, dy_next, dW1, dW2, dk, dtarget, dq, dx_next, deta,
              dalpha):  # pragma: no cover - compiled
    B, M, d, h = W1.shape
    C = k.shape[1]
    for bm in prange(B * M):
        b, m = bm // M, bm % M
        w1, w2 = W1[b, m], W2[b, m]
        z, act, err, back, p = Z[b, m], ACT[b, m], ERR[b, m], BACK[b, m], P[b, m]
        G1, G2 = dW1[b, m], dW2[b, m]
        G1[:] = dW1o[b, m]
        G2[:] = dW2o[b, m]
        d_err = np.zeros((C, d), dtype=W1.dtype)
        d_act, d_back = np.zeros((C, h), dtype=W1.dtype), np.zeros((C, h), dtype=W1.dtype)
        dk_ = dk[b, m]
        s, gk = np.empty(h, dtype=W1.dtype), np.empty(h, dtype=W1.dtype)
        g, tmp_h = np.empty(h, dtype=W1.dtype), np.empty(h, dtype=W1.dtype)
        g1a, tmp_d = np.empty(d, dtype=W1.dtype), np.empty(d, dtype=W1.dtype)
        for n in range(x_next.shape[1]):
            _read_backward(W1o[b, m], W2o[b, m], x_next[b, n], dy_next[b, m, n], G1, G2, dx_next[b, m, n], s, g)
        for t in range(C - 1, -1, -1):
            c1, c2, kt = (w1, w2, k[b, t]) if t == 0 else (S1[b, m, t], S2[b, m, t], k[b, t])
            a, e = alpha[b, t], eta[b, t]
            _matvec(c2, kt, s)
            for j in range(h):
                s[j] += back[t, j]
            _matvec(G2, kt, gk)
            _matvec(G1, act[t], g1a)
            da, de = 0.0, 0.0
            for i in range(d):
                for j in range(h):
                    da += G1[i, j] * c1[i, j]
            for j in range(h):
                for i in range(d):
                    da += G2[j, i] * c2[j, i]
            for j in range(h):
                de -= s[j] * gk[j]
                g[j] = -e * gk[j]
                d_back[t, j] += g[j]
            for i in range(d):
                de -= err[t, i] * g1a[i]
                d_err[t, i] -= e * g1a[i]
            dalpha[b, m, t], deta[b, m, t] = da, de
            _matvec_t(G1, err[t], tmp_h)
            for j in range(h):
                d_act[t, j] -= e * tmp_h[j]
            _matvec_t(G2, s, dk_[t])
            _matvec_t(c2, g, tmp_d)
            for i in range(d):
                dk_[t, i] = -e * dk_[t, i] + tmp_d[i]
            _add_outer(G2, a, g, kt)
            for i in range(d):
                for j in range(h):
                    G1[i, j] *= a
            if has_q:  # y_t = q_t + c1 silu(c2 q_t), read before write t
                _read_backward(c1, c2, q[b, t], dy[b, m, t], G1, G2, dq[b, m, t], s, g)
        dz = np.empty(h, dtype=W1.dtype)
        for t in range(C):  # through the gradient factors taken at the boundary state
            for j in range(h):
                sg = _sigmoid(z[t, j])
                d1 = sg * (1.0 + z[t, j] * (1.0 - sg))
                d2 = sg * (1.0 - sg) * (2.0 + z[t, j] * (1.0 - 2.0 * sg))
                tmp_h[j] = d_back[t, j] * d1  # d p
                dz[j] = d_back[t, j] * p[t, j] * d2 + d_act[t, j] * d1
            _matvec(w1, tmp_h, tmp_d)
            for i in range(d):
                d_err[t, i] += tmp_d[i]
            _add_outer(G1, 1.0, err[t], tmp_h)
            _add_outer(G1, 1.0, d_err[t], act[t])  # err = k + W1 act - target
            _matvec_t(w1, d_err[t], tmp_h)
            for j in range(h):
                sg = _sigmoid(z[t, j])
                dz[j] += tmp_h[j] * sg * (1.0 + z[t, j] * (1.0 - sg))
            _add_outer(G2, 1.0, dz, k[b, t])
            _matvec_t(w2, dz, tmp_d)
            for i in range(d):
                dk_[t, i] += d_err[t, i] + tmp_d[i]
                tmp_d[i] = -d_err[t, i]
            if read_target:  # target_hat = target + W1 silu(W2 target)
                _read_backward(w1, w2, target[b, t], tmp_d, G1, G2, dtarget[b, m, t], s, g)
            else:
                dtarget[b, m, t] = tmp_d


def _np(x: torch.Tensor) -> np.ndarray:
    return x.detach().contiguous().numpy()


def _empty(*shape: int, like: np.ndarray) -> np.ndarray:
    return np.empty(shape, dtype=like.dtype)


class NumbaMLPMemoryChunk(torch.autograd.Function):
    """`mlp_memory_chunk_reference` with numba forward and backward, for CPU tensors."""

    @staticmethod
    def forward(ctx, w1, w2, k, target, eta, alpha, q, x_next, read_target):  # noqa: ANN001, ANN205
        arrays = [_np(t) for t in (w1, w2, k, target, eta, alpha)]
        B, M, d, h = arrays[0].shape
        C, like = arrays[2].shape[1], arrays[0]
        save = any(ctx.needs_input_grad)  # the states before each write and the boundary factors, for the backward
        n = (B, M, C) if save else (1, 1, 1)
        saved = [_empty(*n, d, h, like=like), _empty(*n, h, d, like=like), _empty(*n, h, like=like),
                 _empty(*n, h, like=like), _empty(*n, d, like=like), _empty(*n, h, like=like), _empty(*n, h, like=like)]
        W1o, W2o = _empty(B, M, d, h, like=like), _empty(B, M, h, d, like=like)
        q_, x_next_ = (_np(q) if q is not None else _empty(B, 0, d, like=like),
                       _np(x_next) if x_next is not None else _empty(B, 0, d, like=like))
        y, y_next = _empty(B, M, q_.shape[1], d, like=like), _empty(B, M, x_next_.shape[1], d, like=like)
        _forward(*arrays, q_, x_next_, read_target, q is not None, save, W1o, W2o, y, y_next, *saved)
        ctx.arrays, ctx.saved, ctx.read_target = (*arrays, q_, x_next_), saved, read_target
        ctx.final = W1o, W2o
        return torch.from_numpy(W1o), torch.from_numpy(W2o), torch.from_numpy(y), torch.from_numpy(y_next)

    @staticmethod
    def backward(ctx, dW1o, dW2o, dy, dy_next):  # noqa: ANN001, ANN205
        w1, _, k, *_, q, x_next = ctx.arrays
        B, M, d, h = w1.shape
        C = k.shape[1]

        def given(grad: torch.Tensor | None, *shape: int) -> np.ndarray:
            return np.zeros(shape, dtype=w1.dtype) if grad is None else _np(grad)

        grads_out = (given(dW1o, B, M, d, h), given(dW2o, B, M, h, d), given(dy, B, M, q.shape[1], d),
                     given(dy_next, B, M, x_next.shape[1], d))
        dW1, dW2 = _empty(B, M, d, h, like=w1), _empty(B, M, h, d, like=w1)
        dk, dtarget = _empty(B, M, C, d, like=w1), _empty(B, M, C, d, like=w1)
        dq, dx_next = _empty(B, M, q.shape[1], d, like=w1), _empty(B, M, x_next.shape[1], d, like=w1)
        deta, dalpha = _empty(B, M, C, like=w1), _empty(B, M, C, like=w1)
        _backward(*ctx.arrays, ctx.read_target, q.shape[1] > 0, *ctx.saved, *ctx.final, *grads_out,
                  dW1, dW2, dk, dtarget, dq, dx_next, deta, dalpha)
        # k, target, eta, alpha, q, x_next are shared by the M memories
        shared = [torch.from_numpy(g).sum(1) for g in (dk, dtarget, deta, dalpha, dq, dx_next)]
        dq_, dx_ = (g if ctx.needs_input_grad[i] else None for g, i in ((shared[4], 6), (shared[5], 7)))
        return (torch.from_numpy(dW1), torch.from_numpy(dW2), *shared[:4], dq_, dx_, None)


mlp_memory_chunk_numba = functools.partial(fused_chunk, NumbaMLPMemoryChunk)
