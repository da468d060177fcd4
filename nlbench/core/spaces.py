"""Search spaces, declared with the hyperparameter they belong to: `Param(default, rule, doc, space=...)`.

A space is where `nlbench tune` looks for a value: `Float(low, high, log)`, `Int(low, high, log)` or
`Choice(values)`. Every value a space can produce must be accepted by the parameter's rule (checked at import for
declarations and at load time for a suite's `[tune.space.METHOD]` override), so a trial never fails validation.
In a suite file a space is `{low = 1e-3, high = 0.3, log = true}` (ints when both ends are ints) or a list of
choices.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nlbench.core.errors import UsageError


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class Float:
    """A float in [low, high], sampled on a log scale when `log`."""

    low: float
    high: float
    log: bool = False

    def problem(self) -> str | None:
        if not (_number(self.low) and _number(self.high)):
            return "needs numeric low and high"
        if not self.low < self.high:
            return f"is empty or inverted (low {self.low:g} >= high {self.high:g})"
        if self.log and self.low <= 0:
            return f"is on a log scale and needs low > 0 (got {self.low:g})"
        return None

    def samples(self) -> list[Any]:
        """Values the rule must accept: the ends and the middle."""
        return [float(self.low), float(self.high), float((self.low + self.high) / 2)]

    def distribution(self) -> Any:
        from optuna.distributions import FloatDistribution

        return FloatDistribution(float(self.low), float(self.high), log=self.log)

    def decode(self, value: Any) -> Any:
        return float(value)

    def to_toml(self) -> Any:
        return {"low": self.low, "high": self.high, "log": self.log}

    def __str__(self) -> str:
        return f"[{self.low:g}, {self.high:g}]" + (" log" if self.log else "")


@dataclass(frozen=True)
class Int(Float):
    """An int in [low, high]."""

    def problem(self) -> str | None:
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (self.low, self.high)):
            return "needs int low and high"
        return super().problem()

    def samples(self) -> list[Any]:
        return [int(self.low), int(self.high), int((self.low + self.high) // 2)]

    def distribution(self) -> Any:
        from optuna.distributions import IntDistribution

        return IntDistribution(int(self.low), int(self.high), log=self.log)

    def decode(self, value: Any) -> Any:
        return int(value)

    def __str__(self) -> str:
        return f"[{self.low}, {self.high}] int" + (" log" if self.log else "")


@dataclass(frozen=True)
class Choice:
    """One of `values` (numbers, strings, bools or lists such as CMS periods; lists travel as JSON text)."""

    values: tuple

    def problem(self) -> str | None:
        if len(self.values) == 0:
            return "has no choices"
        if len({json.dumps(v) for v in self.values}) != len(self.values):
            return "lists a choice twice"
        return None

    def samples(self) -> list[Any]:
        return list(self.values)

    def distribution(self) -> Any:
        from optuna.distributions import CategoricalDistribution

        return CategoricalDistribution([json.dumps(v) for v in self.values])

    def decode(self, value: Any) -> Any:
        return json.loads(value)

    def to_toml(self) -> Any:
        return list(self.values)

    def __str__(self) -> str:
        return "{" + ", ".join(json.dumps(v) for v in self.values) + "}"


Space = Float | Int | Choice


def check_space(space: Space, rule: Any, where: str) -> None:
    """Raise UsageError when the space is malformed or can produce a value the parameter's rule rejects."""
    problem = space.problem()
    if problem is None:
        bad = [v for v in space.samples() if not rule.accepts(v)]
        if bad:
            problem = f"can produce {bad[0]!r}, which the parameter rejects (it must be {rule})"
    if problem:
        raise UsageError(f"{where}: the search space {space} {problem}.")


def parse_space(value: Any, where: str, integer: bool | None = None) -> Space:
    """A suite file's space: {low, high, log} or a list of choices. A range is of ints when the parameter is an int
    (`integer`; None: when both ends are ints), so `{low = 1, high = 100}` for a float parameter samples floats."""
    if isinstance(value, list):
        space: Space = Choice(tuple(value))
    elif isinstance(value, Mapping):
        unknown = set(value) - {"low", "high", "log"}
        if unknown or not {"low", "high"} <= set(value):
            raise UsageError(f"{where}: a search space is {{low = ..., high = ..., log = true|false}} or a list of "
                             f"choices. Got {dict(value)!r} instead.")
        log = value.get("log", False)
        if not isinstance(log, bool):
            raise UsageError(f"{where}: 'log' of a search space must be true or false. Got {log!r} instead.")
        ints = all(isinstance(value[k], int) and not isinstance(value[k], bool) for k in ("low", "high"))
        space = (Int if (ints if integer is None else integer) else Float)(value["low"], value["high"], log)
    else:
        raise UsageError(f"{where}: a search space is {{low = ..., high = ..., log = true|false}} or a list of "
                         f"choices. Got {value!r} instead.")
    return space
