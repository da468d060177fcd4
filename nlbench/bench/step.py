"""`nlbench bench step`: one training step (forward, backward, optimizer/level schedule) of each Nested Learning
strategy, against naive fine-tuning of an MLP with about the same number of parameters."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from nlbench.bench.timing import interleaved_medians, machine_line, scenario_data, step_timer
from nlbench.core.registry import get_method
from nlbench.methods.models import input_features, trainable_params
from nlbench.run.execute import seed_everything


def mlp_matching(n_params: int, in_features: int, n_classes: int) -> list[int]:
    """Two equal hidden layers whose MLP has about `n_params` parameters (w^2 + (in + out + 2) w + out)."""
    b = in_features + n_classes + 2
    width = round((-b + math.sqrt(b * b + 4 * (n_params - n_classes))) / 2)
    return [max(width, 1)] * 2


def step_flops(step: Callable[[], None]) -> int:
    """Floating-point operations of one training step, as torch's FlopCounterMode counts them: the matrix
    products (mm, bmm, addmm, convolutions) forward and backward; elementwise ops are not counted."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()


def step_cost(methods: Sequence[str] = ("cms", "hope", "titans"), repeats: int = 100,
              scenario: str = "split-digits", seed: int = 0) -> str:
    """Markdown table: median time of one training step per method and of a parameter-matched naive MLP; a
    method with self-modifying memories also on its materialised (reference) path, timed alongside. The
    arithmetic of each step is counted too, and an MLP doing as much arithmetic per step is timed alongside:
    it separates what the method computes from how fast it computes it."""
    data = scenario_data(scenario, seed)
    naive = get_method("naive")
    rows = []
    for name in methods:
        method = get_method(name)
        hp = method.resolve()
        seed_everything(seed)
        step, model = step_timer(name, hp, data, hp["batch_size"])
        n_params = trainable_params(model)
        in_features, n_classes = input_features(data.info), data.info.n_classes
        hidden = mlp_matching(n_params, in_features, n_classes)
        ref_step, ref_model = step_timer("naive", naive.resolve({"hidden_sizes": hidden}), data, hp["batch_size"])
        flops, ref_flops = step_flops(step), step_flops(ref_step)
        # an MLP's step costs the same FLOPs per parameter at any width: scale its parameters by the FLOP ratio
        equal = mlp_matching(round(trainable_params(ref_model) * flops / ref_flops), in_features, n_classes)
        equal_step, _ = step_timer("naive", naive.resolve({"hidden_sizes": equal}), data, hp["batch_size"])
        steps = [step, ref_step, equal_step]
        if "memory_impl" in method.params():
            seed_everything(seed)
            steps.append(step_timer(name, method.resolve({"memory_impl": "materialised"}), data,
                                    hp["batch_size"])[0])
        t, t_ref, t_equal, *t_mat = interleaved_medians(steps, repeats)
        rows.append((name, n_params, t, hidden, trainable_params(ref_model), t_ref, t_mat[0] if t_mat else None,
                     flops / ref_flops, equal, step_flops(equal_step), t_equal))
    lines = [
        f"Cost of one training step (forward + backward + update, batch {naive.resolve()['batch_size']}, "
        f"{scenario}, method defaults) against naive fine-tuning of an MLP with about as many parameters; "
        f"median of {repeats} steps after 5 warm-up steps, all timed alternately in one process. "
        "`materialised`: the same method with `memory_impl = materialised`, the token-by-token path it had before "
        "the factored memories (same numbers up to float rounding).",
        "",
        "Arithmetic: `FLOP ratio` is the method's matrix-product FLOPs per step over the parameter-matched MLP's "
        "(torch's FlopCounterMode, forward and backward). A self-modifying memory applies each of its weights "
        "to every token several times over (reads, targets, inner gradients), so a method can cost many times "
        "an MLP of its size by arithmetic alone. `equal-FLOP MLP`: an MLP whose step does as many FLOPs as the "
        "method's, timed alongside; the last column is the method's time over that MLP's.",
        machine_line(),
        "Regenerate: `nlbench bench step --out results/step_cost.md`",
        "",
        "| method | params | ms/step | matched MLP | MLP params | MLP ms/step | ratio | materialised ms/step | "
        "materialised ratio | FLOP ratio | equal-FLOP MLP | MFLOP/step | its ms/step | vs equal-FLOP MLP |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |",
    ]
    for name, n, t, hidden, n_ref, t_ref, t_mat, ratio, equal, equal_flops, t_equal in rows:
        mat = f"{t_mat * 1e3:.2f} | {t_mat / t_ref:.1f}x" if t_mat is not None else "- | -"
        lines.append(f"| {name} | {n} | {t * 1e3:.2f} | {hidden} | {n_ref} | {t_ref * 1e3:.2f} | {t / t_ref:.1f}x "
                     f"| {mat} | {ratio:.1f}x | {equal} | {equal_flops / 1e6:.1f} | {t_equal * 1e3:.2f} | "
                     f"{t / t_equal:.1f}x |")
    return "\n".join(lines)
