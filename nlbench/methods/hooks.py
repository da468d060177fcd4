"""Per-iteration plugin callbacks, called only where a plugin implements them.

Why: Avalanche's `trigger_plugins` asks every plugin for every one of the eight per-iteration events
(`hasattr`, `getattr`, then a call, mostly of the no-op every plugin inherits): about a tenth of a small
split-digits run under cProfile. The template below calls, at each event, the hooks that do something, in the
plugins' order, with the same arguments; the table is rebuilt at every training epoch, so plugins added or
replaced between epochs are seen as Avalanche would see them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

ITERATION_EVENTS = ("before_training_iteration", "before_forward", "after_forward", "before_backward",
                    "after_backward", "before_update", "after_update", "after_training_iteration")


@functools.cache
def _inherited_no_ops(event: str) -> frozenset[Any]:
    from avalanche.core import BasePlugin, BaseSGDPlugin, SupervisedPlugin

    return frozenset(vars(c)[event] for c in (BasePlugin, BaseSGDPlugin, SupervisedPlugin) if event in vars(c))


def listeners(plugins: Sequence[Any], event: str) -> list[Callable[..., Any]]:
    """The bound hooks `trigger_plugins(strategy, event)` would call, less the base plugins' no-ops (a hook
    made by a plugin's own attribute lookup, like Avalanche's EvaluationPlugin's, is kept)."""
    no_ops = _inherited_no_ops(event)
    hooks = (getattr(p, event) for p in plugins if hasattr(p, event))
    return [hook for hook in hooks if getattr(hook, "__func__", None) not in no_ops]


def _trigger(event: str) -> Callable[..., None]:
    def trigger(self: Any, **kwargs: Any) -> None:
        try:
            hooks = self._iteration_hooks[event]
        except AttributeError:  # no epoch has started (a test driving the loop by hand): look them up now
            hooks = listeners(self.plugins, event)
        for hook in hooks:
            hook(self, **kwargs)

    trigger.__name__ = f"_{event}"
    return trigger


def with_direct_hooks(base: type) -> type:
    """`base` whose per-iteration events call only the implemented hooks; an event whose trigger `base`
    itself redefines keeps `base`'s."""
    from avalanche.training.templates.base_sgd import BaseSGDTemplate

    events = [e for e in ITERATION_EVENTS if getattr(base, f"_{e}") is getattr(BaseSGDTemplate, f"_{e}")]

    def _before_training_epoch(self: Any, **kwargs: Any) -> None:
        base._before_training_epoch(self, **kwargs)
        self._iteration_hooks = {e: listeners(self.plugins, e) for e in events}  # the plugins as they are now

    namespace = {f"_{e}": _trigger(e) for e in events}
    return type(base.__name__, (base,), {**namespace, "_before_training_epoch": _before_training_epoch,
                                         "__module__": base.__module__})
