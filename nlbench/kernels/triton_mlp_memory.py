"""One chunk of a residual MLP memory (Eqs. 86-93) as Triton kernels: one program per (sample, stacked memory),
its weights in registers.

The math is the numba kernel's (`numba_mlp_memory.py`, whose docstring gives the backward's equations); the
layout differs where a GPU wants it to:
- the forward keeps the boundary weights in registers beside the running ones and takes each token's gradient
  factors at the boundary (Eqs. 90-93) just before its write (Eq. 88), so nothing it stores is read back by
  the same program; it stores the state before each write for the backward;
- the backward recomputes the boundary factors instead of storing them, and takes each token's path through
  them as soon as the reverse walk over the writes has reached it, into separate accumulators (the boundary
  weights' gradient), so it too only reads what the forward stored.
Math in float32. Dimensions are padded to powers of two with masks. On a machine without a GPU,
`TRITON_INTERPRET=1` runs the same kernels on CPU tensors: that is how tests/test_mlp_memory_kernel.py checks them
against `kernels.reference.mlp_memory_chunk_reference`.
"""

from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

from nlbench.kernels.dispatch import fused_chunk


@triton.jit
def _silu_parts(z):
    """silu(z), silu'(z) and silu''(z) = s (1 - s) (2 + z (1 - 2 s)), s = sigmoid(z)."""
    s = tl.sigmoid(z)
    return z * s, s * (1.0 + z * (1.0 - s)), s * (1.0 - s) * (2.0 + z * (1.0 - 2.0 * s))


@triton.jit
def _read(w1, w2, x):
    """x + W1 silu(W2 x) (Eq. 89), with z = W2 x; w1 (BD, BH), w2 (BH, BD), x (BD,)."""
    z = tl.sum(w2 * x[None, :], axis=1)
    act, _, _ = _silu_parts(z)
    return x + tl.sum(w1 * act[None, :], axis=1), z, act


@triton.jit
def _read_backward(w1, w2, x, dy):
    """Through y = x + W1 silu(W2 x): the additions to dW1, dW2 and dx."""
    z = tl.sum(w2 * x[None, :], axis=1)
    act, d1, _ = _silu_parts(z)
    dz = tl.sum(w1 * dy[:, None], axis=0) * d1
    return dy[:, None] * act[None, :], dz[:, None] * x[None, :], dy + tl.sum(w2 * dz[:, None], axis=0)


@triton.jit
def _read_backward_at(w1, w2, x, dy, dx, i_d, m_d):
    """`_read_backward` of the D-vectors at pointers `x`, `dy`; stores dx, returns the additions to dW1, dW2."""
    xv = tl.load(x + i_d, mask=m_d, other=0.0).to(tl.float32)
    g1, g2, dxv = _read_backward(w1, w2, xv, tl.load(dy + i_d, mask=m_d, other=0.0).to(tl.float32))
    tl.store(dx + i_d, dxv, mask=m_d)
    return g1, g2


@triton.jit
def _factors(w1, w2, kt, goal):
    """The L2 gradient factors of one token at the boundary weights (Eqs. 90-93): z = W2 k, act = silu(z),
    err = k + W1 act - goal, p = W1^T err, back = p silu'(z); also silu'(z), silu''(z)."""
    z = tl.sum(w2 * kt[None, :], axis=1)
    act, d1, d2 = _silu_parts(z)
    err = kt + tl.sum(w1 * act[None, :], axis=1) - goal
    p = tl.sum(w1 * err[:, None], axis=0)
    return z, act, err, p, p * d1, d1, d2


@triton.jit
def _program(W1, W2, bm, D, H, BD: tl.constexpr, BH: tl.constexpr):
    """Program `bm`'s layout (the D-vector index and mask, W1 (D, H) and W2 (H, D) offsets and masks) and its
    boundary weights."""
    i_d, i_h = tl.arange(0, BD), tl.arange(0, BH)
    m_d, m_h = i_d < D, i_h < H
    off1, off2 = i_d[:, None] * H + i_h[None, :], i_h[:, None] * D + i_d[None, :]
    mask1, mask2 = m_d[:, None] & m_h[None, :], m_h[:, None] & m_d[None, :]
    w1 = tl.load(W1 + bm * D * H + off1, mask=mask1, other=0.0).to(tl.float32)
    w2 = tl.load(W2 + bm * D * H + off2, mask=mask2, other=0.0).to(tl.float32)
    return i_d, m_d, off1, off2, mask1, mask2, w1, w2


