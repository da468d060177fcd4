"""Every Nested Learning model and optimizer keeps its tensors on the device of its parameters and inputs. Checked
on PyTorch's meta device (shapes only: no data, no GPU): a tensor made on the CPU inside a forward, backward or
update cannot combine with meta tensors and fails. This is what a `device = "cuda"` run asks of the code; the
GPU itself is not exercised here."""

import pytest
import torch
from torch.nn import functional as F

from nlbench.core.registry import SCENARIOS, get_method, method_names

NESTED = [name for name in method_names() if get_method(name).FAMILY == "nested"]
# Their updates read scalars on the host (`float(tensor)`: a sync per step on CUDA), which a meta tensor cannot give.
HOST_SCALARS = {"delta-momentum", "meta-opt"}
MEMORY_VARIANTS = [{"memory_impl": "materialised"}, {"memory_scope": "stream"},
                   {"memory_hidden": 0, "self_modify": False}]  # the last: the delta-rule kernel's reference path


@pytest.fixture(scope="module")
def digits():
    return SCENARIOS.get("split-digits")().build(0)


def test_every_nested_method_is_checked():
    assert {"cms", "hope", "titans", "hope-flat", "m3", "dgd"} <= set(NESTED)


@pytest.mark.parametrize("name", NESTED)
def test_a_training_step_stays_on_the_device_of_the_model(name, digits):
    method = get_method(name)
    for extra in [{}] + (MEMORY_VARIANTS if "memory_impl" in method.params() else []):
        hp = method().for_stream(method.resolve(extra), digits)
        model = method().build_model(hp, digits.info).to("meta")
        optimizer = method().make_optimizer(model, hp)
        x = torch.randn(4, *digits.info.input_shape, device="meta")
        loss = F.cross_entropy(model(x), torch.zeros(4, dtype=torch.long, device="meta"))
        loss.backward()
        assert loss.device.type == "meta", extra
        assert all(p.grad.device.type == "meta" for p in model.parameters() if p.grad is not None), extra
        if name not in HOST_SCALARS:
            optimizer.step()
        model.eval()
        assert model(x).device.type == "meta", extra
