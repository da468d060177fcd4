"""Elastic Weight Consolidation (Kirkpatrick et al. 2017).

Avalanche estimates the Fisher as the mean over minibatches of the squared minibatch gradient with the true
labels: about 1/batch of the per-sample Fisher once the gradient's mean is small, so its lambda is not the
papers' lambda. `fisher = "sample"` uses the per-sample Fisher of Kirkpatrick et al. and van de Ven & Tolias:
squared gradients of single samples at the model's predicted label, averaged over the experience.
"""

from collections.abc import Mapping
from typing import Any

import torch

from nlbench.core.params import NON_NEGATIVE, Interval, Options, Param
from nlbench.core.registry import register_baseline
from nlbench.core.spaces import Float
from nlbench.data.scenario import ScenarioInfo
from nlbench.methods.avalanche import AvalancheMethod

FISHER_CHUNK = 256  # samples per backward of the Fisher estimate


def _forward(model: torch.nn.Module, x: torch.Tensor, task_labels: torch.Tensor) -> torch.Tensor:
    from avalanche.models import MultiTaskModule

    return model(x, task_labels) if isinstance(model, MultiTaskModule) else model(x)


def _predicted_label_loss(logits: torch.Tensor) -> torch.Tensor:
    """Summed over the rows, so each row's gradient is its own: -log p(predicted label | x)."""
    return torch.nn.functional.cross_entropy(logits, logits.argmax(dim=1).detach(), reduction="sum")


def sample_fisher_reference(model: torch.nn.Module, x: torch.Tensor,
                            task_labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """Sum over the rows of x of each parameter's squared per-sample gradient (one backward per row)."""
    params = {k: p for k, p in model.named_parameters() if p.requires_grad}
    total = {k: torch.zeros_like(p) for k, p in params.items()}
    for i in range(len(x)):
        grads = torch.autograd.grad(_predicted_label_loss(_forward(model, x[i:i + 1], task_labels[i:i + 1])),
                                    list(params.values()))
        for k, g in zip(params, grads, strict=True):
            total[k] += g.pow(2)
    return total


def sample_fisher(model: torch.nn.Module, x: torch.Tensor, task_labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """`sample_fisher_reference` in one backward: a Linear layer's per-sample weight gradient is the outer product
    delta_i a_i^T of its output gradient and input, so the sum of its squares is (delta^2)^T (a^2). Models with
    parameters outside Linear layers take the reference path."""
    linears = {name: m for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    owned = {f"{name}.{p}" for name, m in linears.items() for p, _ in m.named_parameters(recurse=False)}
    params = {k: p for k, p in model.named_parameters() if p.requires_grad}
    if not set(params) <= owned:
        return sample_fisher_reference(model, x, task_labels)
    inputs: dict[str, torch.Tensor] = {}
    outputs: dict[str, torch.Tensor] = {}

    def keep(name: str) -> Any:
        def hook(module: torch.nn.Module, args: tuple, out: torch.Tensor) -> None:
            inputs[name] = args[0].detach()
            out.retain_grad()
            outputs[name] = out
        return hook

    handles = [m.register_forward_hook(keep(name)) for name, m in linears.items()]
    try:
        _predicted_label_loss(_forward(model, x, task_labels)).backward()
    finally:
        for h in handles:
            h.remove()
    total = {}
    for name, m in linears.items():
        delta2, a2 = outputs[name].grad.pow(2), inputs[name].pow(2)
        total[f"{name}.weight"] = delta2.T @ a2
        if m.bias is not None:
            total[f"{name}.bias"] = delta2.sum(dim=0)
    model.zero_grad(set_to_none=True)
    return {k: total[k] for k in params}


def ewc_plugin(hp: Mapping[str, Any]) -> Any:
    from avalanche.training.plugins import EWCPlugin
    from avalanche.training.utils import zerolike_params_dict

    class SampleFisherEWC(EWCPlugin):
        def compute_importances(self, model: Any, criterion: Any, optimizer: Any, dataset: Any, device: Any,
                                batch_size: int, num_workers: int = 0) -> Any:
            model.eval()
            importances, n = zerolike_params_dict(model), 0
            loader = torch.utils.data.DataLoader(dataset, batch_size=FISHER_CHUNK,
                                                 collate_fn=getattr(dataset, "collate_fn", None))
            for batch in loader:
                x, t = batch[0].to(device), batch[-1].to(device)
                for k, total in sample_fisher(model, x, t).items():
                    importances[k].data += total
                n += len(x)
            for imp in importances.values():
                imp.data /= max(n, 1)
            model.train()
            return importances

    plugin = SampleFisherEWC if hp["fisher"] == "sample" else EWCPlugin
    return plugin(ewc_lambda=hp["ewc_lambda"], mode=hp["ewc_mode"],
                  decay_factor=hp["decay_factor"] if hp["ewc_mode"] == "online" else None)


@register_baseline
class EWC(AvalancheMethod):
    """Quadratic penalty on parameters weighted by their Fisher information from earlier experiences."""

    NAME = "ewc"
    PARAMS = {
        "ewc_lambda": Param(100.0, NON_NEGATIVE, "weight of the Fisher penalty", Float(0.1, 1e4, log=True)),
        "ewc_mode": Param("separate", Options(("separate", "online")), "one penalty per past experience, or one "
                                                                       "running penalty (online EWC)"),
        "decay_factor": Param(0.9, Interval(float, 0.0, 1.0), "decay of the running Fisher (online mode only)"),
        "fisher": Param("batch", Options(("batch", "sample")), "Fisher estimate: Avalanche's squared minibatch "
                                                               "gradients, or per-sample at the predicted label"),
    }

    def plugins(self, hp: Mapping[str, Any], info: ScenarioInfo) -> list[Any]:
        return [ewc_plugin(hp)]