@triton.jit
def _forward(W1, W2, k, target, eta, alpha, q, x_next, W1o, W2o, y, y_next, S1, S2, M, C, N, D, H,
             BD: tl.constexpr, BH: tl.constexpr, READ_TARGET: tl.constexpr, HAS_Q: tl.constexpr,
             SAVE: tl.constexpr):
    bm = tl.program_id(0)
    b = bm // M
    i_d, m_d, off1, off2, mask1, mask2, wb1, wb2 = _program(W1, W2, bm, D, H, BD, BH)  # wb: the boundary state
    w1, w2 = wb1, wb2
    for t in range(C):
        kt = tl.load(k + (b * C + t) * D + i_d, mask=m_d, other=0.0).to(tl.float32)
        goal = tl.load(target + (b * C + t) * D + i_d, mask=m_d, other=0.0).to(tl.float32)
        if READ_TARGET:  # the target is the memory's own read of it (Eq. 86)
            goal, _, _ = _read(wb1, wb2, goal)
        _, act, err, _, back, _, _ = _factors(wb1, wb2, kt, goal)
        if SAVE:
            tl.store(S1 + (bm * C + t) * D * H + off1, w1, mask=mask1)
            tl.store(S2 + (bm * C + t) * D * H + off2, w2, mask=mask2)
        if HAS_Q:  # y_t = M_{t-1}(q_t), read before the write (Eq. 83)
            qt = tl.load(q + (b * C + t) * D + i_d, mask=m_d, other=0.0).to(tl.float32)
            yt, _, _ = _read(w1, w2, qt)
            tl.store(y + (bm * C + t) * D + i_d, yt, mask=m_d)
        a = tl.load(alpha + b * C + t).to(tl.float32)
        e = tl.load(eta + b * C + t).to(tl.float32)
        s = -e * (tl.sum(w2 * kt[None, :], axis=1) + back)  # Eq. 88: W2 <- a W2 - eta (W2 k + back) k^T
        w2 = a * w2 + s[:, None] * kt[None, :]
        w1 = a * w1 - e * err[:, None] * act[None, :]  # W1 <- a W1 - eta err act^T
    for n in range(N):  # the next chunk's inputs, read at the state this chunk ends in
        xn = tl.load(x_next + (b * N + n) * D + i_d, mask=m_d, other=0.0).to(tl.float32)
        yn, _, _ = _read(w1, w2, xn)
        tl.store(y_next + (bm * N + n) * D + i_d, yn, mask=m_d)
    tl.store(W1o + bm * D * H + off1, w1, mask=mask1)
    tl.store(W2o + bm * D * H + off2, w2, mask=mask2)


