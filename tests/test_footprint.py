"""The method's own memory (nlbench.run.footprint) against hand-counted bytes, and as runs record it."""

import numpy as np
import pytest
import torch

from nlbench.run.footprint import Footprint, footprint_mb


def test_each_buffer_counts_once_and_the_streams_data_not_at_all():
    data = torch.zeros(100, 10)  # 4000 bytes of the stream
    a = torch.zeros(50)  # 200 bytes
    state = {"a": a, "view_of_a": a[10:], "again": [a, (a,)], "numpy_of_a": a.numpy(),
             "replay_view": data[:20], "numpy_view": data.numpy()[5:], "own": np.zeros(8)}
    assert Footprint([data]).measure(state) == 200 + 64


def test_parts_are_counted_in_order_and_adam_keeps_two_moments():
    torch.manual_seed(0)
    model = torch.nn.Linear(10, 4)  # 44 float32 parameters = 176 bytes
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.randn(3, 10)).sum().backward()
    optimizer.step()
    sizes = footprint_mb({"model": model, "optimizer": optimizer}, [])
    assert sizes["model"] * 2**20 == 2 * 176  # parameters and their gradients
    assert sizes["optimizer"] * 2**20 == 2 * 176 + 2 * 4  # exp_avg, exp_avg_sq, and a step count per tensor
    assert sizes["total"] == sizes["model"] + sizes["optimizer"]


@pytest.mark.parametrize(("method", "has_state"), [("naive", False), ("ewc", True), ("replay", True)])
def test_a_run_records_its_memory_by_part(method, has_state):
    from nlbench.core.registry import SCENARIOS, get_method
    from nlbench.run.config import RunConfig
    from nlbench.run.execute import execute_run

    options = SCENARIOS.get("split-digits")(n_experiences=2).options
    hp = get_method(method).resolve({"epochs": 1})
    result = execute_run(RunConfig("mem", "split-digits", "split-digits", options, method, method, hp, 0))
    assert result.ok, result.traceback
    mem = result.memory
    assert mem["state"] == pytest.approx(mem["model"] + mem["optimizer"] + mem["method"])
    assert mem["model"] >= result.n_params * 4 / 2**20  # float32 parameters at least
    assert (mem["method"] > 0) == has_state
    assert mem["rss_increase"] >= 0
