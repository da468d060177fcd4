"""Name -> class registries for scenarios, strategies and baselines.

A module under `scenarios/`, `strategies/` or `baselines/` registers its class with a decorator; adding
a method is adding a file. Third-party packages add theirs through the entry-point groups
`nlbench.scenarios`, `nlbench.strategies` and `nlbench.baselines` (entry-point name = registered name), and
modules named in $NLBENCH_PLUGINS (comma-separated, importable from sys.path) register theirs on import, without
packaging; worker processes inherit the variable, so such methods run on every backend.
Modules are imported on first lookup; a module that fails to import is reported only when its name
(the module name in kebab-case) is requested, so one broken plugin never hides the others.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Any, TypeVar

from nlbench.core.errors import UnknownNameError, UsageError

T = TypeVar("T")
PLUGINS_ENV = "NLBENCH_PLUGINS"
_plugins_loaded: set[str] = set()


def load_plugins() -> None:
    """Import the modules $NLBENCH_PLUGINS names (once each); one that fails is a usage error naming it."""
    for name in (m.strip() for m in os.environ.get(PLUGINS_ENV, "").split(",")):
        if name and name not in _plugins_loaded:
            _plugins_loaded.add(name)
            try:
                importlib.import_module(name)
            except Exception as exc:
                raise UsageError(f"${PLUGINS_ENV}: module '{name}' failed to import: {type(exc).__name__}: "
                                 f"{exc}".splitlines()[0]) from exc


class Registry:
    """Registered classes of one kind, keyed by their kebab-case `NAME`."""

    def __init__(self, kind: str, package: str, group: str):
        self.kind, self.package, self.group = kind, package, group
        self._classes: dict[str, Any] = {}
        self._broken: dict[str, BaseException] = {}
        self._entry_points: dict[str, Any] = {}
        self._discovered = False

    def register(self, cls: T) -> T:
        """Class decorator: register `cls` under `cls.NAME`."""
        name = getattr(cls, "NAME", None)
        if not isinstance(name, str) or not name:
            raise TypeError(f"{cls.__qualname__} needs a non-empty string NAME to be registered as a {self.kind}.")
        other = self._classes.get(name)
        if other is not None and other is not cls:
            raise UsageError(
                f"{self.kind} '{name}' is registered twice: by {other.__module__} and by {cls.__module__}."
            )
        self._classes[name] = cls
        return cls

    @property
    def discovered(self) -> bool:
        """Whether this process has imported the registered modules (and may hold run-time registrations)."""
        return self._discovered

    def _discover(self) -> None:
        if self._discovered:
            return
        self._discovered = True
        load_plugins()
        package = importlib.import_module(self.package)
        for module in pkgutil.iter_modules(package.__path__):
            if module.name.startswith("_"):
                continue
            try:
                importlib.import_module(f"{self.package}.{module.name}")
            except Exception as exc:  # reported when this name is requested, see get()
                self._broken[module.name.replace("_", "-")] = exc
        for ep in entry_points(group=self.group):
            self._entry_points.setdefault(ep.name, ep)

    def names(self) -> list[str]:
        self._discover()
        return sorted(set(self._classes) | set(self._entry_points) | set(self._broken))

    def __contains__(self, name: str) -> bool:
        return name in self.names()

    def get(self, name: str) -> Any:
        self._discover()
        if name in self._classes:
            return self._classes[name]
        if name in self._entry_points:
            try:
                cls = self._entry_points[name].load()
            except Exception as exc:
                raise UsageError(f"{self.kind} '{name}' (entry point {self._entry_points[name].value}) "
                                 f"failed to load: {exc}") from exc
            self._classes[name] = cls
            return cls
        if name in self._broken:
            exc = self._broken[name]
            raise UsageError(f"{self.kind} '{name}' failed to import: {type(exc).__name__}: {exc}") from exc
        raise UnknownNameError(self.kind, name, self.names())

    def items(self) -> Iterator[tuple[str, Any]]:
        """(name, class) for every name that loads; broken ones are skipped here."""
        for name in self.names():
            try:
                yield name, self.get(name)
            except UsageError:
                continue


SCENARIOS = Registry("scenario", "scenarios", "nlbench.scenarios")
STRATEGIES = Registry("strategy", "strategies", "nlbench.strategies")
BASELINES = Registry("baseline", "baselines", "nlbench.baselines")

register_scenario: Callable[[T], T] = SCENARIOS.register
register_strategy: Callable[[T], T] = STRATEGIES.register
register_baseline: Callable[[T], T] = BASELINES.register


def method_names() -> list[str]:
    """Strategies and baselines share one namespace: both are 'methods' in a suite."""
    return sorted(set(STRATEGIES.names()) | set(BASELINES.names()))


def get_method(name: str) -> Any:
    """The strategy or baseline class registered as `name`."""
    for registry in (STRATEGIES, BASELINES):
        if name in registry.names():
            return registry.get(name)
    raise UnknownNameError("method", name, method_names())


def get_scenario(name: str) -> Any:
    return SCENARIOS.get(name)
