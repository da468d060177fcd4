"""`nlbench bench step`: one training step (forward, backward, optimizer/level schedule) of each Nested Learning
strategy, against naive fine-tuning of an MLP with about the same number of parameters."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

from nlbench.bench.timing import interleaved_medians, machine_line, scenario_data, step_timer
from nlbench.core.registry import get_method
from nlbench.data.scenario import ScenarioData
from nlbench.methods.models import input_features, trainable_params
from nlbench.run.execute import seed_everything

# the other `memory_impl`s timed beside a method's default (`auto`: on CPU at batch 32 the numba kernel, on CUDA the
# factored path), per device type
ALTERNATIVES = {"cpu": ("factored", "materialised"), "cuda": ("kernel", "materialised")}


def mlp_matching(n_params: int, in_features: int, n_classes: int) -> list[int]:
    """Two equal hidden layers whose MLP has about `n_params` parameters (w^2 + (in + out + 2) w + out)."""
    b = in_features + n_classes + 2
    width = round((-b + math.sqrt(b * b + 4 * (n_params - n_classes))) / 2)
    return [max(width, 1)] * 2


def step_flops(step: Callable[[], None]) -> int:
    """Floating-point operations of one training step as torch's FlopCounterMode counts them: the matrix
    products (mm, bmm, addmm, convolutions), forward and backward; elementwise ops are not counted. The
    short contractions the factored memories compute as broadcast products (`write_history.short_matmul`)
    run as the matrix products they are while counting, so they count too."""
    from unittest import mock

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from nlbench.nn import write_history

    with mock.patch.object(write_history, "short_matmul", torch.matmul), FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()


def mlp_of_flops(flops: int, data: ScenarioData, batch_size: int) -> list[int]:
    """Two equal hidden layers whose naive training step does about `flops` (the width by bisection: an MLP's
    step FLOPs grow with its width)."""
    naive = get_method("naive")

    @functools.cache
    def at(width: int) -> int:
        return step_flops(step_timer("naive", naive.resolve({"hidden_sizes": [width] * 2}), data, batch_size)[0])

    lo, hi = 1, 2
    while at(hi) < flops:
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if at(mid) < flops else (lo, mid)
    return [min((lo, hi), key=lambda w: abs(at(w) - flops))] * 2


def step_cost(methods: Sequence[str] = ("cms", "hope", "titans"), repeats: int = 100,
              scenario: str = "split-digits", seed: int = 0, device: str = "cpu") -> str:
    """Markdown table: median time of one training step on `device` per method and of a parameter-matched naive
    MLP; a method with self-modifying memories also on its other implementations (ALTERNATIVES), timed alongside.
    The arithmetic of each step is counted too (on the factored path, whose products torch can count: a kernel's
    are invisible to it), and an MLP doing as much arithmetic per step is timed alongside: it separates what the
    method computes from how fast it computes it."""
    import torch

    data = scenario_data(scenario, seed)
    naive = get_method("naive")
    kind = torch.device(device).type
    others = ALTERNATIVES.get(kind, ALTERNATIVES["cpu"])
    rows = []
    for name in methods:
        method = get_method(name)
        hp = method.resolve()
        timer = functools.partial(step_timer, data=data, batch_size=hp["batch_size"], device=device)
        seed_everything(seed)
        step, model = timer(name, hp)
        n_params = trainable_params(model)
        hidden = mlp_matching(n_params, input_features(data.info), data.info.n_classes)
        ref_step, ref_model = timer("naive", naive.resolve({"hidden_sizes": hidden}))
        alternatives = {}
        if "memory_impl" in method.params():
            for impl in others:
                seed_everything(seed)
                alternatives[impl] = timer(name, method.resolve({"memory_impl": impl}))[0]
        flops, ref_flops = step_flops(alternatives.get("factored", step)), step_flops(ref_step)
        equal = mlp_of_flops(flops, data, hp["batch_size"])
        equal_step = timer("naive", naive.resolve({"hidden_sizes": equal}))[0]
        t, t_ref, *t_alt, t_equal = interleaved_medians([step, ref_step, *alternatives.values(), equal_step], repeats)
        rows.append((name, n_params, t, hidden, trainable_params(ref_model), t_ref, t_alt, flops / ref_flops, flops,
                     equal, t_equal))
    where, default = "CPU", "at this batch: the fused numba chunk kernel"
    if kind == "cuda":
        where, default = f"{torch.cuda.get_device_name(device)} (CUDA)", "on CUDA: the factored path"
    elif kind != "cpu":
        where, default = f"device {device}", "there: the factored path"
    lines = [
        f"Cost of one training step (forward + backward + update, batch {naive.resolve()['batch_size']}, "
        f"{scenario}, method defaults) against naive fine-tuning of an MLP with about as many parameters; "
        f"median of {repeats} steps after 5 warm-up steps, all timed alternately in one process, on {where}. "
        f"The self-modifying memories run on their default `memory_impl = auto` ({default}); "
        + " and ".join(f"`{impl}`" for impl in others) + ": the same method with that `memory_impl` (same "
        "numbers up to float rounding; materialised is the token-by-token reference in PyTorch ops).",
        "",
        "Arithmetic: `FLOP ratio` is the method's matrix-product FLOPs per step over the parameter-matched MLP's "
        "(torch's FlopCounterMode, forward and backward). A self-modifying memory applies each of its weights "
        "to every token several times over (reads, targets, inner gradients), so a method can cost many times "
        "an MLP of its size by arithmetic alone. `equal-FLOP MLP`: an MLP whose step does as many FLOPs as the "
        "method's, timed alongside; the last column is the method's time over that MLP's.",
        machine_line(),
        "Regenerate: " + (f"`nlbench bench step --device {device} --out results/step_cost_gpu.md`" if kind == "cuda"
                          else "`nlbench bench step --out results/step_cost.md`"),
        "",
        "| method | params | ms/step | matched MLP | MLP params | MLP ms/step | ratio | "
        + "".join(f"{impl} ms/step | {impl} ratio | " for impl in others)
        + "MFLOP/step | FLOP ratio | equal-FLOP MLP | its ms/step | vs equal-FLOP MLP |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: | " + "---: | ---: | " * len(others)
        + "---: | ---: | --- | ---: | ---: |",
    ]
    for name, n, t, hidden, n_ref, t_ref, t_alt, ratio, flops, equal, t_equal in rows:
        alt = "".join(f"{a * 1e3:.2f} | {a / t_ref:.1f}x | " for a in t_alt) or "- | - | " * len(others)
        lines.append(f"| {name} | {n} | {t * 1e3:.2f} | {hidden} | {n_ref} | {t_ref * 1e3:.2f} | {t / t_ref:.1f}x "
                     f"| {alt}{flops / 1e6:.1f} | {ratio:.1f}x | {equal} | {t_equal * 1e3:.2f} | "
                     f"{t / t_equal:.1f}x |")
    return "\n".join(lines)
