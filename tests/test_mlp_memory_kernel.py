"""The fused chunk kernel of the residual MLP memory (nlbench.kernels.numba_mlp_memory) against the PyTorch reference
(`kernels.reference.mlp_memory_chunk_reference`): outputs and every gradient in float64, `gradcheck`, and the
dispatcher's choice."""

import pytest
import torch
from conftest import TRITON_DEVICES, run_triton_check
from torch.nn import functional as F

from nlbench.kernels.dispatch import mlp_memory_chunk
from nlbench.kernels.numba_mlp_memory import mlp_memory_chunk_numba
from nlbench.kernels.reference import mlp_memory_chunk_reference

B, M, C, N, D, H = 3, 2, 4, 3, 5, 6


def inputs(dtype: torch.dtype = torch.float64, seed: int = 0) -> dict[str, torch.Tensor]:
    """A chunk with unit keys, gates away from their bounds and every input a leaf that wants its gradient."""
    g = torch.Generator().manual_seed(seed)
    rand = lambda *shape: torch.randn(*shape, generator=g, dtype=dtype)  # noqa: E731
    tensors = {
        "w1": rand(B, M, D, H) / H**0.5, "w2": rand(B, M, H, D) / D**0.5,
        "k": F.normalize(rand(B, C, D), dim=-1), "target": F.normalize(rand(B, C, D), dim=-1),
        "eta": 0.05 + 0.9 * torch.rand(B, C, generator=g, dtype=dtype),
        "alpha": 1 - 0.2 * torch.rand(B, C, generator=g, dtype=dtype),
        "q": F.normalize(rand(B, C, D), dim=-1), "x_next": rand(B, N, D),
    }
    return {name: t.requires_grad_() for name, t in tensors.items()}


CASES = [dict(read_target=r, q=q, x_next=x) for r in (False, True) for q in (False, True) for x in (False, True)]


def call(fn, t: dict[str, torch.Tensor], read_target: bool, q: bool, x_next: bool):  # noqa: ANN001, ANN201
    return fn(t["w1"], t["w2"], t["k"], t["target"], t["eta"], t["alpha"], t["q"] if q else None, read_target,
              t["x_next"] if x_next else None)


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(k for k, v in c.items() if v) or "plain")
def test_kernel_equals_the_reference_in_outputs_and_every_gradient(case):
    t = inputs()
    got, want = call(mlp_memory_chunk_numba, t, **case), call(mlp_memory_chunk_reference, t, **case)
    assert [g is None for g in got] == [w is None for w in want] == [False, False, not case["q"], not case["x_next"]]
    pairs = [(g, w) for g, w in zip(got, want, strict=True) if g is not None]
    for g, w in pairs:
        torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-12)
    weights = [torch.randn_like(w) for _, w in pairs]  # a loss that weighs every output differently
    leaves = [v for name, v in t.items() if case.get(name, True)]
    grads = torch.autograd.grad(sum((g * c).sum() for (g, _), c in zip(pairs, weights, strict=True)), leaves)
    ref = torch.autograd.grad(sum((w * c).sum() for (_, w), c in zip(pairs, weights, strict=True)), leaves)
    for name, g, r in zip([n for n in t if case.get(n, True)], grads, ref, strict=True):
        torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-12, msg=name)


@pytest.mark.parametrize("read_target", [False, True])
def test_kernel_passes_gradcheck(read_target):
    t = inputs(seed=1)
    names = list(t)
    fn = lambda *xs: tuple(mlp_memory_chunk_numba(*xs[:6], xs[6], read_target, xs[7]))  # noqa: E731
    assert torch.autograd.gradcheck(fn, tuple(t[n] for n in names))


def test_kernel_without_gradients_computes_the_same_forward():
    t = inputs(seed=2)
    with_grad = call(mlp_memory_chunk_numba, t, True, True, True)
    with torch.no_grad():
        without = call(mlp_memory_chunk_numba, t, True, True, True)
    for g, w in zip(without, with_grad, strict=True):
        assert not g.requires_grad
        torch.testing.assert_close(g, w, rtol=0, atol=0)


def test_float32_kernel_is_within_float_rounding_of_the_float64_reference():
    t64 = inputs(seed=3)
    t32 = {name: v.detach().float() for name, v in t64.items()}
    for g, w in zip(call(mlp_memory_chunk_numba, t32, True, True, True),
                    call(mlp_memory_chunk_reference, t64, True, True, True), strict=True):
        assert g.dtype == torch.float32
        torch.testing.assert_close(g.double(), w.detach(), rtol=1e-5, atol=1e-5)


def test_a_nan_in_the_input_reaches_the_output():
    t = inputs(seed=4)
    with torch.no_grad():
        t["k"][0, 1, 2] = float("nan")
    w1, w2, y, _ = call(mlp_memory_chunk_numba, t, True, True, False)
    assert w1[0].isnan().any() and w2[0].isnan().any() and y[0].isnan().any()
    assert not w1[1:].isnan().any()


