"""Declarative parameter constraints, checked once before a run starts (the scikit-learn way).

Every error follows one template: "The 'p' parameter of method 'ewc' must be <allowed>. Got <value> instead."
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nlbench.core.errors import UsageError, closest


@dataclass(frozen=True)
class Interval:
    """A number of type `kind` (int or float) in [low, high] (`closed` says which ends are included)."""

    kind: type
    low: float | None = None
    high: float | None = None
    closed: str = "both"  # "both", "left", "right" or "neither"

    def accepts(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.kind is int and not isinstance(value, int):
            return False
        if isinstance(value, float) and not math.isfinite(value):
            return False
        lo_ok = self.low is None or (value >= self.low if self.closed in ("both", "left") else value > self.low)
        hi_ok = self.high is None or (value <= self.high if self.closed in ("both", "right") else value < self.high)
        return lo_ok and hi_ok

    def __str__(self) -> str:
        left = "[" if self.closed in ("both", "left") and self.low is not None else "("
        right = "]" if self.closed in ("both", "right") and self.high is not None else ")"
        low = "-inf" if self.low is None else f"{self.low:g}"
        high = "inf" if self.high is None else f"{self.high:g}"
        return f"an {self.kind.__name__} in the range {left}{low}, {high}{right}".replace("an float", "a float")


@dataclass(frozen=True)
class Options:
    """One of a fixed set of values."""

    values: tuple

    def accepts(self, value: Any) -> bool:
        return not isinstance(value, (list, dict)) and value in self.values

    def __str__(self) -> str:
        return "one of " + ", ".join(repr(v) for v in self.values)


@dataclass(frozen=True)
class IntList:
    """A list of ints >= `minimum` (layer widths: 1, class orders: 0)."""

    allow_empty: bool = False
    minimum: int = 1

    def accepts(self, value: Any) -> bool:
        return (
            isinstance(value, list)
            and (self.allow_empty or len(value) > 0)
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= self.minimum for v in value)
        )

    def __str__(self) -> str:
        kind = "positive ints" if self.minimum == 1 else f"ints >= {self.minimum}"
        return f"a list of {kind}" + ("" if self.allow_empty else " (non-empty)")


@dataclass(frozen=True)
class PositiveList:
    """A list of numbers > 0 (per-level learning rates); empty allowed when `allow_empty`."""

    allow_empty: bool = True

    def accepts(self, value: Any) -> bool:
        return (
            isinstance(value, list)
            and (self.allow_empty or len(value) > 0)
            and all(isinstance(v, int | float) and not isinstance(v, bool) and v > 0 for v in value)
        )

    def __str__(self) -> str:
        return "a list of positive numbers" + (" (may be empty)" if self.allow_empty else " (non-empty)")


@dataclass(frozen=True)
class NumberList:
    """A list of `length` numbers (any number >= 1 when None), each accepted by `each` (and strictly
    increasing when `increasing`)."""

    length: int | None
    each: Interval
    increasing: bool = False

    def accepts(self, value: Any) -> bool:
        size_ok = isinstance(value, list) and (len(value) == self.length if self.length else len(value) >= 1)
        return (size_ok and all(self.each.accepts(v) for v in value)
                and (not self.increasing or all(a < b for a, b in zip(value, value[1:], strict=False))))

    def __str__(self) -> str:
        order = "increasing " if self.increasing else ""
        size = f"{self.length}" if self.length else "one or more"
        return f"a list of {size} {order}numbers, each {str(self.each).removeprefix('a ').removeprefix('an ')}"


@dataclass(frozen=True)
class ChoiceList:
    """A non-empty list of distinct values, each one of `values` (an order of sites, say)."""

    values: tuple

    def accepts(self, value: Any) -> bool:
        return (isinstance(value, list) and len(value) > 0 and len(set(map(str, value))) == len(value)
                and all(not isinstance(v, (list, dict)) and v in self.values for v in value))

    def __str__(self) -> str:
        return "a non-empty list of distinct values from " + ", ".join(repr(v) for v in self.values)


class Table:
    """A TOML table (a dict with string keys); its entries are validated by whoever owns them."""

    def accepts(self, value: Any) -> bool:
        return isinstance(value, Mapping) and all(isinstance(k, str) for k in value)

    def __str__(self) -> str:
        return "a table such as {period = 10}"


class Boolean:
    def accepts(self, value: Any) -> bool:
        return isinstance(value, bool)

    def __str__(self) -> str:
        return "a bool (true or false)"


def validate_params(
    params: Mapping[str, Any],
    constraints: Mapping[str, Any],
    owner: str,
    where: str = "",
) -> None:
    """Raise UsageError for an unknown key or a value its constraint rejects.

    `owner` names what the parameters belong to ("method 'ewc'"); `where` is a location prefix
    such as "suite.toml [method.ewc]".
    """
    prefix = f"{where}: " if where else ""
    for key, value in params.items():
        if key not in constraints:
            raise UsageError(
                f"{prefix}unknown parameter '{key}' for {owner}{closest(key, constraints)}; "
                f"allowed: {', '.join(sorted(constraints))}."
            )
        rule = constraints[key]
        if not rule.accepts(value):
            raise UsageError(
                f"{prefix}The '{key}' parameter of {owner} must be {rule}. Got {value!r} instead."
            )
