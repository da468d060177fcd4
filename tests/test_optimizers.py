"""Deep and meta optimizers: hand-computed first steps, convex problems, Algorithm 1, state_dict round-trips."""

import io
import math

import pytest
import torch
from torch import nn

from nlbench.optim import (
    DGD,
    M3,
    OPTIMIZERS,
    ContextSteered,
    DeepMomentum,
    DeltaMomentum,
    MetaOptimizer,
    Muon,
    build_optimizer,
    newton_schulz,
    reset_memory,
    resolve_options,
)
from nlbench.optim.newton_schulz import COEFFICIENTS

LR = {"sgd": 0.1, "adam": 0.05, "delta-momentum": 0.05, "deep-momentum": 0.05, "dgd": 0.3, "muon": 0.05,
      "m3": 0.01, "context-steered": 0.1, "meta-opt": 0.1}


def make(name: str, model: nn.Module, **hp) -> torch.optim.Optimizer:
    full = {"optimizer": name, "lr": LR[name], "momentum": 0.5, "weight_decay": 0.0,
            "optimizer_options": resolve_options(name, {"fallback_lr": 0.05} if name in ("muon", "m3") else {})}
    return build_optimizer(model.parameters(), {**full, **hp}, model)


def grad_step(p: torch.Tensor, opt: torch.optim.Optimizer, g) -> None:
    p.grad = torch.as_tensor(g, dtype=p.dtype).reshape(p.shape).clone()
    opt.step()


def problem(kind: str, n: int = 64, d: int = 6, k: int = 3):
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(n, d, generator=gen)
    if kind == "least-squares":
        Y = X @ torch.randn(d, k, generator=gen) + 0.1 * torch.randn(n, k, generator=gen)
        return X, Y, lambda out, y: 0.5 * (out - y).pow(2).sum(1).mean()
    y = (X @ torch.randn(d, k, generator=gen)).argmax(1)
    return X, y, nn.functional.cross_entropy


@pytest.mark.parametrize("kind", ["least-squares", "logistic"])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_every_optimizer_decreases_a_convex_loss(name, kind):
    torch.manual_seed(0)
    X, Y, loss_fn = problem(kind)
    model = nn.Linear(X.shape[1], 3)
    opt = make(name, model)
    with torch.no_grad():
        start = float(loss_fn(model(X), Y))
    for _ in range(150):
        opt.zero_grad()
        loss = loss_fn(model(X), Y)
        loss.backward()
        opt.step()
    with torch.no_grad():
        end = float(loss_fn(model(X), Y))
    assert math.isfinite(end) and end < 0.6 * start, (name, start, end)  # DGD decays weights: ~0.52


def test_delta_momentum_first_steps_by_hand():
    p = nn.Parameter(torch.zeros(2))
    opt = DeltaMomentum([p], lr=0.1, momentum=0.9)
    grad_step(p, opt, [0.5, 0.0])  # m1 = -0.1 g1
    assert p.tolist() == pytest.approx([-0.05, 0.0])
    grad_step(p, opt, [0.3, 0.4])  # m2 = 0.9 m1 - (m1 . g2) g2 - 0.1 g2, |g2|^2 = 0.25 <= alpha
    assert opt.state[p]["momentum_buffer"].tolist() == pytest.approx([-0.0705, -0.034])
    assert p.tolist() == pytest.approx([-0.1205, -0.034])


def test_delta_momentum_caps_the_erase_instead_of_flipping():
    p = nn.Parameter(torch.zeros(2))
    opt = DeltaMomentum([p], lr=0.1, momentum=0.9)
    grad_step(p, opt, [1.0, 1.0])
    g = torch.tensor([2.0, 0.0])  # |g|^2 = 4 > alpha: m's component along g is erased, then -lr g written
    grad_step(p, opt, g)
    m = opt.state[p]["momentum_buffer"]
    assert float(m @ g / g.norm()) == pytest.approx(-0.1 * 2.0)
    assert float(m[1]) == pytest.approx(0.9 * -0.1)


def test_deep_momentum_without_mlp_is_classic_momentum():
    torch.manual_seed(0)
    a, b = nn.Parameter(torch.randn(4, 3)), nn.Parameter(torch.randn(4, 3))
    with torch.no_grad():
        b.copy_(a)
    ours = DeepMomentum([a], lr=0.1, momentum=0.9, hidden=0)
    ref = torch.optim.SGD([b], lr=0.1, momentum=0.9)
    for _ in range(5):
        g = torch.randn(4, 3)
        grad_step(a, ours, g)
        grad_step(b, ref, g)
    assert torch.allclose(a, b, atol=1e-6)


