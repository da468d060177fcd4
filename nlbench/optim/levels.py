"""The CMS update schedule (Eq. 71) as an optimizer: each level steps once per chunk, on the summed gradient.

    theta_{i+1} = theta_i - eta^(l) * sum_{t=i-C(l)}^{i} grad L(theta_t; x_t)   if i = 0 (mod C(l))
                = theta_i                                                   otherwise

One step of the stream = one minibatch (one `step()` call). A level's gradients accumulate in `.grad`
across the steps of its chunk: `zero_grad()` (called by Avalanche every iteration) clears only levels
that have nothing pending, so no gradient is ever dropped (the PenguAKAuseless pitfall) and nothing is
averaged (the erikl2 pitfall). Each level has its own inner torch optimizer; with plain SGD the update is
exactly `-lr * sum of the chunk's gradients`. Step counters persist across experiences.

Every parameter outside the CMS (embedding, head, norms, Titans projections) forms the "base" level. In the paper
it is the outermost, slowest level (trained by the outer loop; in its continual experiments a frozen pretrained
model), so its period and learning rate are knobs like any level's (`base_period`, `base_lr_scale`).

When a nested level's fast state is re-initialised (Eq. 72), so is its inner optimizer's state (momentum, Adam
moments): the moments of the previous context belong to weights that no longer exist. An optimizer that learns
from the loss (the meta-optimizer) sees every minibatch loss through `observe_loss`, at every level.

A partial chunk at the end of an experience is either flushed (applied at once, so the evaluated model has
absorbed every gradient of the experience; the level's next chunk starts fresh) or carried (the pending
gradients stay and are applied at the first boundary in the next experience, all still taken at the same
parameters).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from nlbench.nn.cms import ContinuumMemorySystem, LevelSpec
from nlbench.optim.catalog import reset_memory

PARTIAL_CHUNK = ("flush", "carry")


@dataclass
class _Level:
    spec: LevelSpec
    optimizer: torch.optim.Optimizer
    pending: int = 0  # steps accumulated since this level last changed
    feeds: list[_Level] = field(default_factory=list)  # nested initial states fed by this level's gradients
    resets: _Level | None = None  # for a nested initial state: the fast level it re-initialises


def _add_grads(dst: Sequence[nn.Parameter], src: Sequence[nn.Parameter]) -> None:
    for d, s in zip(dst, src, strict=True):
        if s.grad is None:
            continue
        d.grad = s.grad.detach().clone() if d.grad is None else d.grad.add_(s.grad)


class LevelScheduledOptimizer:
    """Drop-in for a torch optimizer in an Avalanche template; one inner optimizer per level."""

    def __init__(self, levels: Iterable[LevelSpec],
                 make_optimizer: Callable[[list[nn.Parameter], LevelSpec], torch.optim.Optimizer]):
        specs = [s for s in levels if s.params]
        # Fast levels first, so a nested initial state sees its fast level's chunk before it steps.
        self.levels = [_Level(s, make_optimizer(s.params, s)) for s in sorted(specs, key=lambda s: s.period)]
        by_params = {tuple(map(id, lv.spec.params)): lv for lv in self.levels}
        for lv in self.levels:
            if lv.spec.meta_of is not None:
                fast = by_params[tuple(map(id, lv.spec.meta_of))]
                fast.feeds.append(lv)
                lv.resets = fast
        self.steps = 0

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return [g for lv in self.levels for g in lv.optimizer.param_groups]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for lv in self.levels:
            if lv.pending == 0:
                self._clear(lv, set_to_none)

    @staticmethod
    def _clear(lv: _Level, set_to_none: bool = True) -> None:
        for p in lv.spec.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    def _apply(self, lv: _Level) -> None:
        """Level `lv` reaches a chunk boundary: one inner step on its summed gradients (Eq. 71)."""
        for meta in lv.feeds:
            _add_grads(meta.spec.params, lv.spec.params)
        lv.optimizer.step()
        self._clear(lv)
        lv.pending = 0
        if lv.resets is not None:  # nested CMS: the fast level restarts from its new initial state, moments too
            with torch.no_grad():
                for fast, init in zip(lv.resets.spec.params, lv.spec.params, strict=True):
                    fast.copy_(init)
            reset_memory(lv.resets.optimizer)

    def step(self, closure: Any = None) -> None:
        self.steps += 1
        for lv in self.levels:
            lv.pending += 1
            if lv.pending == lv.spec.period:
                self._apply(lv)

    def observe_loss(self, loss: float) -> None:
        """Forward the minibatch loss to every level's optimizer that learns from it."""
        for lv in self.levels:
            if hasattr(lv.optimizer, "observe_loss"):
                lv.optimizer.observe_loss(loss)

    def flush(self) -> None:
        """Apply every partial chunk now (end of an experience, `partial_chunk = "flush"`)."""
        for lv in self.levels:
            if lv.pending:
                self._apply(lv)

    def pending(self) -> dict[str, int]:
        return {lv.spec.name: lv.pending for lv in self.levels}

    def state_dict(self) -> dict[str, Any]:
        """Counters and each level's inner optimizer state. Pending gradients live in `.grad` and are not saved.
        After a flush, the default at the end of an experience, there are none."""
        return {"steps": self.steps,
                "levels": {lv.spec.name: {"pending": lv.pending, "optimizer": lv.optimizer.state_dict()}
                           for lv in self.levels}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps = state["steps"]
        for lv in self.levels:
            saved = state["levels"][lv.spec.name]
            lv.pending = saved["pending"]
            lv.optimizer.load_state_dict(saved["optimizer"])


def model_levels(model: nn.Module, base_period: int = 1) -> list[LevelSpec]:
    """The "base" level (every trainable parameter outside a CMS, period `base_period`), then the CMS levels."""
    specs: list[LevelSpec] = []
    for name, module in model.named_modules():
        if isinstance(module, ContinuumMemorySystem):
            specs += module.levels(prefix=name)
    claimed = {id(p) for s in specs for p in s.params}
    rest = [p for p in model.parameters() if p.requires_grad and id(p) not in claimed]
    return [LevelSpec("base", rest, base_period, -1), *specs]