@triton.jit
def _backward(W1, W2, k, target, eta, alpha, q, x_next, W1o, W2o, S1, S2, dW1o, dW2o, dy, dy_next,
              dW1, dW2, dk, dtarget, dq, dx_next, deta, dalpha, M, C, N, D, H,
              BD: tl.constexpr, BH: tl.constexpr, READ_TARGET: tl.constexpr, HAS_Q: tl.constexpr):
    bm = tl.program_id(0)
    b = bm // M
    i_d, m_d, off1, off2, mask1, mask2, wb1, wb2 = _program(W1, W2, bm, D, H, BD, BH)
    G1 = tl.load(dW1o + bm * D * H + off1, mask=mask1, other=0.0).to(tl.float32)  # dL/dW after the last write
    G2 = tl.load(dW2o + bm * D * H + off2, mask=mask2, other=0.0).to(tl.float32)
    B1 = tl.zeros((BD, BH), dtype=tl.float32)  # dL/d boundary weights through the gradient factors
    B2 = tl.zeros((BH, BD), dtype=tl.float32)
    if N > 0:
        f1 = tl.load(W1o + bm * D * H + off1, mask=mask1, other=0.0).to(tl.float32)
        f2 = tl.load(W2o + bm * D * H + off2, mask=mask2, other=0.0).to(tl.float32)
        for n in range(N):
            g1, g2 = _read_backward_at(f1, f2, x_next + (b * N + n) * D, dy_next + (bm * N + n) * D,
                                       dx_next + (bm * N + n) * D, i_d, m_d)
            G1 += g1
            G2 += g2
    for i in range(C):
        t = C - 1 - i
        c1 = tl.load(S1 + (bm * C + t) * D * H + off1, mask=mask1, other=0.0)  # the state before write t
        c2 = tl.load(S2 + (bm * C + t) * D * H + off2, mask=mask2, other=0.0)
        kt = tl.load(k + (b * C + t) * D + i_d, mask=m_d, other=0.0).to(tl.float32)
        goal = tl.load(target + (b * C + t) * D + i_d, mask=m_d, other=0.0).to(tl.float32)
        raw_target = goal
        if READ_TARGET:
            goal, _, _ = _read(wb1, wb2, goal)
        z, act, err, p, back, d1, d2 = _factors(wb1, wb2, kt, goal)
        a = tl.load(alpha + b * C + t).to(tl.float32)
        e = tl.load(eta + b * C + t).to(tl.float32)
        # the write t (Eq. 88), backwards
        s = tl.sum(c2 * kt[None, :], axis=1) + back
        gk = tl.sum(G2 * kt[None, :], axis=1)
        g1a = tl.sum(G1 * act[None, :], axis=1)
        tl.store(dalpha + bm * C + t, tl.sum(tl.sum(G1 * c1, axis=1), axis=0) + tl.sum(tl.sum(G2 * c2, axis=1), axis=0))
        tl.store(deta + bm * C + t, -tl.sum(s * gk, axis=0) - tl.sum(err * g1a, axis=0))
        g = -e * gk  # d back
        d_err = -e * g1a
        d_act = -e * tl.sum(G1 * err[:, None], axis=0)
        dkt = -e * tl.sum(G2 * s[:, None], axis=0) + tl.sum(c2 * g[:, None], axis=0)
        G2 = a * G2 + g[:, None] * kt[None, :]
        G1 = a * G1
        if HAS_Q:  # y_t = q_t + c1 silu(c2 q_t), read before write t
            g1, g2 = _read_backward_at(c1, c2, q + (b * C + t) * D, dy + (bm * C + t) * D, dq + (bm * C + t) * D,
                                       i_d, m_d)
            G1 += g1
            G2 += g2
        # through the gradient factors taken at the boundary state (Eqs. 90-93)
        dp = g * d1  # back = p silu'(z)
        dz = g * p * d2 + d_act * d1
        d_err += tl.sum(wb1 * dp[None, :], axis=1)  # p = W1^T err
        B1 += err[:, None] * dp[None, :] + d_err[:, None] * act[None, :]  # err = k + W1 act - goal
        dz += tl.sum(wb1 * d_err[:, None], axis=0) * d1
        B2 += dz[:, None] * kt[None, :]  # z = W2 k
        dkt += d_err + tl.sum(wb2 * dz[:, None], axis=0)
        tl.store(dk + (bm * C + t) * D + i_d, dkt, mask=m_d)
        if READ_TARGET:  # goal = target + W1 silu(W2 target)
            g1, g2, dtt = _read_backward(wb1, wb2, raw_target, -d_err)
            B1 += g1
            B2 += g2
            tl.store(dtarget + (bm * C + t) * D + i_d, dtt, mask=m_d)
        else:
            tl.store(dtarget + (bm * C + t) * D + i_d, -d_err, mask=m_d)
    tl.store(dW1 + bm * D * H + off1, G1 + B1, mask=mask1)
    tl.store(dW2 + bm * D * H + off2, G2 + B2, mask=mask2)


def _sizes(w1: torch.Tensor) -> dict[str, int]:
    return {"BD": triton.next_power_of_2(w1.shape[2]), "BH": triton.next_power_of_2(w1.shape[3])}


