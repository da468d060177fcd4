"""The factored MLP memory (nlbench.nn.write_history) and the fused chunk kernel against the materialised,
token-by-token path: outputs, every gradient, carried stream state, in float64; and the chunk's decay matrix
against hand-computed products."""

import pytest
import torch

from nlbench.nn.memory import MLPMemory, mlp_memory_dgd_step_factored, mlp_memory_l2_grad_factors, mlp_memory_read
from nlbench.nn.titans import SelfModifyingTitans
from nlbench.nn.write_history import SHORT, WriteHistory, short_matmul, within_chunk_decay

FAST = ["factored", "kernel"]  # the paths held to the materialised one


def pair(fast: str = "factored", **kw) -> tuple[SelfModifyingTitans, SelfModifyingTitans]:
    """The same randomly initialised module on a fast path and the materialised one, with non-trivial gates and
    convolution."""
    torch.manual_seed(0)
    factored = SelfModifyingTitans(6, 5, **{"memory_lr": 0.4, "memory_decay": 0.05, **kw},
                                   implementation=fast).double()
    with torch.no_grad():
        for p in (factored.eta_readout.weight, factored.alpha_readout.weight, factored.conv.conv.weight):
            p.add_(0.3 * torch.randn_like(p))
    materialised = SelfModifyingTitans(6, 5, implementation="materialised", **kw).double()
    materialised.load_state_dict(factored.state_dict())
    materialised.memory_lr, materialised.memory_decay = factored.memory_lr, factored.memory_decay
    return factored, materialised


def test_within_chunk_decay_equals_the_products_written_out():
    torch.manual_seed(0)
    eta, alpha = torch.rand(2, 4, dtype=torch.float64), torch.rand(2, 4, dtype=torch.float64)
    G, a, tail, total = within_chunk_decay(eta, alpha)
    torch.testing.assert_close(total, alpha.prod(-1))
    for i in range(4):
        assert torch.allclose(a[:, i], alpha[:, :i].prod(-1))
        assert torch.allclose(tail[:, i], eta[:, i] * alpha[:, i + 1:].prod(-1))
        for j in range(4):
            want = eta[:, j] * alpha[:, j + 1:i].prod(-1) if j < i else torch.zeros(2, dtype=torch.float64)
            assert torch.allclose(G[:, i, j], want), (i, j)


def test_one_chunk_of_writes_equals_the_token_by_token_dgd_steps():
    torch.manual_seed(1)
    b, m, C, d, h = 3, 2, 5, 4, 3
    w1, w2 = torch.randn(m, d, h, dtype=torch.float64), torch.randn(m, h, d, dtype=torch.float64)
    k, q = torch.randn(b, 1, C, d, dtype=torch.float64), torch.randn(b, 1, C, d, dtype=torch.float64)
    target = torch.randn(b, 1, C, d, dtype=torch.float64)
    eta, alpha = torch.rand(b, 1, C, dtype=torch.float64), 0.5 + 0.5 * torch.rand(b, 1, C, dtype=torch.float64)
    for chunks in ([C], [2, 3]):  # one chunk, and a second chunk on top of a history
        history, state, start, reads = WriteHistory(MLPMemory(w1, w2), b), MLPMemory(w1.expand(b, -1, -1, -1),
                                                                                     w2.expand(b, -1, -1, -1)), 0, []
        for size in chunks:
            sl = slice(start, start + size)
            got = history.write(k[:, 0, sl], target[:, 0, sl], eta[:, 0, sl], alpha[:, 0, sl], q=q[:, 0, sl])
            grads = mlp_memory_l2_grad_factors(state, k[:, :, sl], target[:, :, sl])  # at the boundary state
            for t in range(size):
                reads.append(mlp_memory_read(state, q[:, :, start + t:start + t + 1]))
                state = mlp_memory_dgd_step_factored(state, k[:, :, start + t].expand(-1, m, -1),
                                                     type(grads)(*(g[:, :, t] for g in grads)),
                                                     eta[:, :, start + t], alpha[:, :, start + t])
            torch.testing.assert_close(got.transpose(0, 1), torch.cat(reads[start:], dim=-2), rtol=1e-10, atol=1e-12)
            start += size
        for got, want in zip(history.state(), state, strict=True):
            torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("a_shape, b_shape", [
    ((3, 2, 4), (3, 4, 5)),  # a short contraction: a broadcast product
    ((2, 3, 2, 4), (3, 4, 5)),  # ... with an operand shared over the leading (memory) axis
    ((3, 2, 4), (2, 3, 4, 5)),
    ((3, 2, SHORT + 1), (3, SHORT + 1, 5)),  # a long one: matmul
    ((600, 4, 6), (600, 6, 32)),  # a large batch: matmul
])
def test_short_matmul_is_the_matrix_product(a_shape, b_shape):
    torch.manual_seed(0)
    a, b = torch.randn(*a_shape, dtype=torch.float64), torch.randn(*b_shape, dtype=torch.float64)
    torch.testing.assert_close(short_matmul(a, b), a @ b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kw, tokens", [
    ({}, 9),
    ({}, 14),  # histories longer than SHORT: the matmul branch of short_matmul
    ({"chunk_size": 3, "memory_chunk_size": 5}, 9),
    ({"chunk_size": 1, "memory_chunk_size": 1}, 9),
    ({"self_modify": False}, 9),
    ({"grad_mode": "stopgrad"}, 9),
])
@pytest.mark.parametrize("fast", FAST)
def test_fast_paths_equal_the_materialised_one_in_outputs_and_every_gradient(fast, kw, tokens):
    factored, materialised = pair(fast, **kw)
    x = torch.randn(3, tokens, 6, dtype=torch.float64)
    y, y_ref = factored(x), materialised(x)
    torch.testing.assert_close(y, y_ref, rtol=1e-10, atol=1e-12)
    params = [(n, p) for n, p in factored.named_parameters() if p.requires_grad]
    ref = dict(materialised.named_parameters())
    grads = torch.autograd.grad((y * torch.linspace(-1, 1, 6, dtype=torch.float64)).pow(2).sum(),
                                [p for _, p in params])
    want = torch.autograd.grad((y_ref * torch.linspace(-1, 1, 6, dtype=torch.float64)).pow(2).sum(),
                               [ref[n] for n, _ in params])
    for (name, _), g, r in zip(params, grads, want, strict=True):
        torch.testing.assert_close(g, r, rtol=1e-8, atol=1e-10, msg=name)


