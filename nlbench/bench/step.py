"""`nlbench bench step`: one training step (forward, backward, optimizer/level schedule) of each Nested Learning
strategy, against naive fine-tuning of an MLP with about the same number of parameters."""

from __future__ import annotations

import math
from collections.abc import Sequence

from nlbench.bench.timing import interleaved_medians, machine_line, scenario_data, step_timer
from nlbench.core.registry import get_method
from nlbench.methods.models import input_features, trainable_params
from nlbench.run.execute import seed_everything


def mlp_matching(n_params: int, in_features: int, n_classes: int) -> list[int]:
    """Two equal hidden layers whose MLP has about `n_params` parameters (w^2 + (in + out + 2) w + out)."""
    b = in_features + n_classes + 2
    width = round((-b + math.sqrt(b * b + 4 * (n_params - n_classes))) / 2)
    return [max(width, 1)] * 2


def step_cost(methods: Sequence[str] = ("cms", "hope", "titans"), repeats: int = 100,
              scenario: str = "split-digits", seed: int = 0) -> str:
    """Markdown table: median time of one training step per method and of a parameter-matched naive MLP; a
    method with self-modifying memories also on its materialised (reference) path, timed alongside."""
    data = scenario_data(scenario, seed)
    rows = []
    for name in methods:
        method = get_method(name)
        hp = method.resolve()
        seed_everything(seed)
        step, model = step_timer(name, hp, data, hp["batch_size"])
        n_params = trainable_params(model)
        hidden = mlp_matching(n_params, input_features(data.info), data.info.n_classes)
        ref_step, ref_model = step_timer("naive", get_method("naive").resolve({"hidden_sizes": hidden}), data,
                                          hp["batch_size"])
        steps = [step, ref_step]
        if "memory_impl" in method.params():
            seed_everything(seed)
            steps.append(step_timer(name, method.resolve({"memory_impl": "materialised"}), data,
                                    hp["batch_size"])[0])
        t, t_ref, *t_mat = interleaved_medians(steps, repeats)
        rows.append((name, n_params, t, hidden, trainable_params(ref_model), t_ref, t_mat[0] if t_mat else None))
    lines = [
        f"Cost of one training step (forward + backward + update, batch {get_method('naive').resolve()['batch_size']}, "
        f"{scenario}, method defaults) against naive fine-tuning of an MLP with about as many parameters; "
        f"median of {repeats} steps after 5 warm-up steps, all timed alternately in one process. "
        "`materialised`: the same method with `memory_impl = materialised`, the token-by-token path it had before "
        "the factored memories (same numbers up to float rounding).",
        machine_line(),
        "Regenerate: `nlbench bench step --out results/step_cost.md`",
        "",
        "| method | params | ms/step | matched MLP | MLP params | MLP ms/step | ratio | materialised ms/step | "
        "materialised ratio |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, n, t, hidden, n_ref, t_ref, t_mat in rows:
        mat = f"{t_mat * 1e3:.2f} | {t_mat / t_ref:.1f}x" if t_mat is not None else "- | -"
        lines.append(f"| {name} | {n} | {t * 1e3:.2f} | {hidden} | {n_ref} | {t_ref * 1e3:.2f} | {t / t_ref:.1f}x "
                     f"| {mat} |")
    return "\n".join(lines)
