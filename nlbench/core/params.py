"""Every hyperparameter and option is declared once: `Param(default, rule, doc)`.

From that one declaration come the defaults, the validation (checked once before a run starts, the scikit-learn
way), `nlbench list --params` and docs/reference.md. Every error follows one template: "The 'p' parameter of
method 'ewc' must be <allowed>. Got <value> instead." Each rule can also produce a value it rejects, so shared
tests check every declared parameter's error without a hand-kept list (scikit-learn's
`generate_invalid_param_val`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Protocol

from nlbench.core.errors import UsageError, closest
from nlbench.core.spaces import Space, check_space


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

    def invalid(self) -> Any:
        if self.low is not None:
            return self.kind(self.low - 1)
        return self.kind(self.high + 1) if self.high is not None else "not a number"

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

    def invalid(self) -> Any:
        return "not-one-of-them"

    def __str__(self) -> str:
        return "one of " + ", ".join(repr(v) for v in self.values)


class Names:
    """One of the names a catalog knows when the value is checked (optimizers register themselves)."""

    def __init__(self, names: Callable[[], Iterable[str]]):
        self.names = names

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str) and value in tuple(self.names())

    def invalid(self) -> Any:
        return "not-a-registered-name"

    def __str__(self) -> str:
        return str(Options(tuple(self.names())))


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

    def invalid(self) -> Any:
        return [self.minimum - 1]

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

    def invalid(self) -> Any:
        return [-1.0]

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

    def invalid(self) -> Any:
        return []

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

    def invalid(self) -> Any:
        return []

    def __str__(self) -> str:
        return "a non-empty list of distinct values from " + ", ".join(repr(v) for v in self.values)


@dataclass(frozen=True)
class OneOf:
    """A value any of `rules` accepts (a number, or a list of numbers per experience)."""

    rules: tuple

    def accepts(self, value: Any) -> bool:
        return any(rule.accepts(value) for rule in self.rules)

    def invalid(self) -> Any:
        return next(v for v in (r.invalid() for r in self.rules) if not self.accepts(v))

    def __str__(self) -> str:
        return " or ".join(str(rule) for rule in self.rules)


class Table:
    """A TOML table (a dict with string keys); its entries are validated by whoever owns them."""

    def accepts(self, value: Any) -> bool:
        return isinstance(value, Mapping) and all(isinstance(k, str) for k in value)

    def invalid(self) -> Any:
        return 5

    def __str__(self) -> str:
        return "a table such as {period = 10}"


class Boolean:
    def accepts(self, value: Any) -> bool:
        return isinstance(value, bool)

    def invalid(self) -> Any:
        return 1

    def __str__(self) -> str:
        return "a bool (true or false)"


class Rule(Protocol):
    """What a parameter accepts: a test, a value it rejects (for the shared tests), and a phrase for errors."""

    def accepts(self, value: Any) -> bool: ...

    def invalid(self) -> Any: ...


@dataclass(frozen=True)
class Param:
    """One hyperparameter or option: its default, the rule its values follow, one line saying what it does, and
    where `nlbench tune` searches it (None: not tuned)."""

    default: Any
    rule: Rule
    doc: str
    space: Space | None = None


def defaults(params: Mapping[str, Param]) -> dict[str, Any]:
    return {key: p.default for key, p in params.items()}


def with_defaults(params: Mapping[str, Param], new: Mapping[str, Any], owner: str) -> dict[str, Param]:
    """`params` with some defaults replaced (a method's tuned settings); a key that is not declared is a bug."""
    unknown = set(new) - set(params)
    if unknown:
        raise TypeError(f"{owner} sets defaults for undeclared parameters: {', '.join(sorted(unknown))}")
    return {key: replace(p, default=new[key]) if key in new else p for key, p in params.items()}


def with_spaces(params: Mapping[str, Param], spaces: Mapping[str, Space | None], owner: str) -> dict[str, Param]:
    """`params` with some search spaces replaced (None: not tuned); `Declared` checks them against their rules."""
    unknown = set(spaces) - set(params)
    if unknown:
        raise TypeError(f"{owner} sets search spaces for undeclared parameters: {', '.join(sorted(unknown))}")
    return {key: replace(p, space=spaces[key]) if key in spaces else p for key, p in params.items()}


class Declared:
    """A class whose parameters are declared: PARAMS are its own, DEFAULTS are new defaults for the ones it
    inherits (`shared_params`, a family's). Methods and scenarios are both."""

    PARAMS: ClassVar[dict[str, Param]] = {}
    DEFAULTS: ClassVar[dict[str, Any]] = {}
    SPACES: ClassVar[dict[str, Space | None]] = {}  # search spaces of inherited parameters, redefined

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for key, p in cls.params().items():  # a default or a space for an undeclared parameter fails here, at import
            if p.space is not None:
                check_space(p.space, p.rule, f"class {cls.__name__} '{key}'")

    @classmethod
    def shared_params(cls) -> dict[str, Param]:
        """The parameters every class of this family has (the training knobs, a class split's options)."""
        return {}

    @classmethod
    def params(cls) -> dict[str, Param]:
        """Every parameter: the family's, its own, with its own defaults and search spaces."""
        owner = f"class {cls.__name__}"
        return with_spaces(with_defaults({**cls.shared_params(), **cls.PARAMS}, cls.DEFAULTS, owner), cls.SPACES,
                           owner)

    @classmethod
    def spaces(cls) -> dict[str, Space]:
        """The parameters `nlbench tune` searches, with their spaces."""
        return {key: p.space for key, p in cls.params().items() if p.space is not None}

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return defaults(cls.params())

    @classmethod
    def description(cls) -> str:
        """The first line of the docstring: what `nlbench list` shows."""
        return (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""


def validate_params(
    values: Mapping[str, Any],
    params: Mapping[str, Param],
    owner: str,
    where: str = "",
) -> None:
    """Raise UsageError for an unknown key or a value its rule rejects.

    `owner` names what the parameters belong to ("method 'ewc'"); `where` is a location prefix
    such as "suite.toml [method.ewc]".
    """
    prefix = f"{where}: " if where else ""
    for key, value in values.items():
        if key not in params:
            raise UsageError(
                f"{prefix}unknown parameter '{key}' for {owner}{closest(key, params)}; "
                f"allowed: {', '.join(sorted(params))}."
            )
        rule = params[key].rule
        if not rule.accepts(value):
            raise UsageError(
                f"{prefix}The '{key}' parameter of {owner} must be {rule}. Got {value!r} instead."
            )


# Rules many declarations share.
POSITIVE = Interval(float, 0.0, None, closed="neither")
NON_NEGATIVE = Interval(float, 0.0, None)
UNIT = Interval(float, 0.0, 1.0, closed="right")  # (0, 1]: decays, rates
COUNT = Interval(int, 1, None)  # 1, 2, ...