class TritonMLPMemoryChunk(torch.autograd.Function):
    """`mlp_memory_chunk_reference` with Triton forward and backward (weights and math in float32)."""

    @staticmethod
    def forward(ctx, w1, w2, k, target, eta, alpha, q, x_next, read_target):  # noqa: ANN001, ANN205
        B, M, d, h = w1.shape
        C = k.shape[1]
        f32 = {"dtype": torch.float32, "device": w1.device}
        has_q = q is not None
        q_ = q.contiguous() if has_q else torch.empty(B, 0, d, **f32)
        xn = x_next.contiguous() if x_next is not None else torch.empty(B, 0, d, **f32)
        w1, w2, k, target, eta, alpha = (x.contiguous() for x in (w1, w2, k, target, eta, alpha))
        save = any(ctx.needs_input_grad)
        n = (B, M, C) if save else (1, 1, 1)
        S1, S2 = torch.empty(*n, d, h, **f32), torch.empty(*n, h, d, **f32)
        W1o, W2o = torch.empty(B, M, d, h, **f32), torch.empty(B, M, h, d, **f32)
        y, y_next = torch.empty(B, M, q_.shape[1], d, **f32), torch.empty(B, M, xn.shape[1], d, **f32)
        _forward[(B * M,)](w1, w2, k, target, eta, alpha, q_, xn, W1o, W2o, y, y_next, S1, S2, M, C, xn.shape[1],
                           d, h, **_sizes(w1), READ_TARGET=bool(read_target), HAS_Q=has_q, SAVE=save)
        ctx.save_for_backward(w1, w2, k, target, eta, alpha, q_, xn, W1o, W2o, S1, S2)
        ctx.read_target, ctx.has_q = bool(read_target), has_q
        dtype = w1.dtype
        return W1o.to(dtype), W2o.to(dtype), y.to(dtype), y_next.to(dtype)

    @staticmethod
    def backward(ctx, dW1o, dW2o, dy, dy_next):  # noqa: ANN001, ANN205
        w1, w2, k, target, eta, alpha, q, xn, W1o, W2o, S1, S2 = ctx.saved_tensors
        B, M, d, h = w1.shape
        C, Q, N = k.shape[1], q.shape[1], xn.shape[1]
        f32 = {"dtype": torch.float32, "device": w1.device}

        def given(grad: torch.Tensor | None, *shape: int) -> torch.Tensor:
            return torch.zeros(shape, **f32) if grad is None else grad.float().contiguous()

        grads_out = (given(dW1o, B, M, d, h), given(dW2o, B, M, h, d), given(dy, B, M, Q, d),
                     given(dy_next, B, M, N, d))
        dW1, dW2 = torch.empty(B, M, d, h, **f32), torch.empty(B, M, h, d, **f32)
        dk, dtarget = torch.empty(B, M, C, d, **f32), torch.empty(B, M, C, d, **f32)
        dq, dx_next = torch.empty(B, M, Q, d, **f32), torch.empty(B, M, N, d, **f32)
        deta, dalpha = torch.empty(B, M, C, **f32), torch.empty(B, M, C, **f32)
        _backward[(B * M,)](w1, w2, k, target, eta, alpha, q, xn, W1o, W2o, S1, S2, *grads_out, dW1, dW2, dk,
                            dtarget, dq, dx_next, deta, dalpha, M, C, N, d, h, **_sizes(w1),
                            READ_TARGET=ctx.read_target, HAS_Q=ctx.has_q)
        dtype = w1.dtype
        # k, target, eta, alpha, q, x_next are shared by the M memories
        shared = [g.sum(1).to(dtype) for g in (dk, dtarget, deta, dalpha, dq, dx_next)]
        dq_, dx_ = (g if ctx.needs_input_grad[i] else None for g, i in ((shared[4], 6), (shared[5], 7)))
        return (dW1.to(dtype), dW2.to(dtype), *shared[:4], dq_, dx_, None)


mlp_memory_chunk_triton = functools.partial(fused_chunk, TritonMLPMemoryChunk)
