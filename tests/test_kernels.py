"""Kernels against the PyTorch reference: outputs and every gradient, over a grid of shapes and dtypes."""

import pytest
import torch
from conftest import TRITON_DEVICES, run_triton_check

from nlbench.core.errors import UsageError
from nlbench.kernels.dispatch import ENV, delta_rule, resolve_backend, use_backend
from nlbench.kernels.numba_delta import delta_rule_numba
from nlbench.kernels.reference import delta_rule_reference
from nlbench.nn.memory import dgd_l2_update, dgd_update, outer, read

TOL = {torch.float64: 1e-10, torch.float32: 1e-4}


def inputs(B, H, T, dk, dv, dtype, seed=0):
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(B, H, T, dk, dtype=dtype, generator=gen)
    k = torch.nn.functional.normalize(torch.randn(B, H, T, dk, dtype=dtype, generator=gen), dim=-1)
    v = torch.randn(B, H, T, dv, dtype=dtype, generator=gen)
    eta = 0.5 * torch.rand(B, H, T, dtype=dtype, generator=gen)
    alpha = 0.9 + 0.1 * torch.rand(B, H, T, dtype=dtype, generator=gen)
    S0 = 0.1 * torch.randn(B, H, dv, dk, dtype=dtype, generator=gen)
    return [x.requires_grad_() for x in (q, k, v, eta, alpha, S0)]


@pytest.mark.parametrize("chunk", [0, 1, 4])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("shape", [(1, 1, 1, 4, 4), (2, 3, 7, 5, 3), (1, 2, 33, 16, 16), (3, 1, 64, 9, 17)])
def test_numba_equals_the_reference_forward_and_backward(shape, dtype, chunk):
    xs = inputs(*shape, dtype)
    o_ref, s_ref = delta_rule_reference(*xs, chunk=chunk)
    o, s = delta_rule_numba(*xs, chunk=chunk)
    tol = TOL[dtype]
    torch.testing.assert_close(o, o_ref, rtol=tol, atol=tol)
    torch.testing.assert_close(s, s_ref, rtol=tol, atol=tol)
    seed = torch.Generator().manual_seed(1)
    w_o, w_s = torch.randn(o.shape, dtype=dtype, generator=seed), torch.randn(s.shape, dtype=dtype, generator=seed)
    g_ref = torch.autograd.grad((o_ref * w_o).sum() + (s_ref * w_s).sum(), xs)
    g = torch.autograd.grad((o * w_o).sum() + (s * w_s).sum(), xs)
    for name, a, b in zip(("q", "k", "v", "eta", "alpha", "S0"), g, g_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=tol * 10, atol=tol * 10, msg=f"d{name}")


@pytest.mark.parametrize("chunk", [0, 1, 4])
def test_numba_passes_gradcheck_in_float64(chunk):
    xs = inputs(2, 2, 6, 3, 4, torch.float64)
    assert torch.autograd.gradcheck(lambda *xs: delta_rule_numba(*xs, chunk=chunk), xs)


def test_the_reference_is_eq_92_without_chunks_and_eq_93_with_them():
    """Token by token against the memory rules of nlbench.nn.memory: DGD with retention (Eq. 88) on the
    dot-product loss (Eq. 92, gradient -v k^T), and on the L2 loss with the gradient at the chunk's first state
    (Eq. 93)."""
    q, k, v, eta, alpha, S0 = (x.detach() for x in inputs(2, 1, 7, 4, 3, torch.float64))
    for chunk in (0, 1, 3):
        out, final = delta_rule_reference(q, k, v, eta, alpha, S0, chunk=chunk)
        S = boundary = S0[:, 0]
        for t in range(7):
            kt, vt, e, a = k[:, 0, t], v[:, 0, t], eta[:, 0, t], alpha[:, 0, t]
            if chunk == 0:
                S = dgd_update(S, kt, -outer(vt, kt), e, a)
            else:
                boundary = S if t % chunk == 0 else boundary
                S = dgd_l2_update(S, kt, vt, e, a, at=boundary)
            torch.testing.assert_close(out[:, 0, t], read(S, q[:, 0, t]))
        torch.testing.assert_close(final[:, 0], S)


def test_only_the_output_or_only_the_state_may_carry_a_gradient():
    xs = inputs(1, 2, 5, 3, 3, torch.float64)
    (g_out,) = torch.autograd.grad(delta_rule_numba(*xs)[0].sum(), xs[:1])
    (g_ref,) = torch.autograd.grad(delta_rule_reference(*xs)[0].sum(), xs[:1])
    torch.testing.assert_close(g_out, g_ref)
    (g_state,) = torch.autograd.grad(delta_rule_numba(*xs)[1].sum(), xs[5:])
    (g_ref,) = torch.autograd.grad(delta_rule_reference(*xs)[1].sum(), xs[5:])
    torch.testing.assert_close(g_state, g_ref)


