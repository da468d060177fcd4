"""The delta-rule recurrence as numba CPU kernels: forward and backward, `parallel` over batch x heads.

The forward keeps every state S_{t-1}, because the backward needs them: T * dv * dk numbers per sequence and
head; the chunk-boundary state B_t of the chunk-wise form is one of them. The backward walks the tokens in
reverse. With `r_t = v_t - S_{t-1} k_t - B_t k_t` (B_t = 0 without chunks) and G = dL/dS_t (which accumulates
`do_t q_t^T` from the output):

    dq_t = S_t^T do_t            dv_t = eta_t G k_t          d eta_t = r_t . (G k_t)
    d a_t = <G, S_{t-1}>         dk_t = eta_t G^T r_t - eta_t (S_{t-1} + B_t)^T (G k_t)
    dS_{t-1} = a_t G - eta_t (G k_t) k_t^T       dB += -eta_t (G k_t) k_t^T, added to G at the chunk's first token

`torch.autograd.gradcheck` on float64 holds this to the reference (tests/test_kernels.py).
"""

from __future__ import annotations

import numpy as np
import torch
from numba import njit, prange


@njit(parallel=True, cache=True)
def _forward(q, k, v, eta, alpha, S0, chunk, states, out):  # pragma: no cover - compiled
    B, H, T, dk = q.shape
    dv = v.shape[3]
    for bh in prange(B * H):
        b, h = bh // H, bh % H
        S = S0[b, h].copy()
        u = np.empty(dv, dtype=q.dtype)
        for t in range(T):
            states[b, h, t] = S
            for i in range(dv):
                acc = 0.0
                for j in range(dk):
                    acc += S[i, j] * k[b, h, t, j]
                u[i] = acc
            if chunk > 0:  # + B_t k_t, B_t the state at the start of the chunk
                Bs = states[b, h, (t // chunk) * chunk]
                for i in range(dv):
                    acc = 0.0
                    for j in range(dk):
                        acc += Bs[i, j] * k[b, h, t, j]
                    u[i] += acc
            a, e = alpha[b, h, t], eta[b, h, t]
            for i in range(dv):
                r = e * (v[b, h, t, i] - u[i])
                for j in range(dk):
                    S[i, j] = a * S[i, j] + r * k[b, h, t, j]
            for i in range(dv):
                acc = 0.0
                for j in range(dk):
                    acc += S[i, j] * q[b, h, t, j]
                out[b, h, t, i] = acc
        states[b, h, T] = S


@njit(parallel=True, cache=True)
def _backward(q, k, v, eta, alpha, chunk, states, d_out, d_ST, dq, dk_, dv_, deta, dalpha, dS0):  # pragma: no cover
    B, H, T, dk = q.shape
    dv = v.shape[3]
    for bh in prange(B * H):
        b, h = bh // H, bh % H
        G = d_ST[b, h].copy()
        dB = np.zeros_like(G)
        Gk = np.empty(dv, dtype=q.dtype)
        r = np.empty(dv, dtype=q.dtype)
        for t in range(T - 1, -1, -1):
            S_next = states[b, h, t + 1]  # S_t
            S_prev = states[b, h, t]  # S_{t-1}
            Bs = states[b, h, (t // chunk) * chunk] if chunk > 0 else S_prev
            for j in range(dk):  # dq_t = S_t^T do_t
                acc = 0.0
                for i in range(dv):
                    acc += S_next[i, j] * d_out[b, h, t, i]
                dq[b, h, t, j] = acc
            for i in range(dv):  # G += do_t q_t^T
                for j in range(dk):
                    G[i, j] += d_out[b, h, t, i] * q[b, h, t, j]
            a, e = alpha[b, h, t], eta[b, h, t]
            de, da = 0.0, 0.0
            for i in range(dv):
                acc_gk, acc_u = 0.0, 0.0
                for j in range(dk):
                    acc_gk += G[i, j] * k[b, h, t, j]
                    acc_u += S_prev[i, j] * k[b, h, t, j]
                    da += G[i, j] * S_prev[i, j]
                    if chunk > 0:
                        acc_u += Bs[i, j] * k[b, h, t, j]
                Gk[i] = acc_gk
                r[i] = v[b, h, t, i] - acc_u
                dv_[b, h, t, i] = e * acc_gk
                de += r[i] * acc_gk
            deta[b, h, t] = de
            dalpha[b, h, t] = da
            for j in range(dk):
                acc_r, acc_s = 0.0, 0.0
                for i in range(dv):
                    acc_r += G[i, j] * r[i]
                    acc_s += S_prev[i, j] * Gk[i]
                    if chunk > 0:
                        acc_s += Bs[i, j] * Gk[i]
                dk_[b, h, t, j] = e * (acc_r - acc_s)
            for i in range(dv):  # dS_{t-1} = a G - eta (G k) k^T
                for j in range(dk):
                    G[i, j] = a * G[i, j] - e * Gk[i] * k[b, h, t, j]
                    if chunk > 0:
                        dB[i, j] -= e * Gk[i] * k[b, h, t, j]
            if chunk > 0 and t % chunk == 0:  # S_{t-1} is this chunk's boundary state
                for i in range(dv):
                    for j in range(dk):
                        G[i, j] += dB[i, j]
                        dB[i, j] = 0.0
        dS0[b, h] = G


def _np(x: torch.Tensor) -> np.ndarray:
    return x.detach().contiguous().numpy()


class NumbaDeltaRule(torch.autograd.Function):
    """`delta_rule_reference` with numba forward and backward, for CPU tensors."""

    @staticmethod
    def forward(ctx, q, k, v, eta, alpha, S0, chunk):  # noqa: ANN001, ANN205 - autograd.Function signature
        B, H, T, dk = q.shape
        dv = v.shape[3]
        states = np.empty((B, H, T + 1, dv, dk), dtype=_np(q).dtype)
        out = np.empty((B, H, T, dv), dtype=states.dtype)
        _forward(_np(q), _np(k), _np(v), _np(eta), _np(alpha), _np(S0), chunk, states, out)
        ctx.save_for_backward(q, k, v, eta, alpha)
        ctx.states, ctx.chunk = states, chunk
        return torch.from_numpy(out), torch.from_numpy(states[:, :, T].copy())

    @staticmethod
    def backward(ctx, d_out, d_ST):  # noqa: ANN001, ANN205
        q, k, v, eta, alpha = ctx.saved_tensors
        grads = [np.zeros(x.shape, dtype=ctx.states.dtype) for x in (q, k, v, eta, alpha)]
        dS0 = np.zeros(ctx.states.shape[:2] + ctx.states.shape[3:], dtype=ctx.states.dtype)
        d_out = np.zeros((*v.shape[:3], v.shape[3]), dtype=ctx.states.dtype) if d_out is None else _np(d_out)
        d_ST = np.zeros_like(dS0) if d_ST is None else _np(d_ST)
        _backward(_np(q), _np(k), _np(v), _np(eta), _np(alpha), ctx.chunk, ctx.states, d_out, d_ST, *grads, dS0)
        return (*(torch.from_numpy(g) for g in grads), torch.from_numpy(dS0), None)


def delta_rule_numba(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, eta: torch.Tensor, alpha: torch.Tensor,
                     S0: torch.Tensor, chunk: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    return NumbaDeltaRule.apply(q, k, v, eta, alpha, S0, chunk)
