"""Self-modifying Titans and HOPE: chunk-parallel vs a token-by-token reference, gradient flow, shapes."""

import pytest
import torch
from torch.nn import functional as F

from nlbench.nn.hope import HOPEClassifier
from nlbench.nn.memory import (
    MLPMemory,
    dgd_l2_update,
    dgd_update,
    mlp_memory_dgd_step,
    mlp_memory_l2_grads,
    mlp_memory_read,
    outer,
    read,
)
from nlbench.nn.titans import SELF_MODIFYING, CausalConv, SelfModifyingTitans


def reference_titans(m: SelfModifyingTitans, x: torch.Tensor) -> torch.Tensor:
    """Eqs. 83-93 one token and one memory at a time, each memory keeping its own chunk-boundary snapshot."""
    u = F.normalize(m.conv(x), dim=-1)
    b, n, _ = u.shape
    sig = m.initial_states["signals"]
    states = {name: MLPMemory(sig["w1"][i].expand(b, -1, -1), sig["w2"][i].expand(b, -1, -1))
              for i, name in enumerate(SELF_MODIFYING)}
    mem_p = m.initial_states["memory"]
    memory = MLPMemory(mem_p["w1"].expand(b, -1, -1), mem_p["w2"].expand(b, -1, -1))
    boundary, mem_boundary, ys = dict(states), memory, []
    signals = []
    for t in range(n):
        if t % m.chunk_size == 0:
            boundary = dict(states)  # the state at the end of the previous chunk
        ut = u[:, t:t + 1]
        r = {name: mlp_memory_read(boundary[name], ut)[:, 0] for name in SELF_MODIFYING}
        k, v = F.normalize(r["k"], dim=-1), F.normalize(r["v"], dim=-1)
        eta, alpha = m.gates(r["eta"], r["alpha"])
        signals.append((k, v, eta, alpha))
        for name in SELF_MODIFYING:
            target = mlp_memory_read(boundary[name], v[:, None])
            g = mlp_memory_l2_grads(boundary[name], k[:, None], target)
            states[name] = mlp_memory_dgd_step(states[name], k, MLPMemory(g.w1[:, 0], g.w2[:, 0]), eta, alpha)
    q = F.normalize(m.w_q(u), dim=-1)
    for t, (k, v, eta, alpha) in enumerate(signals):
        if t % m.memory_chunk_size == 0:
            mem_boundary = memory
        ys.append(mlp_memory_read(memory, q[:, t:t + 1])[:, 0])  # y_t = M_{t-1}(q_t)
        target = mlp_memory_read(mem_boundary, v[:, None])
        g = mlp_memory_l2_grads(mem_boundary, k[:, None], target)
        memory = mlp_memory_dgd_step(memory, k, MLPMemory(g.w1[:, 0], g.w2[:, 0]), eta, alpha)
    return torch.stack(ys, dim=1)


def make_titans(hidden=5, **kw):
    torch.manual_seed(0)
    m = SelfModifyingTitans(6, hidden, **{"memory_lr": 0.4, "memory_decay": 0.05, **kw}).double()
    with torch.no_grad():  # non-trivial gates and convolution, so every path is exercised
        for p in (m.eta_readout.weight, m.alpha_readout.weight, m.conv.conv.weight):
            p.add_(0.3 * torch.randn_like(p))
    return m


