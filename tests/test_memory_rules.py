"""Associative-memory learning rules against hand-computed values on tiny tensors."""

import math

import pytest
import torch

from nlbench.nn.memory import (
    GradFactors,
    MLPMemory,
    delta_update,
    dgd_effective_lr,
    dgd_l2_update,
    dgd_update,
    hebbian_update,
    mlp_memory_dgd_step,
    mlp_memory_dgd_step_factored,
    mlp_memory_l2_grad_factors,
    mlp_memory_l2_grads,
    mlp_memory_read,
    oja_update,
    read,
    softmax_memory,
)

T = lambda *rows: torch.tensor(rows, dtype=torch.float64)  # noqa: E731


def test_hebbian_adds_v_k_outer_product_and_never_erases():
    M = hebbian_update(torch.zeros(2, 2, dtype=torch.float64), T(1.0, 0.0), T(2.0, 3.0), 0.5)
    assert torch.equal(M, T([1.0, 0.0], [1.5, 0.0]))
    M = hebbian_update(torch.eye(2, dtype=torch.float64), T(1.0, 0.0), T(0.0, 2.0), 1.0)
    assert torch.equal(read(M, T(1.0, 0.0)), T(1.0, 2.0))  # old answer [1, 0] plus the new value


def test_delta_rule_writes_the_new_value_and_erases_the_old_one():
    k, k_other = T(1.0, 0.0), T(0.0, 1.0)
    M = delta_update(torch.eye(2, dtype=torch.float64), k, T(0.0, 2.0), 1.0)
    # M - (M k - v) k^T = I - [1, -2] [1, 0]^T
    assert torch.equal(M, T([0.0, 0.0], [2.0, 1.0]))
    assert torch.equal(read(M, k), T(0.0, 2.0))  # wrote v, the old [1, 0] is gone
    assert torch.equal(read(M, k_other), T(0.0, 1.0))  # an orthogonal key is untouched


def test_oja_rule_hebbian_growth_with_normalising_decay():
    # y = M k = 1; M + 0.1 (y k^T - y y^T M) = [1, 0] + 0.1 ([1, 1] - [1, 0])
    M = oja_update(T([1.0, 0.0]), T(1.0, 1.0), 0.1)
    assert torch.allclose(M, T([1.0, 0.1]))
    w = T([0.3, 0.4])
    for i in range(2000):  # converges to a unit vector (the principal direction), not unbounded growth
        w = oja_update(w, T(1.0, 0.0) if i % 2 else T(-1.0, 0.5), 0.05)
    assert w.norm().item() == pytest.approx(1.0, abs=1e-3)


def test_dgd_decays_along_k_by_eta_and_elsewhere_by_alpha_only():
    M = dgd_update(torch.eye(2, dtype=torch.float64), T(1.0, 0.0), torch.zeros(2, 2, dtype=torch.float64),
                   eta=0.5, alpha=0.9)
    assert torch.allclose(M, T([0.4, 0.0], [0.0, 0.9]))  # M (0.9 I - 0.5 k k^T): data-dependent decay
    M = dgd_update(torch.eye(2, dtype=torch.float64), T(0.0, 1.0), torch.ones(2, 2, dtype=torch.float64),
                   eta=0.5, alpha=1.0)
    assert torch.allclose(M, T([0.5, -0.5], [-0.5, 0.0]))  # I - 0.5 e2 e2^T - 0.5 * ones


def test_dgd_l2_gradient_is_taken_at_the_given_state():
    M, at, k, v = torch.eye(2, dtype=torch.float64), 2 * torch.eye(2, dtype=torch.float64), T(1.0, 0.0), T(0.0, 0.0)
    # grad at `at` = (at k - v) k^T = [[2, 0], [0, 0]]; M (I - 0.5 k k^T) - 0.5 grad
    assert torch.allclose(dgd_l2_update(M, k, v, 0.5, at=at), T([-0.5, 0.0], [0.0, 1.0]))
    assert torch.allclose(dgd_l2_update(M, k, v, 0.5), T([0.0, 0.0], [0.0, 1.0]))