@pytest.mark.parametrize("fast", FAST)
def test_fast_paths_pass_gradcheck(fast):
    factored, _ = pair(fast, chunk_size=2, memory_chunk_size=3)
    x = torch.randn(2, 5, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda inp: factored(inp), (x,))


@pytest.mark.parametrize("fast", FAST)
def test_fast_paths_carry_the_same_stream_memory(fast):
    factored, materialised = pair(fast, memory_scope="stream")
    x1, x2 = torch.randn(3, 8, 6, dtype=torch.float64), torch.randn(2, 8, 6, dtype=torch.float64)
    with torch.no_grad():
        for model in (factored, materialised):
            model.train()
            model(x1)
            model.eval()
        for name, buffer in factored.carried.named_buffers():
            torch.testing.assert_close(buffer, dict(materialised.carried.named_buffers())[name], rtol=1e-10,
                                       atol=1e-12, msg=name)
            assert buffer.abs().sum() > 0, name
        torch.testing.assert_close(factored(x2), materialised(x2), rtol=1e-10, atol=1e-12)


def test_unknown_implementation_is_refused():
    with pytest.raises(ValueError, match="implementation must be one of"):
        SelfModifyingTitans(6, 5, implementation="fast")


@pytest.mark.parametrize("method", ["titans", "hope"])
def test_a_short_run_gives_the_same_accuracy_matrix_on_every_path(method):
    from nlbench.core.registry import SCENARIOS, get_method
    from nlbench.run.config import RunConfig
    from nlbench.run.execute import execute_run

    options = SCENARIOS.get("split-digits")(n_experiences=2).options
    results = []
    for impl in ("factored", "kernel", "materialised"):
        hp = get_method(method).resolve({"epochs": 1, "memory_impl": impl})
        result = execute_run(RunConfig("paths", "split-digits", "split-digits", options, method, method, hp, 0))
        assert result.ok, result.traceback
        results.append(result)
    factored, kernel, materialised = results
    assert factored.R == kernel.R == materialised.R
    assert factored.b == kernel.b == materialised.b


def test_auto_runs_the_kernel_on_small_cpu_batches_and_the_factored_path_otherwise():
    import numba

    from nlbench.kernels.dispatch import use_backend
    from nlbench.nn.titans import KERNEL_SAMPLES_PER_THREAD

    model = SelfModifyingTitans(6, 5)
    assert model.implementation == "auto"
    for threads in (1, 2):
        with use_backend("auto", threads):
            limit = KERNEL_SAMPLES_PER_THREAD * min(threads, numba.config.NUMBA_NUM_THREADS)
            assert not model._factored(torch.empty(limit, 4, 6))
            assert model._factored(torch.empty(limit + 1, 4, 6))
    assert SelfModifyingTitans(6, 5, kernel_backend="reference")._factored(torch.empty(2, 4, 6))
    assert model._factored(torch.empty(2, 4, 6, device="meta")), "no numba off the CPU"