def reference_linear_titans(m: SelfModifyingTitans, x: torch.Tensor, start: torch.Tensor | None = None,
                            final: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Eqs. 76-78 with a linear memory, one token at a time with the rules of nlbench.nn.memory: Eq. 93 with
    the gradient at each chunk's first state, or Eq. 92 (the dot-product loss, gradient -v k^T); y_t = S_t q_t.
    `start`: the state every sample starts from (default: the initial state); `final`: also return the last S."""
    u = F.normalize(m.conv(x), dim=-1)
    q = F.normalize(m.w_q(u), dim=-1)
    k, v, eta, alpha = m.write_signals(u)
    start = m.initial_states["memory"]["S"] if start is None else start
    S = boundary = start.expand(x.shape[0], -1, -1)
    ys = []
    for t in range(x.shape[1]):
        if m.memory_loss == "dot":
            S = dgd_update(S, k[:, t], -outer(v[:, t], k[:, t]), eta[:, t], alpha[:, t])
        else:
            boundary = S if t % m.memory_chunk_size == 0 else boundary
            S = dgd_l2_update(S, k[:, t], v[:, t], eta[:, t], alpha[:, t], at=boundary)
        ys.append(read(S, q[:, t]))
    return (torch.stack(ys, dim=1), S) if final else torch.stack(ys, dim=1)


@pytest.mark.parametrize("backend", ["reference", "numba"])
@pytest.mark.parametrize(("loss", "memory_chunk"), [("l2", 1), ("l2", 3), ("dot", 4)])
def test_linear_memory_runs_the_kernel_and_equals_the_token_by_token_rules(loss, memory_chunk, backend):
    m = make_titans(hidden=0, self_modify=False, memory_loss=loss, memory_chunk_size=memory_chunk,
                    kernel_backend=backend)
    x = torch.randn(3, 7, 6, dtype=torch.float64)
    torch.testing.assert_close(m(x), reference_linear_titans(m, x), rtol=1e-10, atol=1e-12)
    names, params = zip(*((n, p) for n, p in m.named_parameters() if p.requires_grad), strict=True)
    grads = torch.autograd.grad(m(x).pow(2).sum(), params)
    ref = torch.autograd.grad(reference_linear_titans(m, x).pow(2).sum(), params)
    for name, g, r in zip(names, grads, ref, strict=True):
        torch.testing.assert_close(g, r, rtol=1e-8, atol=1e-10, msg=name)
    assert grads[names.index("initial_states.memory.S")].abs().sum() > 0  # meta-learned initial state


def test_linear_memory_in_stopgrad_mode_keeps_its_initial_state_fixed():
    m = make_titans(hidden=0, self_modify=False, grad_mode="stopgrad")
    m(torch.randn(2, 5, 6, dtype=torch.float64)).sum().backward()
    assert not m.initial_states["memory"]["S"].requires_grad and m.initial_states["memory"]["S"].grad is None
    assert m.w_q.weight.grad.abs().sum() > 0 and m.w_k.weight.grad is None


@pytest.mark.parametrize(("kw", "message"), [
    ({"self_modify": True}, "it needs self_modify = false"),
    ({"self_modify": False, "memory_loss": "mse"}, "memory_loss must be one of"),
])
def test_linear_memory_refuses_what_it_does_not_support(kw, message):
    with pytest.raises(ValueError, match=message):
        SelfModifyingTitans(6, 0, **kw)


@pytest.mark.parametrize(("chunk", "memory_chunk", "n"), [(2, 4, 8), (3, 5, 7), (1, 1, 4), (8, 8, 8)])
def test_chunk_parallel_equals_token_by_token_reference(chunk, memory_chunk, n):
    m = make_titans(chunk_size=chunk, memory_chunk_size=memory_chunk)
    x = torch.randn(3, n, 6, dtype=torch.float64)
    torch.testing.assert_close(m(x), reference_titans(m, x), rtol=1e-10, atol=1e-12)


def test_chunk_size_matters():
    """Guards the reference test against a degenerate pass: boundary states are really used."""
    x = torch.randn(2, 8, 6, dtype=torch.float64)
    assert not torch.allclose(make_titans(chunk_size=1, memory_chunk_size=1)(x),
                              make_titans(chunk_size=8, memory_chunk_size=8)(x))


def test_memories_learn_in_context():
    x = torch.randn(2, 8, 6, dtype=torch.float64)
    assert not torch.allclose(make_titans()(x), make_titans(memory_lr=1e-12)(x))


def test_meta_mode_backpropagates_into_the_initial_memory_states():
    m = make_titans(grad_mode="meta")
    m(torch.randn(2, 8, 6, dtype=torch.float64)).sum().backward()
    for name, p in m.initial_states.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert m.eta_readout.weight.grad.abs().sum() > 0


def test_stopgrad_mode_leaves_the_initial_states_without_gradients():
    m = make_titans(grad_mode="stopgrad")
    m(torch.randn(2, 8, 6, dtype=torch.float64)).sum().backward()
    assert all(p.grad is None and not p.requires_grad for p in m.initial_states.parameters())
    assert m.w_q.weight.grad is not None and m.w_q.weight.grad.abs().sum() > 0  # the read path still learns


def test_fast_state_is_per_sample_not_shared_across_the_batch():
    m = make_titans()
    x = torch.randn(4, 8, 6, dtype=torch.float64)
    torch.testing.assert_close(m(x)[:1], m(x[:1]))


def test_static_projection_ablation_runs_and_differs():
    x = torch.randn(2, 8, 6, dtype=torch.float64)
    torch.manual_seed(0)
    static = SelfModifyingTitans(6, 5, self_modify=False).double()
    torch.manual_seed(0)
    adaptive = SelfModifyingTitans(6, 5).double()
    assert static(x).shape == (2, 8, 6) and "signals" not in static.initial_states
    with torch.no_grad():  # the same main memory and read path: only where k, v, eta, alpha come from differs
        adaptive.initial_states["memory"]["w1"].copy_(static.initial_states["memory"]["w1"])
        adaptive.initial_states["memory"]["w2"].copy_(static.initial_states["memory"]["w2"])
        adaptive.w_q.weight.copy_(static.w_q.weight)
    difference = (static(x) - adaptive(x)).abs().max()
    assert difference > 1e-3, f"self-modification changed nothing ({float(difference):.2e})"


def test_stream_memory_starts_every_sample_from_the_mean_final_state_of_the_previous_training_minibatch():
    m = make_titans(0, self_modify=False, memory_loss="l2", memory_chunk_size=2, memory_scope="stream",
                    kernel_backend="reference")
    x1, x2 = torch.randn(3, 8, 6, dtype=torch.float64), torch.randn(2, 8, 6, dtype=torch.float64)
    S0 = m.initial_states["memory"]["S"].detach().clone()
    with torch.no_grad():
        m.train()
        m(x1)
        _, finals = reference_linear_titans(m, x1, final=True)
        carried = m.carried["memory"].S.clone()
        torch.testing.assert_close(carried, finals.mean(0) - S0)
        m.eval()
        torch.testing.assert_close(m(x2), reference_linear_titans(m, x2, start=S0 + carried))
        assert torch.equal(m.carried["memory"].S, carried)  # an evaluation reads the memory, never writes it
        m.reset_stream_memory()
        torch.testing.assert_close(m(x2), reference_linear_titans(m, x2))


def test_sample_scope_forgets_everything_between_minibatches():
    m = make_titans()
    x1, x2 = torch.randn(3, 8, 6, dtype=torch.float64), torch.randn(2, 8, 6, dtype=torch.float64)
    with torch.no_grad():
        alone = m(x2)
        m(x1)
        torch.testing.assert_close(m(x2), alone)
    assert len(m.carried) == 0


@pytest.mark.parametrize(("shape", "cms"), [((8, 8), {"hidden": 8, "periods": (1, 4)}), ((13,), None)])
def test_hope_classifier_tokenizes_images_by_row_and_tables_by_feature(shape, cms):
    torch.manual_seed(0)
    model = HOPEClassifier(shape, 3, 8, {"memory_hidden": 4}, cms, depth=2)
    out = model(torch.rand(5, *shape))
    assert out.shape == (5, 3) and torch.isfinite(out).all()
    tokens = model.tokenizer(torch.rand(5, *shape))
    assert tokens.shape == (5, shape[0], 8)


def test_eta_and_alpha_start_at_the_configured_values_and_stay_in_their_bounds():
    torch.manual_seed(0)
    m = SelfModifyingTitans(6, 5, memory_lr=0.3, memory_decay=0.1).double()
    src = torch.randn(2, 4, 6, dtype=torch.float64)
    eta, alpha = m.gates(src, src)
    torch.testing.assert_close(eta, torch.full_like(eta, 0.3))  # zero-initialised readouts
    torch.testing.assert_close(alpha, torch.full_like(alpha, 0.9))
    with torch.no_grad():
        m.eta_readout.weight.fill_(100.0)
        m.alpha_readout.weight.fill_(-100.0)
    eta, alpha = m.gates(src, src)
    assert (eta > 0).all() and (eta < 0.6 + 1e-12).all()  # (0, 2 memory_lr)
    assert (alpha > 0.8 - 1e-12).all() and (alpha <= 1.0).all()  # (1 - 2 memory_decay, 1]


def test_hope_gradients_stay_finite_on_a_table_with_zero_columns():
    """One-hot and missing-indicator columns are often 0: their tokens must not be all-zero vectors, where the
    L2 normalisation's gradient is unbounded (HOPE went NaN after one step on heart disease)."""
    torch.manual_seed(0)
    model = HOPEClassifier((6,), 2, 8, {"memory_hidden": 4}, {"hidden": 8, "periods": (1,)}, depth=1)
    x = torch.rand(4, 6)
    x[:, 3:] = 0.0
    torch.nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 0, 1])).backward()
    assert all(torch.isfinite(p.grad).all() and p.grad.abs().max() < 1e3 for p in model.parameters()
               if p.grad is not None)


def test_causal_conv_equals_a_left_padded_depthwise_conv1d_in_outputs_and_gradients():
    torch.manual_seed(0)
    conv = CausalConv(5, window=4).double()
    with torch.no_grad():
        conv.conv.weight.copy_(torch.randn_like(conv.conv.weight))
    x = torch.randn(3, 7, 5, dtype=torch.float64, requires_grad=True)
    want = conv.conv(F.pad(x.transpose(1, 2), (3, 0))).transpose(1, 2)  # sees x_t and its 3 predecessors only
    got = conv(x)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    w = torch.randn_like(want)
    for a, b in zip(torch.autograd.grad((got * w).sum(), [x, conv.conv.weight]),
                    torch.autograd.grad((want * w).sum(), [x, conv.conv.weight]), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert torch.equal(CausalConv(5)(x.detach().float()), x.detach().float())  # identity at initialisation
