"""One strategy per deep/meta optimizer: naive fine-tuning of the MLP with that optimizer (family `nested`).

Each optimizer module of `nlbench.optim` that declares `strategy` defaults in its `OptimizerSpec` gets its
strategy here, under the optimizer's name: a new optimizer needs no strategy module of its own.
"""

from nlbench.core.registry import register_strategy
from nlbench.core.spaces import Float
from nlbench.methods.avalanche import AvalancheMethod
from nlbench.optim.catalog import OPTIMIZERS, OptimizerSpec


def optimizer_strategy(spec: OptimizerSpec) -> type[AvalancheMethod]:
    """The AvalancheMethod whose only change from `naive` is the optimizer and its defaults."""
    cls_name = "".join(part.capitalize() for part in spec.name.split("-")) + "Strategy"
    # a momentum optimizer's momentum is searched by `nlbench tune` next to the learning rate
    spaces = {"momentum": Float(0.5, 0.99)} if spec.strategy.get("momentum", 0.0) > 0 else {}
    return type(cls_name, (AvalancheMethod,), {
        "__doc__": f"Naive fine-tuning trained by {spec.summary}.", "__module__": __name__,
        "NAME": spec.name, "FAMILY": "nested", "DEFAULTS": {"optimizer": spec.name, **spec.strategy},
        "SPACES": spaces})


for _spec in OPTIMIZERS.values():
    if _spec.strategy is not None:
        register_strategy(optimizer_strategy(_spec))
