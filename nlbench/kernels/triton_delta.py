"""The delta-rule recurrence as Triton kernels: one program per (batch, head), the state S in registers.

The forward and backward follow the numba kernels line for line (see `numba_delta.py` for the backward
formulas). The forward writes every state S_{t-1} to a buffer for the backward. Dimensions are padded to powers
of two with masks. On a machine without a GPU, `TRITON_INTERPRET=1` runs the same kernels on CPU tensors; that
is how the tests check them against the reference.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _forward(q, k, v, eta, alpha, S0, states, out, T, DK, DV, CHUNK, BK: tl.constexpr, BV: tl.constexpr,
             HAS_CHUNK: tl.constexpr):
    bh = tl.program_id(0)
    ik, iv = tl.arange(0, BK), tl.arange(0, BV)
    mk, mv = ik < DK, iv < DV
    m2 = mv[:, None] & mk[None, :]
    S = tl.load(S0 + bh * DV * DK + iv[:, None] * DK + ik[None, :], mask=m2, other=0.0).to(tl.float32)
    Bs = S
    for t in range(T):
        tl.store(states + (bh * (T + 1) + t) * DV * DK + iv[:, None] * DK + ik[None, :], S, mask=m2)
        kt = tl.load(k + (bh * T + t) * DK + ik, mask=mk, other=0.0).to(tl.float32)
        vt = tl.load(v + (bh * T + t) * DV + iv, mask=mv, other=0.0).to(tl.float32)
        qt = tl.load(q + (bh * T + t) * DK + ik, mask=mk, other=0.0).to(tl.float32)
        a = tl.load(alpha + bh * T + t).to(tl.float32)
        e = tl.load(eta + bh * T + t).to(tl.float32)
        u = tl.sum(S * kt[None, :], axis=1)
        if HAS_CHUNK:  # + B_t k_t, B_t the state at the start of the chunk (kept in registers)
            Bs = tl.where((t % CHUNK) == 0, S, Bs)
            u += tl.sum(Bs * kt[None, :], axis=1)
        S = a * S + e * (vt - u)[:, None] * kt[None, :]
        tl.store(out + (bh * T + t) * DV + iv, tl.sum(S * qt[None, :], axis=1), mask=mv)
    tl.store(states + (bh * (T + 1) + T) * DV * DK + iv[:, None] * DK + ik[None, :], S, mask=m2)


@triton.jit
def _backward(q, k, v, eta, alpha, states, d_out, d_ST, dq, dk, dv, deta, dalpha, dS0, T, DK, DV, CHUNK,
              BK: tl.constexpr, BV: tl.constexpr, HAS_CHUNK: tl.constexpr):
    bh = tl.program_id(0)
    ik, iv = tl.arange(0, BK), tl.arange(0, BV)
    mk, mv = ik < DK, iv < DV
    m2 = mv[:, None] & mk[None, :]
    G = tl.load(d_ST + bh * DV * DK + iv[:, None] * DK + ik[None, :], mask=m2, other=0.0).to(tl.float32)
    dB = tl.zeros((BV, BK), dtype=tl.float32)
    for i in range(T):
        t = T - 1 - i
        S_next = tl.load(states + (bh * (T + 1) + t + 1) * DV * DK + iv[:, None] * DK + ik[None, :], mask=m2,
                         other=0.0)
        S_prev = tl.load(states + (bh * (T + 1) + t) * DV * DK + iv[:, None] * DK + ik[None, :], mask=m2,
                         other=0.0)
        do = tl.load(d_out + (bh * T + t) * DV + iv, mask=mv, other=0.0).to(tl.float32)
        qt = tl.load(q + (bh * T + t) * DK + ik, mask=mk, other=0.0).to(tl.float32)
        kt = tl.load(k + (bh * T + t) * DK + ik, mask=mk, other=0.0).to(tl.float32)
        vt = tl.load(v + (bh * T + t) * DV + iv, mask=mv, other=0.0).to(tl.float32)
        a = tl.load(alpha + bh * T + t).to(tl.float32)
        e = tl.load(eta + bh * T + t).to(tl.float32)
        tl.store(dq + (bh * T + t) * DK + ik, tl.sum(S_next * do[:, None], axis=0), mask=mk)
        G = G + do[:, None] * qt[None, :]
        Gk = tl.sum(G * kt[None, :], axis=1)
        r = vt - tl.sum(S_prev * kt[None, :], axis=1)
        S_erase = S_prev  # the states whose read of k_t is erased: S_{t-1}, and B_t in the chunk-wise form
        if HAS_CHUNK:
            Bs = tl.load(states + (bh * (T + 1) + (t // CHUNK) * CHUNK) * DV * DK + iv[:, None] * DK + ik[None, :],
                         mask=m2, other=0.0)
            r -= tl.sum(Bs * kt[None, :], axis=1)
            S_erase = S_prev + Bs
        tl.store(dv + (bh * T + t) * DV + iv, e * Gk, mask=mv)
        tl.store(deta + bh * T + t, tl.sum(r * Gk, axis=0))
        tl.store(dalpha + bh * T + t, tl.sum(tl.sum(G * S_prev, axis=1), axis=0))
        dkt = e * (tl.sum(G * r[:, None], axis=0) - tl.sum(S_erase * Gk[:, None], axis=0))
        tl.store(dk + (bh * T + t) * DK + ik, dkt, mask=mk)
        G = a * G - e * Gk[:, None] * kt[None, :]
        if HAS_CHUNK:  # at the chunk's first token S_{t-1} is the boundary state: it collects dB
            dB -= e * Gk[:, None] * kt[None, :]
            first = (t % CHUNK) == 0
            G = tl.where(first, G + dB, G)
            dB = tl.where(first, 0.0, dB)
    tl.store(dS0 + bh * DV * DK + iv[:, None] * DK + ik[None, :], G, mask=m2)


def _blocks(dk: int, dv: int) -> dict[str, int]:
    return {"BK": triton.next_power_of_2(dk), "BV": triton.next_power_of_2(dv)}


class TritonDeltaRule(torch.autograd.Function):
    """`delta_rule_reference` with Triton forward and backward (states and math in float32)."""

    @staticmethod
    def forward(ctx, q, k, v, eta, alpha, S0, chunk):  # noqa: ANN001, ANN205 - autograd.Function signature
        B, H, T, dk = q.shape
        dv = v.shape[3]
        q, k, v, eta, alpha, S0 = (x.contiguous() for x in (q, k, v, eta, alpha, S0))
        states = torch.empty(B, H, T + 1, dv, dk, dtype=torch.float32, device=q.device)
        out = torch.empty(B, H, T, dv, dtype=torch.float32, device=q.device)
        _forward[(B * H,)](q, k, v, eta, alpha, S0, states, out, T, dk, dv, max(chunk, 1), **_blocks(dk, dv),
                           HAS_CHUNK=chunk > 0)
        ctx.save_for_backward(q, k, v, eta, alpha, states)
        ctx.chunk = chunk
        return out.to(q.dtype), states[:, :, T].to(q.dtype)

    @staticmethod
    def backward(ctx, d_out, d_ST):  # noqa: ANN001, ANN205
        q, k, v, eta, alpha, states = ctx.saved_tensors
        B, H, T, dk = q.shape
        dv = v.shape[3]
        f32 = {"dtype": torch.float32, "device": q.device}
        d_out = torch.zeros(B, H, T, dv, **f32) if d_out is None else d_out.float().contiguous()
        d_ST = torch.zeros(B, H, dv, dk, **f32) if d_ST is None else d_ST.float().contiguous()
        grads = [torch.empty(x.shape, **f32) for x in (q, k, v, eta, alpha)]
        dS0 = torch.empty(B, H, dv, dk, **f32)
        _backward[(B * H,)](q, k, v, eta, alpha, states, d_out, d_ST, *grads, dS0, T, dk, dv, max(ctx.chunk, 1),
                            **_blocks(dk, dv), HAS_CHUNK=ctx.chunk > 0)
        return (*(g.to(q.dtype) for g in grads), dS0.to(q.dtype), None)


def delta_rule_triton(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, eta: torch.Tensor, alpha: torch.Tensor,
                      S0: torch.Tensor, chunk: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    return TritonDeltaRule.apply(q, k, v, eta, alpha, S0, chunk)