@pytest.mark.parametrize("backend, expected", [("numba", mlp_memory_chunk_numba),
                                               ("reference", mlp_memory_chunk_reference)])
def test_dispatcher_runs_the_backend_asked_for(backend, expected):
    t = inputs(seed=5)
    got = call(lambda *a: mlp_memory_chunk(*a, backend=backend), t, True, True, True)
    for g, w in zip(got, call(expected, t, True, True, True), strict=True):
        torch.testing.assert_close(g, w, rtol=0, atol=0)


TRITON_CHECK = """
import itertools
import os
import torch
from torch.nn import functional as F
from nlbench.kernels.dispatch import mlp_memory_chunk
from nlbench.kernels.reference import mlp_memory_chunk_reference
from nlbench.kernels import triton_mlp_memory
from nlbench.nn.titans import SelfModifyingTitans

DEVICE = os.environ["CHECK_DEVICE"]
calls = []  # the Triton kernel's calls: a dispatcher that fell back on the reference would pass unnoticed
kernel = triton_mlp_memory.mlp_memory_chunk_triton
triton_mlp_memory.mlp_memory_chunk_triton = lambda *a: calls.append(1) or kernel(*a)

# the chunk: outputs and every gradient, in 8 cases x 3 shapes (one program per sample x memory, padded dims)
for (B, M, C, d, h), read_target, has_q, has_next in itertools.product(
        [(2, 3, 4, 5, 3), (1, 2, 3, 8, 8), (2, 1, 1, 4, 6)], *[(False, True)] * 3):
    g = torch.Generator().manual_seed(0)
    t = [0.3 * torch.randn(B, M, d, h, generator=g), 0.3 * torch.randn(B, M, h, d, generator=g),
         F.normalize(torch.randn(B, C, d, generator=g), dim=-1), torch.randn(B, C, d, generator=g),
         0.3 * torch.rand(B, C, generator=g), 0.9 + 0.1 * torch.rand(B, C, generator=g),
         torch.randn(B, C, d, generator=g) if has_q else None, torch.randn(B, 2, d, generator=g) if has_next else None]
    t = [x if x is None else x.to(DEVICE).requires_grad_() for x in t]
    leaves = [x for x in t if x is not None]
    args = (*t[:7], read_target, t[7])
    got, want = mlp_memory_chunk(*args, backend="triton"), mlp_memory_chunk_reference(*args)
    assert [x is None for x in got] == [x is None for x in want] == [False, False, not has_q, not has_next]
    weights = [torch.randn(x.shape, generator=g).to(DEVICE) for x in want if x is not None]
    loss = lambda outs: sum((x * w).sum() for x, w in zip([x for x in outs if x is not None], weights))
    for a, b in zip([x for x in got if x is not None], [x for x in want if x is not None]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    case = (B, M, C, d, h, read_target, has_q, has_next)
    for i, (a, b) in enumerate(zip(torch.autograd.grad(loss(got), leaves), torch.autograd.grad(loss(want), leaves))):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-3, msg=lambda m, i=i: f"gradient {i} of {case}: {m}")

assert len(calls) == 24, calls

# a whole Titans module on the Triton kernel (a partial last chunk) against the materialised path
torch.manual_seed(0)
fast = SelfModifyingTitans(6, 5, memory_lr=0.4, implementation="kernel", kernel_backend="triton").to(DEVICE)
ref = SelfModifyingTitans(6, 5, memory_lr=0.4, implementation="materialised").to(DEVICE)
ref.load_state_dict(fast.state_dict())
x = torch.randn(3, 9, 6).to(DEVICE)
y, y_ref = fast(x), ref(x)
torch.testing.assert_close(y, y_ref, rtol=1e-4, atol=1e-4)
names = [n for n, _ in fast.named_parameters()]
for name, g, r in zip(names, torch.autograd.grad(y.pow(2).sum(), list(fast.parameters())),
                      torch.autograd.grad(y_ref.pow(2).sum(), list(ref.parameters()))):
    torch.testing.assert_close(g, r, rtol=1e-3, atol=1e-4, msg=lambda m, n=name: f"{n}: {m}")
chunks = -(-9 // fast.chunk_size) + -(-9 // fast.memory_chunk_size)  # the signal memories' and the main one's
assert len(calls) == 24 + chunks > 26, calls
assert SelfModifyingTitans(6, 5, kernel_backend="triton")._factored(x), "auto keeps the factored path off numba"
print("triton chunk kernel matches the reference")
"""


@pytest.mark.parametrize("device", TRITON_DEVICES)
def test_triton_kernel_matches_the_reference(device):
    run_triton_check(TRITON_CHECK, "triton chunk kernel matches the reference", device)
