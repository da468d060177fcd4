"""Benchmarks that print ratios against a reference measured in the same process; one module each.

`BENCHMARKS` names them for `nlbench bench NAME`: (module:function, default repeats, what it compares).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

BENCHMARKS: dict[str, tuple[str, int, str]] = {
    "overhead": ("overhead:overhead", 5, "nlbench vs a plain PyTorch loop for naive on split-digits"),
    "step": ("step:step_cost", 100, "one training step of cms/hope/titans vs a parameter-matched naive MLP"),
    "optimizers": ("optimizers:optimizer_cost", 200, "one MLP training step under each deep/meta optimizer vs "
                                                     "torch's SGD and Adam"),
    "kernels": ("kernels:kernel_cost", 3, "the delta-rule memory kernels vs their PyTorch reference"),
    "scale": ("scale:scale", 1, "a suite (--suite, default 'default') on 1 vs all-core workers and Ray, and one "
                                "run's slowdown among CPU-heavy neighbours"),
    "startup": ("startup:startup", 5, "each command's start-up in a fresh process vs a bare Python interpreter"),
}


def benchmark(name: str) -> Callable[..., str]:
    """The function of benchmark `name`; it takes `repeats=` and returns a Markdown table."""
    module, function = BENCHMARKS[name][0].split(":")
    return getattr(importlib.import_module(f"nlbench.bench.{module}"), function)