@pytest.mark.parametrize("key_norm", [1.0, 2.0])
def test_eq57_closed_form_is_the_exact_proximal_regression_step(key_norm):
    g = torch.Generator().manual_seed(0)
    W, u = torch.randn(3, 4, generator=g, dtype=torch.float64), torch.randn(3, generator=g, dtype=torch.float64)
    x = torch.randn(4, generator=g, dtype=torch.float64)
    x = x / x.norm() * key_norm
    eta = 0.7
    # argmin_W 1/2 ||W x - u||^2 + 1/(2 eta) ||W - W_t||^2  =>  W (I + eta x x^T) = W_t + eta u x^T
    exact = torch.linalg.solve((torch.eye(4, dtype=torch.float64) + eta * torch.outer(x, x)).T,
                               (W + eta * torch.outer(u, x)).T).T
    eta_p = dgd_effective_lr(eta, key_norm)
    closed = W @ (torch.eye(4, dtype=torch.float64) - eta_p * torch.outer(x, x)) + eta_p * torch.outer(u, x)
    assert torch.allclose(closed, exact, atol=1e-12)
    if key_norm == 1.0:
        assert eta_p == pytest.approx(eta / (1 + eta))  # the paper's printed form


def test_softmax_memory_is_the_kernel_weighted_average_of_values():
    out = softmax_memory(T(1.0, 0.0), T([1.0, 0.0], [0.0, 1.0]), T([1.0], [3.0]))
    assert out.item() == pytest.approx((math.e * 1 + 3) / (math.e + 1))
    sharp = softmax_memory(T(1.0, 0.0), T([1.0, 0.0], [0.0, 1.0]), T([1.0], [3.0]), temperature=1e-3)
    assert sharp.item() == pytest.approx(1.0)  # nearest key wins as the temperature goes to 0


def _tiny_memory(batch=2, d=3, h=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return MLPMemory(torch.randn(batch, d, h, generator=g, dtype=torch.float64),
                     torch.randn(batch, h, d, generator=g, dtype=torch.float64)), g


def test_residual_mlp_memory_gradients_match_autograd_per_token():
    mem, g = _tiny_memory()
    k, v = (torch.randn(2, 5, 3, generator=g, dtype=torch.float64) for _ in range(2))
    grads = mlp_memory_l2_grads(mem, k, v)
    for b in range(2):
        for t in range(5):
            w1, w2 = mem.w1[b].clone().requires_grad_(), mem.w2[b].clone().requires_grad_()
            loss = 0.5 * (mlp_memory_read(MLPMemory(w1, w2), k[b, t]) - v[b, t]).pow(2).sum()
            g1, g2 = torch.autograd.grad(loss, (w1, w2))
            assert torch.allclose(grads.w1[b, t], g1) and torch.allclose(grads.w2[b, t], g2)


def test_residual_mlp_memory_is_identity_plus_mlp():
    mem, g = _tiny_memory(batch=1)
    x = torch.randn(1, 2, 3, generator=g, dtype=torch.float64)
    expected = x + torch.nn.functional.silu(x @ mem.w2[0].T) @ mem.w1[0].T
    assert torch.allclose(mlp_memory_read(mem, x), expected)


def test_deep_memory_dgd_step_decays_input_side_along_k_and_output_side_by_alpha():
    mem, g = _tiny_memory()
    k = torch.nn.functional.normalize(torch.randn(2, 3, generator=g, dtype=torch.float64), dim=-1)
    grads = MLPMemory(torch.randn_like(mem.w1), torch.randn_like(mem.w2))
    eta, alpha = T(0.1, 0.3), T(0.9, 0.99)
    new = mlp_memory_dgd_step(mem, k, grads, eta, alpha)
    for b in range(2):
        decay = alpha[b] * torch.eye(3, dtype=torch.float64) - eta[b] * torch.outer(k[b], k[b])
        assert torch.allclose(new.w2[b], mem.w2[b] @ decay - eta[b] * grads.w2[b])
        assert torch.allclose(new.w1[b], alpha[b] * mem.w1[b] - eta[b] * grads.w1[b])


def test_factored_dgd_step_equals_the_materialised_one():
    mem, g = _tiny_memory()
    k = torch.nn.functional.normalize(torch.randn(2, 1, 3, generator=g, dtype=torch.float64), dim=-1)
    v = torch.randn(2, 1, 3, generator=g, dtype=torch.float64)
    eta, alpha = T(0.2, 0.5), T(0.95, 0.9)
    full = mlp_memory_l2_grads(mem, k, v)
    factors = mlp_memory_l2_grad_factors(mem, k, v)
    a = mlp_memory_dgd_step(mem, k[:, 0], MLPMemory(full.w1[:, 0], full.w2[:, 0]), eta, alpha)
    b = mlp_memory_dgd_step_factored(mem, k[:, 0], GradFactors(*(f[:, 0] for f in factors)), eta, alpha)
    torch.testing.assert_close(a.w1, b.w1)
    torch.testing.assert_close(a.w2, b.w2)
