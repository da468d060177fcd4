"""`nlbench bench optimizers`: one training step of the MLP under each deep/meta optimizer, against torch's SGD
and Adam. The optimizers are those of the catalog that have a strategy."""

from __future__ import annotations

from collections.abc import Sequence

from nlbench.bench.timing import interleaved_medians, machine_line, scenario_data, step_timer
from nlbench.core.registry import get_method
from nlbench.optim.catalog import OPTIMIZERS
from nlbench.run.execute import seed_everything


def optimizer_methods() -> tuple[str, ...]:
    return tuple(name for name, spec in OPTIMIZERS.items() if spec.strategy is not None)


def optimizer_cost(methods: Sequence[str] | None = None, repeats: int = 200,
                   scenario: str = "permuted-digits", seed: int = 0) -> str:
    """Markdown table: one training step of the MLP under each optimizer, against torch's SGD and Adam."""
    data = scenario_data(scenario, seed)
    naive = get_method("naive")
    variants = [("sgd (torch)", "naive", naive.resolve()),
                ("adam (torch)", "naive", naive.resolve({"optimizer": "adam", "lr": 0.001}))]
    variants += [(name, name, get_method(name).resolve()) for name in methods or optimizer_methods()]
    steps = []
    for _, method_name, hp in variants:
        seed_everything(seed)
        steps.append(step_timer(method_name, hp, data, hp["batch_size"])[0])
    times = interleaved_medians(steps, repeats)
    hp = naive.resolve()
    lines = [
        f"Cost of one training step (forward + backward + optimizer step) of the MLP {hp['hidden_sizes']} on "
        f"{scenario} (batch {hp['batch_size']}) under each optimizer, each strategy's defaults; median of "
        f"{repeats} steps after 5 warm-up steps, all timed in turn in one process.",
        machine_line(),
        "Regenerate: `nlbench bench optimizers --out results/optimizer_cost.md`",
        "",
        "| optimizer | ms/step | vs SGD | vs Adam |",
        "| --- | ---: | ---: | ---: |",
    ]
    for (name, _, _), t in zip(variants, times, strict=True):
        lines.append(f"| {name} | {t * 1e3:.3f} | {t / times[0]:.2f}x | {t / times[1]:.2f}x |")
    return "\n".join(lines)