def test_dispatch_picks_numba_on_cpu_and_obeys_the_run_setting(monkeypatch):
    cpu = torch.device("cpu")
    assert resolve_backend("auto", cpu) == "numba"
    assert resolve_backend("reference", cpu) == "reference"
    monkeypatch.setenv(ENV, "reference")  # the environment is the CLI's default, never read here
    assert resolve_backend("auto", cpu) == "numba"
    with use_backend("reference"):  # how a run applies its kernel_backend setting
        assert resolve_backend("auto", cpu) == "reference"
        assert resolve_backend("numba", cpu) == "numba"  # an explicit backend wins
    assert resolve_backend("auto", cpu) == "numba"
    xs = inputs(1, 1, 4, 3, 3, torch.float64)
    torch.testing.assert_close(delta_rule(*xs)[0], delta_rule_reference(*xs)[0])
    with pytest.raises(UsageError, match="chunk must be 0"):
        delta_rule(*xs, chunk=-1)
    with pytest.raises(UsageError, match="kernel backend must be one of auto, reference, numba, triton"), \
            use_backend("cuda-magic"):
        pass
    with pytest.raises(UsageError, match="numba kernel runs on CPU tensors only"):
        resolve_backend("numba", torch.device("cuda"))
    assert resolve_backend("auto", torch.device("cuda")) == "triton"
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(UsageError, match="Triton kernel needs CUDA tensors"):
        resolve_backend("triton", cpu)


def test_a_run_s_thread_limit_for_numba_ends_with_the_run():
    import numba

    from nlbench.kernels.dispatch import numba_threads

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("numba has one thread here")
    numba.set_num_threads(2)
    with use_backend("auto", 1):
        assert numba_threads() == 1
        with use_backend("auto", 2):  # a nested setting restores the outer one
            assert numba_threads() == 2
        assert numba.get_num_threads() == 1
        assert numba_threads() == 1
    assert numba.get_num_threads() == 2, "a one-thread run left numba on one thread"
    with use_backend("auto"):  # no limit: numba's count is left alone
        assert numba_threads() == 2


TRITON_CHECK = """
import os
import torch
DEVICE = os.environ["CHECK_DEVICE"]
from nlbench.kernels.dispatch import delta_rule
from nlbench.kernels.reference import delta_rule_reference
cases = [((1, 1, 1, 4, 4), 0), ((2, 3, 7, 5, 3), 0), ((1, 2, 9, 16, 16), 0), ((2, 1, 5, 33, 7), 0),
         ((2, 3, 7, 5, 3), 1), ((1, 2, 9, 16, 16), 4)]
for shape, chunk in cases:
    B, H, T, dk, dv = shape
    g = torch.Generator().manual_seed(0)
    xs = [torch.randn(B, H, T, dk, generator=g),
          torch.nn.functional.normalize(torch.randn(B, H, T, dk, generator=g), dim=-1),
          torch.randn(B, H, T, dv, generator=g), 0.5 * torch.rand(B, H, T, generator=g),
          0.9 + 0.1 * torch.rand(B, H, T, generator=g), 0.1 * torch.randn(B, H, dv, dk, generator=g)]
    xs = [x.to(DEVICE).requires_grad_() for x in xs]
    o, s = delta_rule(*xs, chunk=chunk, backend="triton")
    o_r, s_r = delta_rule_reference(*xs, chunk=chunk)
    w1, w2 = torch.randn(o.shape, generator=g).to(DEVICE), torch.randn(s.shape, generator=g).to(DEVICE)
    got = torch.autograd.grad((o * w1).sum() + (s * w2).sum(), xs)
    ref = torch.autograd.grad((o_r * w1).sum() + (s_r * w2).sum(), xs)
    torch.testing.assert_close(o, o_r, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(s, s_r, rtol=1e-4, atol=1e-4)
    for name, a, b in zip(("q", "k", "v", "eta", "alpha", "S0"), got, ref):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-3, msg=lambda m, n=name: f"d{n} {shape} chunk {chunk}: {m}")
print("triton matches the reference")
"""


@pytest.mark.parametrize("device", TRITON_DEVICES)
def test_triton_kernel_matches_the_reference(device):
    run_triton_check(TRITON_CHECK, "triton matches the reference", device)