def test_deep_momentum_first_step_by_hand():
    p = nn.Parameter(torch.zeros(2))
    opt = DeepMomentum([p], lr=0.1, momentum=0.9, hidden=1)
    opt.state[p].update(c=torch.zeros(2), w1=torch.tensor([2.0]), w2=torch.tensor([0.0]))
    grad_step(p, opt, [1.0, -1.0])
    # rms(u) = 1; dL2/dw2 = silu(2) - silu(-2) = 2, so w2 = -0.1 / 2 * 2 = -0.1; c = -0.1 u
    silu = torch.nn.functional.silu
    assert float(opt.state[p]["w2"]) == pytest.approx(-0.1)
    expected = [-0.1 - 0.1 * float(silu(torch.tensor(2.0))), 0.1 - 0.1 * float(silu(torch.tensor(-2.0)))]
    assert p.tolist() == pytest.approx(expected)


def test_dgd_step_by_hand_and_rules():
    model = nn.Sequential(nn.Linear(2, 1, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 0.0]]))
    opt = DGD(model.parameters(), model, lr=1.0)
    assert opt.rules == {"0.weight": "dgd"}
    out = model(torch.tensor([[2.0, 0.0]]))  # y = 2, loss = y^2 / 2, grad W = y x = [4, 0]
    (0.5 * out.pow(2).sum()).backward()
    opt.step()
    # eta' = 1 / 2; W (I - eta' xhat xhat^T) - eta' grad = [1, 0] - [0.5, 0] - [2, 0]
    assert model[0].weight.tolist() == [[-1.5, 0.0]]


def test_dgd_falls_back_to_sgd_and_says_so():
    model = nn.Sequential(nn.Linear(3, 2), nn.LayerNorm(2))
    opt = DGD(model.parameters(), model, lr=0.5)
    assert opt.rules == {"0.weight": "dgd", "0.bias": "sgd", "1.weight": "sgd", "1.bias": "sgd"}
    assert opt.describe() == "DGD on 1 linear weights (0.weight); SGD on 3 others"
    before = model[1].bias.detach().clone()
    model(torch.randn(4, 3)).sum().backward()
    grad = model[1].bias.grad.clone()
    opt.step()
    assert torch.allclose(model[1].bias, before - 0.5 / 1.5 * grad)


def test_newton_schulz_is_close_to_orthogonal():
    torch.manual_seed(0)
    G = torch.randn(32, 16, dtype=torch.float64)
    exact = newton_schulz(G, steps=40, kind="cubic")
    assert (exact.T @ exact - torch.eye(16, dtype=torch.float64)).norm() < 1e-6
    U, _, Vh = torch.linalg.svd(G, full_matrices=False)
    assert torch.allclose(exact, U @ Vh, atol=1e-6)
    fast = torch.linalg.svdvals(newton_schulz(G.float(), steps=5))  # Muon's quintic: singular values near 1
    assert fast.min() > 0.6 and fast.max() < 1.25


def _scalar_ns(x: float, norm: float, steps: int = 5) -> float:
    """Newton-Schulz on one diagonal entry: X X^T is diagonal, so the polynomial acts entry by entry."""
    a, b, c = COEFFICIENTS["quintic"]
    x /= norm
    for _ in range(steps):
        x = a * x + b * x**3 + c * x**5
    return x


def test_muon_first_step_by_hand():
    p = nn.Parameter(torch.zeros(2, 2))
    opt = Muon([p], lr=0.1, momentum=0.9, nesterov=True)
    grad_step(p, opt, [[3.0, 0.0], [0.0, 4.0]])  # update (1 + mu) g, normalised away by NS
    expected = [-0.1 * _scalar_ns(3.0, 5.0), -0.1 * _scalar_ns(4.0, 5.0)]
    assert torch.diagonal(p).tolist() == pytest.approx(expected, rel=1e-5)
    assert p[0, 1].item() == 0.0 and p[1, 0].item() == 0.0


