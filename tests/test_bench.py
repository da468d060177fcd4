"""The overhead benchmark's reference loop is a real training loop, comparable to the harness."""

import re

import numpy as np

from nlbench.bench.overhead import plain_torch_naive
from nlbench.cli import ExitCode, main
from nlbench.core.registry import SCENARIOS, get_method


def test_plain_reference_learns_each_experience_and_forgets_like_naive():
    data = SCENARIOS.get("split-digits")(n_experiences=2).build(0)
    hp = get_method("naive").resolve({"epochs": 4, "hidden_sizes": [32]})
    R = plain_torch_naive(data, hp, seed=0)
    assert R.shape == (2, 2)
    assert R[0, 0] > 0.8 and R[1, 1] > 0.8  # learns what it is trained on
    assert R[1, 0] < R[0, 0]  # class-incremental fine-tuning forgets
    assert np.all((R >= 0) & (R <= 1))


def test_bench_rejects_bad_repeats(capsys):
    assert main(["bench", "overhead", "--repeats", "0"]) == ExitCode.USAGE_ERROR
    assert "--repeats must be >= 1" in capsys.readouterr().err


def test_matched_mlp_has_about_the_requested_parameter_count():
    from nlbench.bench.step import mlp_matching
    from nlbench.nn import MLP

    for target in (5_000, 25_228, 100_000):
        hidden = mlp_matching(target, 64, 10)
        n = sum(p.numel() for p in MLP(64, hidden, 10).parameters())
        assert abs(n - target) / target < 0.02, (target, hidden, n)


def test_step_cost_table_has_one_row_per_method_with_a_ratio():
    from nlbench.bench.step import step_cost

    table = step_cost(methods=("cms", "titans"), repeats=2)
    rows = [line for line in table.splitlines() if line.startswith("| cms") or line.startswith("| titans")]
    cells = [row.split(" | ") for row in rows]
    assert len(rows) == 2 and all(c[6].endswith("x") and c[12].endswith("x") and c[15].endswith("x |")
                                  for c in cells)
    assert cells[0][7:11] == ["-"] * 4 and cells[1][8].endswith("x") and cells[1][10].endswith("x")  # titans: 3 paths
    # its memories' arithmetic, counted on the factored path (the kernel's is invisible to torch): many times an
    # MLP of its size
    assert float(cells[1][12].rstrip("x")) > 5


def test_step_cost_runs_every_step_on_the_device_asked_for():
    """On PyTorch's meta device, where a tensor left on the CPU fails: what `--device cuda` asks of the code."""
    from nlbench.bench.step import step_cost

    table = step_cost(methods=("titans",), repeats=1, device="meta")
    assert "on device meta" in table and "| titans |" in table


def test_step_flops_counts_a_linear_layer_forward_and_backward_by_hand():
    import torch

    from nlbench.bench.step import step_flops

    layer, x = torch.nn.Linear(8, 3, bias=False), torch.randn(5, 8)
    # forward 2*5*8*3; backward: the weight's gradient only (x needs none), 2*5*8*3 again
    assert step_flops(lambda: layer(x).sum().backward()) == 2 * (2 * 5 * 8 * 3)


def test_the_equal_flop_mlp_does_about_the_asked_arithmetic():
    from nlbench.bench.step import mlp_of_flops, step_flops
    from nlbench.bench.timing import scenario_data, step_timer
    from nlbench.core.registry import get_method

    data = scenario_data("split-digits", 0)
    for target in (2_000_000, 20_000_000):
        hidden = mlp_of_flops(target, data, 32)
        got = step_flops(step_timer("naive", get_method("naive").resolve({"hidden_sizes": hidden}), data, 32)[0])
        assert abs(got - target) / target < 0.02, (target, hidden, got)


def test_optimizer_cost_times_every_optimizer_against_sgd_and_adam():
    from nlbench.bench.optimizers import optimizer_cost

    table = optimizer_cost(methods=("dgd", "m3"), repeats=3, scenario="split-digits")
    rows = [line.split("|")[1].strip() for line in table.splitlines() if line.startswith("| ")]
    assert rows == ["optimizer", "---", "sgd (torch)", "adam (torch)", "dgd", "m3"]
    assert "| sgd (torch) |" in table and "| 1.00x |" in table


def test_kernel_cost_times_numba_against_the_reference_in_one_table():
    from nlbench.bench.kernels import kernel_cost

    table = kernel_cost(lengths=(3,), dims=(4,), batch=1, heads=1, repeats=1, end_to_end=False)
    rows = [line for line in table.splitlines() if line.startswith("| 1 | 1 | 3 | 4 |")]
    assert len(rows) == 2 and all(row.endswith("x |") for row in rows) and "JIT compile" in table
    assert "| Eq. 92 |" in rows[0] and "| Eq. 93, chunk 4 |" in rows[1]
    assert "| 32 | 1 | 8 | 32 | Eq. 92 |" in table  # the size HOPE runs at on digits
    mlp_memory = [line for line in table.splitlines() if re.match(r"\| \d+ \| 3 \| 2 \|", line)]  # MLP memories
    assert len(mlp_memory) == 2 and all(len(r.split(" | ")) == 7 and r.endswith("x |") for r in mlp_memory)
    assert mlp_memory[0].startswith("| 1 | 3 | 2 |")  # one thread first, then this process's threads


def test_hope_epoch_with_kernels_off_never_calls_the_kernel_and_on_does(monkeypatch):
    from nlbench.bench.kernels import LINEAR_HOPE, hope_epoch_cost, with_backend
    from nlbench.bench.timing import epoch_timer
    from nlbench.kernels import numba_delta

    calls = []
    real = numba_delta.delta_rule_numba
    monkeypatch.setattr(numba_delta, "delta_rule_numba", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    data = SCENARIOS.get("permuted-digits")(n_experiences=2).build(0)
    epoch = epoch_timer("hope", get_method("hope").resolve({**LINEAR_HOPE, "batch_size": 512}), data)
    with_backend("reference", epoch)()
    assert calls == []
    with_backend("auto", epoch)()
    assert len(calls) == 3  # one kernel call per batch of the epoch (1437 samples)
    lines = hope_epoch_cost(repeats=1, warmup=0)
    assert [line.split("|")[1].strip() for line in lines if line.startswith("| linear")] == [
        "linear memory, L2 loss (Eq. 93)", "linear memory, dot-product loss (Eq. 92)"]
    assert all(line.endswith("x |") for line in lines if line.startswith("| linear"))


def test_startup_table_times_each_command_against_a_bare_interpreter():
    from nlbench.bench.startup import startup

    table = startup(repeats=1)
    rows = [row for row in table.splitlines() if row.startswith("| ") and not row.startswith(("| command", "| ---"))]
    assert rows[0].startswith("| python -c pass (reference)") and rows[0].endswith("| 1.0x |")
    assert any(row.startswith("| nlbench list |") for row in rows) and len(rows) == 7