def test_m3_follows_algorithm_1_as_printed():
    """decays = 1, no scale-free denominator: Algorithm 1 literally, on diagonal gradients."""
    p = nn.Parameter(torch.zeros(2, 2, dtype=torch.float64))
    lr, alpha, eps, (b1, b2, b3), f = 0.1, 0.5, 1e-8, (0.9, 0.5, 0.3), 2
    opt = M3([p], lr=lr, period=f, alpha=alpha, betas=(b1, b2, b3), decays=(1.0, 1.0, 1.0), eps=eps,
             scale_free=False)
    grads = [(1.0, 2.0), (3.0, -1.0), (0.5, 0.5)]
    theta, M1, M2, V, O2, chunk = [0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]
    for t, g in enumerate(grads, start=1):
        grad_step(p, opt, torch.diag(torch.tensor(g, dtype=torch.float64)))
        M1 = [m + b1 * gi for m, gi in zip(M1, g, strict=True)]
        V = [v + b2 * gi**2 for v, gi in zip(V, g, strict=True)]
        chunk = [c + gi for c, gi in zip(chunk, g, strict=True)]
        n1 = math.hypot(*M1)
        O1 = [_scalar_ns(m, n1) for m in M1]
        theta = [th - lr * (o1 + alpha * o2) / (math.sqrt(v) + eps)
                 for th, o1, o2, v in zip(theta, O1, O2, V, strict=True)]
        if t % f == 0:  # slow loop: M2 <- M2 + b3 * (sum of the chunk), O2 = NS(M2)
            M2 = [m + b3 * c for m, c in zip(M2, chunk, strict=True)]
            O2 = [_scalar_ns(m, math.hypot(*M2)) for m in M2]
            chunk = [0.0, 0.0]
        assert torch.diagonal(p).tolist() == pytest.approx(theta, rel=1e-6), t


def test_context_steered_first_steps_by_hand():
    p = nn.Parameter(torch.zeros(3))
    opt = ContextSteered(torch.optim.SGD([p], lr=0.1), precondition="adagrad")
    grad_step(p, opt, [0.2, -4.0, 0.0])  # g / sqrt(g^2) = sign(g)
    assert p.tolist() == pytest.approx([-0.1, 0.1, 0.0])
    q = nn.Parameter(torch.zeros(2, 2))
    outer = ContextSteered(torch.optim.SGD([q], lr=1.0), precondition="outer", eps=1e-12)
    grad_step(q, outer, [[2.0, 0.0], [0.0, 3.0]])  # L = R = diag(4, 9): L^-1/4 g R^-1/4 = I
    assert torch.allclose(q, -torch.eye(2), atol=1e-5)


def test_meta_optimizer_starts_at_its_settings_then_learns_within_bounds():
    torch.manual_seed(0)
    X, y, loss_fn = problem("logistic")
    model = nn.Linear(X.shape[1], 3)
    opt = MetaOptimizer(model.parameters(), lr=0.2, momentum=0.5, lr_bounds=(0.01, 0.4),
                        momentum_bounds=(0.1, 0.9), meta_lr=0.5)
    w0 = model.weight.detach().clone()
    loss_fn(model(X), y).backward()
    g0 = model.weight.grad.clone()
    opt.step()
    assert opt.meta["lr"] == pytest.approx(0.2, rel=1e-5)
    assert torch.allclose(model.weight, w0 - 0.2 * g0, atol=1e-6)  # first step: m = g
    seen = []
    for i in range(150):
        opt.zero_grad()
        loss = loss_fn(model(X[i % 4 * 16:(i % 4 + 1) * 16]), y[i % 4 * 16:(i % 4 + 1) * 16])
        loss.backward()
        opt.observe_loss(float(loss))
        opt.step()
        seen.append((opt.meta["lr"], opt.meta["momentum"], opt.meta["meta_grad_norm"]))
    assert seen[0][2] > 0  # the look-ahead meta-gradient reaches the controller
    assert all(0.01 <= lr <= 0.4 and 0.1 <= mu <= 0.9 for lr, mu, _ in seen), (min(seen), max(seen))
    assert len({round(lr, 6) for lr, _, _ in seen}) > 10  # the controller does move lr


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_state_dict_round_trip_continues_bit_identically(name):
    torch.manual_seed(0)
    X, Y, loss_fn = problem("least-squares")

    def model_and_opt():
        m = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))
        return m, make(name, m)

    def train(model, opt, steps, offset):
        for i in range(offset, offset + steps):
            xb, yb = X[i % 4 * 16:(i % 4 + 1) * 16], Y[i % 4 * 16:(i % 4 + 1) * 16]
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            if hasattr(opt, "observe_loss"):
                opt.observe_loss(float(loss))
            opt.step()

    model_a, opt_a = model_and_opt()
    train(model_a, opt_a, 7, 0)
    buf = io.BytesIO()
    torch.save({"model": model_a.state_dict(), "opt": opt_a.state_dict()}, buf)
    buf.seek(0)
    saved = torch.load(buf, weights_only=True)  # what load_state does with a file from a tracking server
    model_b, opt_b = model_and_opt()
    model_b.load_state_dict(saved["model"])
    opt_b.load_state_dict(saved["opt"])
    train(model_a, opt_a, 5, 7)
    train(model_b, opt_b, 5, 7)
    for pa, pb in zip(model_a.parameters(), model_b.parameters(), strict=True):
        assert torch.equal(pa, pb), name


def test_reset_memory_forgets_momenta_but_keeps_the_learned_controller():
    p = nn.Parameter(torch.zeros(3))
    sgd = torch.optim.SGD([p], lr=0.1, momentum=0.9)
    grad_step(p, sgd, [1.0, 2.0, 3.0])
    assert sgd.state[p]
    reset_memory(sgd)
    assert not sgd.state
    meta = MetaOptimizer([p], lr=0.1, momentum=0.5)
    grad_step(p, meta, [1.0, 2.0, 3.0])
    grad_step(p, meta, [1.0, 1.0, 1.0])
    weight = meta.meta["weight"].clone()
    reset_memory(meta)
    assert p not in meta.state and meta.meta["features"] is None and torch.equal(meta.meta["weight"], weight)


def _proximal_argmin(W, U, X, lr):
    """argmin_W' 1/2 mean_b |W' x_b - u_b|^2 + 1/(2 lr) |W' - W|^2 (Eq. 56 for a batch), solved exactly."""
    A = X.T @ X / len(X)
    B = U.T @ X / len(X)
    return (W / lr + B) @ torch.linalg.inv(torch.eye(W.shape[1], dtype=W.dtype) / lr + A)


def test_dgd_step_is_the_exact_proximal_argmin_for_one_unit_sample():
    from nlbench.optim.dgd import dgd_step

    g = torch.Generator().manual_seed(0)
    W = torch.randn(3, 4, generator=g, dtype=torch.float64)
    x = torch.nn.functional.normalize(torch.randn(1, 4, generator=g, dtype=torch.float64), dim=1)
    u = torch.randn(1, 3, generator=g, dtype=torch.float64)  # u = -dL/dy, so grad_W L = -u x^T
    for lr in (0.1, 1.0, 5.0):
        torch.testing.assert_close(dgd_step(W, -u.T @ x, x, lr), _proximal_argmin(W, u, x, lr))


def test_dgd_batch_step_is_first_order_close_to_the_exact_batch_argmin():
    from nlbench.optim.dgd import dgd_step

    g = torch.Generator().manual_seed(1)
    W = torch.randn(3, 4, generator=g, dtype=torch.float64)
    X = torch.nn.functional.normalize(torch.randn(8, 4, generator=g, dtype=torch.float64), dim=1)
    U = torch.randn(8, 3, generator=g, dtype=torch.float64)
    errors = [float((dgd_step(W, -U.T @ X / 8, X, lr) - _proximal_argmin(W, U, X, lr)).norm()) for lr in (0.1, 0.01)]
    assert errors[1] < errors[0] / 50, errors  # O(lr^2): ten times smaller lr, about a hundred times smaller error


def test_dgd_in_a_slow_level_decays_by_the_sum_of_its_chunks_like_its_gradient():
    """Eq. 71 sums C minibatch gradients; the DGD decay sums the C minibatch means of x x^T with them."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 2, bias=False)).double()
    opt = DGD(model.parameters(), model, lr=0.5)
    W0 = model[0].weight.detach().clone()
    xs = [torch.randn(5, 4, dtype=torch.float64) for _ in range(3)]
    for x in xs:  # three forwards accumulate, as a level of period 3 does between its boundaries
        model(x).pow(2).sum().backward()
    grad = model[0].weight.grad.clone()
    opt.step()
    eta = 0.5 / 1.5
    decay = sum(torch.nn.functional.normalize(x, dim=1).T @ torch.nn.functional.normalize(x, dim=1) / 5 for x in xs)
    torch.testing.assert_close(model[0].weight.detach(), W0 - eta * W0 @ decay - eta * grad)
